import pytest

from keras_mlh_runtime.errors import first_line

pytestmark = pytest.mark.backend_independent  # message text


def test_first_line_of_a_multi_line_message():
    assert first_line(RuntimeError("\n  bad header \n at faiss/io.cpp:12\n")) == (
        "bad header"
    )


def test_first_line_of_an_empty_message_is_the_type():
    assert first_line(OSError()) == "OSError"
    assert first_line(ValueError("   \n ")) == "ValueError"


def test_check_positive_int():
    import numpy as np
    import pytest

    from keras_mlh_runtime.errors import check_positive_int

    assert check_positive_int("k", np.int32(3)) == 3
    assert type(check_positive_int("k", np.int64(3))) is int
    assert check_positive_int("k", None, allow_none=True) is None
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match="`k` must be a positive integer"):
            check_positive_int("k", bad)
    with pytest.raises(ValueError, match="`k` must be None or a positive integer"):
        check_positive_int("k", 0, allow_none=True)
