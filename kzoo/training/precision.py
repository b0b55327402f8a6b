"""A run's numeric precision: the dtype policy a name or flag stands for ("auto":
mixed_float16 on a GPU, mixed_bfloat16 on a CPU with bfloat16 instructions (AMX or
AVX512_BF16), else float32)."""

import contextlib
import os

import keras

from kzoo.training import distribute

PRECISIONS = {
    "auto": "auto",
    None: "float32",
    False: "float32",
    "off": "float32",
    "float32": "float32",
    "float16": "mixed_float16",
    "mixed_float16": "mixed_float16",
    True: "mixed_float16",
    "bfloat16": "mixed_bfloat16",
    "mixed_bfloat16": "mixed_bfloat16",
}


# CPU instruction sets on which "auto" trains in mixed_bfloat16, each measured by
# applications/precision_parity.py (ResNet-20, Fashion-MNIST): on an amx_bf16 Xeon (4
# epochs, seeds 0-2) the same final top-1 in both precisions (92.12% mean each, paired
# differences -0.08 to +0.07 points) with 1.67x faster epochs (results/precision_parity);
# on an AMD EPYC with avx512_bf16 and no AMX (2 epochs, seeds 0-1) 90.67% against 90.63%
# (paired +0.29, -0.21) with 1.48x faster epochs (results/precision_parity_amd), and
# benchmarks/fused_batchnorm.py's paired rounds 1.18-1.67x. CPUs with neither stay float32.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_prefers_bfloat16():
    """Whether "auto" picks mixed_bfloat16 on this CPU: it has one of ``BFLOAT16_CPU_FLAGS``,
    unless ``$KZOO_AUTO_BFLOAT16`` says "0" (never) or "1" (always)."""
    from kzoo.training.machine import cpu_info

    override = os.environ.get("KZOO_AUTO_BFLOAT16", "")
    if override not in ("", "0", "1"):
        raise ValueError(f"$KZOO_AUTO_BFLOAT16 must be 0, 1 or unset, got {override!r}")
    if override:
        return override == "1"
    return any(flag in cpu_info()["cpu_flags"] for flag in BFLOAT16_CPU_FLAGS)


def resolve_precision(mixed_precision):
    """The dtype policy name for ``mixed_precision`` ("auto": mixed_float16 on GPU,
    mixed_bfloat16 on a CPU with bfloat16 instructions, else float32)."""
    try:
        policy = PRECISIONS[mixed_precision]
    except (KeyError, TypeError):
        raise ValueError(
            f"`mixed_precision` must be one of 'auto', 'float16', 'bfloat16', 'float32' "
            f"(or True/False), got {mixed_precision!r}"
        ) from None
    if policy == "auto":
        if distribute.gpus():
            policy = "mixed_float16"
        else:
            policy = "mixed_bfloat16" if cpu_prefers_bfloat16() else "float32"
    return policy


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy is ``name`` inside the block and what it was after it:
    a model is built in a precision without leaving the process in that precision."""
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(name)
        yield
    finally:
        keras.config.set_dtype_policy(previous)
