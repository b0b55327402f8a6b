"""The ``kzoo`` command (``python -m kzoo_command``): ``kzoo.cli.main`` with
TensorFlow's start-up notices kept out of its output.

TensorFlow's C++ logging writes to the stderr file descriptor at import, at the first
device query and when XLA first compiles ("Could not find cuda drivers", "failed call to
cuInit", oneDNN and CPU-feature notices, the XLA service lines), whatever
TF_CPP_MIN_LOG_LEVEL says. On a CPU machine they are noise around the command's own
lines, so the command filters them out at the file-descriptor level; every other line
passes. ``KZOO_TF_LOGS=1`` keeps everything.

This module lies outside the ``kzoo`` package on purpose: the filter must be in place
before ``import kzoo`` loads TensorFlow, and the library itself never touches its
user's stderr (``import kzoo`` prints what TensorFlow prints).
"""

import contextlib
import os
import re
import sys
import threading

NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|"
    r"cuda_diagnostics|cuda_dnn|cuda_fft|cuda_blas|computation_placer|port|service|device_compiler)"
    r"\.(cc|h):\d+\]"
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
def filtered_stderr():
    """Pass the process's stderr through the filter while the block runs (a whole
    command: TensorFlow logs at import, at its first device query and at XLA's first
    compilation)."""
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


def main(argv=None):
    """The ``kzoo`` console command: ``kzoo.cli.main(argv)``, imported and run with
    TensorFlow's notices filtered out; its exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        from kzoo import cli

        return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
