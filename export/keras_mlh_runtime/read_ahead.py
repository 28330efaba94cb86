"""`read_ahead`: a bounded background thread that prepares the next chunks.

Reading and decoding images (numpy, Pillow) and inference (onnxruntime,
TensorFlow) release the GIL, so a producer thread a few chunks ahead keeps
the model busy while the next chunk is read. The queue is bounded: at most
`depth` chunks wait in memory, whatever the input's size.
"""

import queue
import threading

# How long the producer waits on a full queue before it checks whether the
# consumer has stopped (then it ends instead of blocking forever).
_POLL_SECONDS = 0.1


def read_ahead(iterable, depth=2):
    """Yields the items of `iterable` in order, computed ahead in a thread.

    Args:
        iterable: any iterable; it is iterated in a background thread.
        depth: how many items may wait, computed, for the consumer.

    Returns:
        A generator of the same items in the same order. An exception raised
        by the iterable is raised here, at the item where it happened. Closing
        the generator early stops the thread after its current item.

    Example:
    >>> list(read_ahead(x * x for x in range(4)))
    [0, 1, 4, 9]
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"`depth` must be a positive integer. Received: {depth!r}")
    items = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(entry):
        while not stopped.is_set():
            try:
                items.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterable:
                if not put((True, item)):
                    return
        except BaseException as error:  # re-raised in the consumer's thread
            put((False, error))
            return
        put((False, None))

    thread = threading.Thread(target=produce, name="keras-mlh-read-ahead", daemon=True)

    def consume():
        thread.start()
        try:
            while True:
                is_item, value = items.get()
                if not is_item:
                    if value is not None:
                        raise value
                    return
                yield value
        finally:
            stopped.set()
            thread.join()

    return consume()
