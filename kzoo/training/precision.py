"""A run's numeric precision: the dtype policy a name or flag stands for ("auto":
mixed_float16 on a GPU, float32 on CPU)."""

import contextlib

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


def resolve_precision(mixed_precision):
    """The dtype policy name for ``mixed_precision`` ("auto": mixed_float16 on GPU)."""
    try:
        policy = PRECISIONS[mixed_precision]
    except (KeyError, TypeError):
        raise ValueError(
            f"`mixed_precision` must be one of 'auto', 'float16', 'bfloat16', 'float32' "
            f"(or True/False), got {mixed_precision!r}"
        ) from None
    if policy == "auto":
        policy = "mixed_float16" if distribute.gpus() else "float32"
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
