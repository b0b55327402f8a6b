"""What a run records about itself: hardware, versions, and its training curves."""

import os
import platform
import sys

from kzoo import atomic


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


def plot_curves(rows, path, title=""):
    """Loss and top-1 accuracy per epoch (training, validation, and test when recorded), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation"), ("test_loss", "test")):
        if rows and key in rows[0]:
            ax_loss.plot(epochs, [float(r[key]) for r in rows], marker=".", label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation"), ("test_accuracy", "test")):
        if rows and key in rows[0]:
            ax_acc.plot(epochs, [float(r[key]) for r in rows], marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def save_figure(fig, path, dpi=90):
    """Write a matplotlib figure to ``path`` atomically (a temporary file, then a rename)
    and close it. Returns ``path``."""
    import matplotlib.pyplot as plt

    try:
        atomic.write_file(path, lambda tmp: fig.savefig(tmp, dpi=dpi), suffix=".png")
    finally:
        plt.close(fig)
    return path


def markdown_table(header, rows):
    """A GitHub Markdown table: a header row, then one row per sequence of cells."""
    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
