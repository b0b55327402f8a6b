"""kzoo.ResNet50 vs keras.applications.ResNet50: inference and training-step throughput
in one run. The two are the same network, so the ratio should be 1.0 within noise."""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.image_size, args.batch, args.rounds, args.steps), indent=2))


if __name__ == "__main__":
    main()
