"""TensorFlow's start-up lines, left out of every command's stderr.

TensorFlow logs them from C++ while it loads (twice: two of its libraries),
before absl's logging is set up, so TF_CPP_MIN_LOG_LEVEL does not hide them
(TF_ENABLE_ONEDNN_OPTS=0 would, but it turns oneDNN off). `main` runs each
command inside `startup_lines_hidden`, whichever library call imports it.
"""

import contextlib
import os
import sys
import threading

STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)


@contextlib.contextmanager
def startup_lines_hidden():
    """Passes file descriptor 2 on, line by line, without `STARTUP_NOISE`.

    A thread copies what is written to stderr (by Python, C++ or a child
    process) to the real stderr as it comes, leaving out the start-up lines.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # info and warnings
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    thread = threading.Thread(target=_pass_on, args=(read, saved), daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe: the thread reads to its end
        thread.join(timeout=10)
        if not thread.is_alive():  # else a child process still holds the pipe
            os.close(saved)


def _pass_on(read, out):
    noise = [line.encode() for line in STARTUP_NOISE]
    with open(read, "rb") as pipe, open(out, "wb", 0, closefd=False) as stderr:
        for line in pipe:
            if not any(n in line for n in noise):
                with contextlib.suppress(OSError):  # keep draining the pipe
                    stderr.write(line)
