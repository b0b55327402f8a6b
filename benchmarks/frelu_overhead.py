"""FReLU vs ReLU training-step time on CIFAR ResNet-56 (batch 64, 32x32), in one run.
The FReLU paper claims no extra cost; kzoo's goal is at most 5% overhead."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import timing  # noqa: E402
from timing import compare, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402


def run(batch=64, rounds=12, steps=10, model="resnet56"):
    keras.utils.set_random_seed(0)
    models = {"relu": kzoo.create_model(model), "frelu": kzoo.create_model(model, activation="frelu")}
    timings = compare(models, "train", batch, (32, 32, 3), 10, rounds=rounds, steps=steps)
    # Step-time overhead = relu throughput / frelu throughput - 1, paired per round.
    ratio = paired_ratio(timings, "relu", "frelu")
    overhead = {k: round(v - 1, 3) for k, v in ratio.items()}
    return {
        "benchmark": "frelu_overhead",
        "model": model,
        "batch": batch,
        "rounds": rounds,
        "steps_per_round": steps,
        "train": timings,
        "frelu_step_time_overhead": overhead,
        "machine": machine(),
    }


if __name__ == "__main__":
    timing.main(run, __doc__)
