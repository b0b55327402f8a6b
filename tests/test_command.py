"""The ``kzoo`` command filters TensorFlow's notices from its stderr (import, device
query and XLA's service lines), and only the command: ``import kzoo`` prints what
importing Keras prints, its user's stderr untouched."""

import os
import re
import subprocess
import sys

import pytest

import kzoo_command

NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "E0000 00:00:1796665422.253751   21398 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    "I0000 00:00:1765000000.123456    4242 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
    "To enable the following instructions: AVX512_FP16 AMX_TILE, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
    "I0000 00:00:1765000000.000001   777 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1765000001.532011   23001 service.cc:152] XLA service 0x7f3c8c005a40 initialized for platform Host",
    "I0000 00:00:1765000001.532055   23001 service.cc:160]   StreamExecutor device (0): Host, Default Version",
    "I0000 00:00:1765000001.840712   23001 device_compiler.h:196] Compiled cluster using XLA!  This line is "
    "logged at most once for the lifetime of the process.",
]
KEPT = [
    "kzoo: error: `epochs` must be an integer at least 1 or None, got 0",
    "Epoch 1/3",
    "/usr/lib/python3/site-packages/x.py:3: UserWarning: something the user should see",
    "E0000 00:00:1765000001.000000   23001 op_kernel.cc:1800] OP_REQUIRES failed: a real error",
]


@pytest.mark.parametrize("line", NOTICES)
def test_the_notices_are_dropped(line):
    assert not kzoo_command._keep((line + "\n").encode())


@pytest.mark.parametrize("line", KEPT)
def test_everything_else_passes(line):
    assert kzoo_command._keep((line + "\n").encode())


def _stderr(code):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KZOO_TF_LOGS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    # pids, timestamps and addresses differ from one process to the next
    return sorted(re.sub(r"\d+", "N", line) for line in out.stderr.splitlines())


def test_import_kzoo_leaves_stderr_alone():
    """Whatever Keras' import writes to stderr (TensorFlow's notices under its backend)
    reaches the user as it is: kzoo's import neither hides nor adds a line."""
    assert _stderr("import kzoo") == _stderr("import keras")


def test_the_command_prints_only_its_own_line():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KZOO_TF_LOGS")}
    out = subprocess.run(
        [sys.executable, "-m", "kzoo_command", "train", "resnet20", "--epochs", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kzoo: error: `epochs` must be an integer"), out.stderr
