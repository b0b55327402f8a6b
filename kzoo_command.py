"""TensorFlow's start-up notices kept out of kzoo's output.

TensorFlow's C++ logging writes to the stderr file descriptor at import and at the
first device query ("Could not find cuda drivers", "failed call to cuInit", oneDNN and
CPU-feature notices), whatever TF_CPP_MIN_LOG_LEVEL says. On a CPU machine they are
noise ahead of kzoo's own lines, so they are filtered out at the file-descriptor level;
every other line passes. ``KZOO_TF_LOGS=1`` keeps everything.
"""

import contextlib
import os
import re
import sys
import tempfile
import threading

NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|"
    r"cuda_diagnostics|cuda_dnn|cuda_fft|cuda_blas|computation_placer|port)\.cc:\d+\]"
    r"|To enable the following instructions: .*rebuild TensorFlow"
    r"|oneDNN custom operations are on"
    r"|.*Unable to register cu(DNN|FFT|BLAS) factory"
    r"|.*TF-TRT Warning"
)


def _stderr_fd():
    """The stderr file descriptor, or None when stderr is no real file (a test's capture)."""
    if os.environ.get("KZOO_TF_LOGS"):
        return None
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _keep(line):
    return not NOISE.match(line.decode("utf-8", "replace"))


@contextlib.contextmanager
def quiet_import():
    """Collect what is written to stderr while the block runs (importing TensorFlow) and
    write back all but the notices afterwards: synchronous, no thread, for ``import kzoo``."""
    fd = _stderr_fd()
    if fd is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as collected:
        os.dup2(collected.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            collected.seek(0)
            kept = b"".join(line for line in collected if _keep(line))
            if kept:
                os.write(fd, kept)


@contextlib.contextmanager
def filtered_stderr():
    """Pass the process's stderr through the filter while the block runs (a whole CLI
    command: TensorFlow logs again at its first device query)."""
    fd = _stderr_fd()
    if fd is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as source:
            for line in source:
                if _keep(line):
                    os.write(saved, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)  # the pipe's last writer closes: the pump reaches its end
        thread.join(timeout=5)
        os.close(saved)
