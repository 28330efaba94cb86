from keras_mlh.errors import first_line


def test_first_line_of_a_multi_line_message():
    assert first_line(RuntimeError("\n  bad header \n at faiss/io.cpp:12\n")) == (
        "bad header"
    )


def test_first_line_of_an_empty_message_is_the_type():
    assert first_line(OSError()) == "OSError"
    assert first_line(ValueError("   \n ")) == "ValueError"
