"""Grouped convolutions on TensorFlow: kzoo's ``GroupedConv2D`` (TensorFlow's own grouped
``Conv2D`` kernel) against keras' ``Conv2D`` path (the same convolution compiled with
XLA), in training steps of one ResNeXt-29 stage-1 convolution (3x3, 512 channels, 8
groups, 16x16) and of a narrow CIFAR ResNeXt (29 layers, 8x8d, 28x28x1), float32, timed in
interleaved rounds (benchmarks/timing.py).

    python benchmarks/grouped_conv.py [--rounds 3 --steps 2 --depth 29]
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
from kzoo.layers import GroupedConv2D  # noqa: E402

LAYER_INPUT = (16, 16, 512)
MODEL_INPUT = (28, 28, 1)


def _keras_path():
    """Within the block, GroupedConv2D runs keras' own convolution (XLA on TensorFlow)."""
    return mock.patch.object(GroupedConv2D, "convolution_op", keras.layers.Conv2D.convolution_op)


def _layer_model():
    inputs = keras.Input(LAYER_INPUT)
    x = GroupedConv2D(512, 3, padding="same", groups=8, use_bias=False)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def _build(kind, make, batch, input_shape):
    """The model, compiled, its training step traced with kzoo's kernel or keras' path."""
    with contextlib.nullcontext() if kind == "kzoo" else _keras_path():
        keras.utils.set_random_seed(0)
        net = make()
        net.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        net.train_on_batch(np.zeros((batch,) + input_shape, "float32"), np.zeros((batch,), "int64"))
    return net


def run(batch=16, rounds=3, steps=2, depth=29):
    cases = {
        "conv3x3_512ch_8groups": (_layer_model, LAYER_INPUT),
        "resnext_8x8d": (
            lambda: kzoo.CifarResNeXt(depth, cardinality=8, bottleneck_width=64, input_shape=MODEL_INPUT),
            MODEL_INPUT,
        ),
    }
    results = {}
    for case, (make, shape) in cases.items():
        models = {kind: _build(kind, make, batch, shape) for kind in ("kzoo", "keras")}
        timings = compare(
            models, "train", batch, shape, 10, rounds=rounds, steps=steps, warmup=1, compile=False
        )
        results[case] = {"train": timings, "kzoo_over_keras": paired_ratio(timings, "kzoo", "keras")}
    return {
        "benchmark": "grouped_conv",
        "batch": batch,
        "rounds": rounds,
        "steps_per_round": steps,
        "depth": depth,
        **results,
        "machine": machine(),
    }


if __name__ == "__main__":
    timing.main(run, __doc__)
