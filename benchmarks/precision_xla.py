"""Mixed precision and XLA on a GPU: training-step throughput of CIFAR ResNet-56 (batch
128, 32x32) and ImageNet ResNet-50 (batch 64, 224x224) in float32, float32 + XLA,
mixed_float16 and mixed_float16 + XLA, timed in one process with interleaved rounds;
speed-ups are paired per round against float32.

Without a GPU it reports itself skipped (fp16 convolutions are slow on CPUs and XLA slows
CPU training, REFERENCE.md), unless ``--force`` (used by the tests at a tiny size).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import timing  # noqa: E402
from timing import compare, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402
from kzoo.training.precision import dtype_policy  # noqa: E402

CONFIGS = {  # label: (dtype policy, XLA)
    "float32": ("float32", False),
    "float32+xla": ("float32", True),
    "mixed_float16": ("mixed_float16", False),
    "mixed_float16+xla": ("mixed_float16", True),
}
MODELS = {"resnet56": (128, (32, 32, 3), 10), "resnet50": (64, (224, 224, 3), 1000)}


def _build(name, policy, shape, classes):
    with dtype_policy(policy):
        return kzoo.create_model(name, input_shape=shape, classes=classes)


def run_model(name, batch, shape, classes, rounds, steps):
    keras.utils.set_random_seed(0)
    models = {label: _build(name, policy, shape, classes) for label, (policy, _) in CONFIGS.items()}
    timings = compare(
        models,
        "train",
        batch,
        shape,
        classes,
        rounds=rounds,
        steps=steps,
        jit_compile={label: xla for label, (_, xla) in CONFIGS.items()},
    )
    speedups = {label: paired_ratio(timings, label, "float32") for label in CONFIGS if label != "float32"}
    return {
        "model": name,
        "batch": batch,
        "input_shape": list(shape),
        "train": timings,
        "speedup_vs_float32": speedups,
    }


def run(rounds=8, steps=20, force=False, models=None):
    info = machine()
    if not info["gpus"] and not force:
        return {"benchmark": "precision_xla", "skipped": "no GPU on this machine", "machine": info}
    models = models or MODELS
    results = [run_model(name, *spec, rounds, steps) for name, spec in models.items()]
    return {
        "benchmark": "precision_xla",
        "rounds": rounds,
        "steps_per_round": steps,
        "results": results,
        "machine": info,
    }


if __name__ == "__main__":
    timing.main(run, __doc__, skip=("models",), helps={"force": "run without a GPU too"})
