"""The machine a run ran on, as its records state it: the CPU (model and the
instruction sets that decide oneDNN's kernels), cores, GPUs and the library versions."""

import os
import platform
import sys


def cpu_info():
    """The CPU's model name and the instruction sets that decide which kernels oneDNN
    runs (bfloat16 on AVX512_BF16 or AMX): runs land on different machines."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16")
    return {"cpu_model": name, "cpu_flags": [f for f in wanted if f in flags]}


def hardware():
    """The machine a run used: CPU (model and the instruction sets that matter), core
    count and GPUs (names from TF)."""
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(details.get("device_name", device.name))
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_info(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
    }


def versions():
    import keras
    import tensorflow as tf

    import kzoo

    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "kzoo": kzoo.__version__,
    }
