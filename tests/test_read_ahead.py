"""`keras_mlh_runtime.encoder.read_ahead`: the bounded background reader of chunks."""

import threading
import time

import pytest

from keras_mlh_runtime.encoder import read_ahead

pytestmark = pytest.mark.backend_independent  # threads


def test_yields_all_items_in_order():
    assert list(read_ahead(iter(range(50)), depth=3)) == list(range(50))
    assert list(read_ahead([], depth=1)) == []


def test_memory_is_bounded_by_depth():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    reader = read_ahead(items(), depth=2)
    assert next(reader) == 0
    time.sleep(0.3)  # time for an unbounded producer to run through all 100
    # The item in hand, `depth` in the queue, one waiting to be put.
    assert len(produced) <= 1 + 2 + 1
    assert list(reader) == list(range(1, 100))


def test_an_error_is_raised_at_its_item():
    def items():
        yield 1
        yield 2
        raise OSError("disk gone")

    reader = read_ahead(items())
    assert next(reader) == 1 and next(reader) == 2
    with pytest.raises(OSError, match="disk gone"):
        next(reader)


def test_closing_early_stops_the_thread():
    def items():
        i = 0
        while True:  # endless: only the stop can end the producer
            yield i
            i += 1

    before = threading.active_count()
    reader = read_ahead(items(), depth=1)
    assert next(reader) == 0
    reader.close()
    assert threading.active_count() == before


@pytest.mark.parametrize("depth", [0, 1.5, True])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="`depth` must be a positive integer"):
        read_ahead([], depth=depth)
