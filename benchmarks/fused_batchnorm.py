"""kzoo's batch normalisation (TensorFlow's fused kernel) against keras' own (a dozen
separate ops), in ResNet-20 training steps on Fashion-MNIST-sized images, float32 and
mixed_bfloat16, the four models timed in interleaved rounds (benchmarks/timing.py).

    python benchmarks/fused_batchnorm.py [--batch 128 --rounds 8 --steps 5]
"""

import contextlib
import os
import sys
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import timing  # noqa: E402
from timing import compare, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402
from kzoo.layers import BatchNormalization  # noqa: E402
from kzoo.training.precision import dtype_policy  # noqa: E402


def _build(model, policy, fused, batch):
    """The model, compiled, its training step traced with kzoo's fused BN or keras' own."""
    unfused = mock.patch.object(BatchNormalization, "_fused", lambda self, inputs, mask: False)
    with dtype_policy(policy), contextlib.nullcontext() if fused else unfused:
        keras.utils.set_random_seed(0)
        net = kzoo.create_model(model, input_shape=(28, 28, 1))
        net.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        # the same dtypes and shapes as timing.compare's batches: no retrace later
        net.train_on_batch(np.zeros((batch, 28, 28, 1), "float32"), np.zeros((batch,), "int64"))
    return net


def run(batch=128, rounds=8, steps=5, model="resnet20"):
    models = {
        f"{precision}_{kind}": _build(model, policy, kind == "fused", batch)
        for precision, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16"))
        for kind in ("keras", "fused")
    }
    timings = compare(models, "train", batch, (28, 28, 1), 10, rounds=rounds, steps=steps, compile=False)
    return {
        "benchmark": "fused_batchnorm",
        "model": model,
        "batch": batch,
        "rounds": rounds,
        "steps_per_round": steps,
        "train": timings,
        "fused_over_keras": {
            "float32": paired_ratio(timings, "float32_fused", "float32_keras"),
            "bfloat16": paired_ratio(timings, "bfloat16_fused", "bfloat16_keras"),
        },
        "bfloat16_fused_over_float32_keras": paired_ratio(timings, "bfloat16_fused", "float32_keras"),
        "machine": machine(),
    }


if __name__ == "__main__":
    timing.main(run, __doc__)
