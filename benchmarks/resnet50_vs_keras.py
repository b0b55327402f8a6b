"""kzoo.ResNet50 vs keras.applications.ResNet50: inference and training-step throughput
in one run. The two are the same network, so the ratio should be 1.0 within noise."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import timing  # noqa: E402
from timing import compare, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402


def run(image_size=224, batch=8, rounds=8, steps=3):
    shape = (image_size, image_size, 3)
    result = {
        "benchmark": "resnet50_vs_keras_applications",
        "image_size": image_size,
        "batch": batch,
        "rounds": rounds,
        "steps_per_round": steps,
        "machine": machine(),
    }
    for mode in ("inference", "train"):
        keras.utils.set_random_seed(0)
        models = {
            "kzoo": kzoo.ResNet50(input_shape=shape),
            "keras.applications": keras.applications.ResNet50(weights=None, input_shape=shape),
        }
        timings = compare(models, mode, batch, shape, 1000, rounds=rounds, steps=steps)
        result[mode] = {
            **timings,
            "ratio_kzoo_over_keras": paired_ratio(timings, "kzoo", "keras.applications"),
        }
    return result


if __name__ == "__main__":
    timing.main(run, __doc__)
