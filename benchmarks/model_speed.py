"""Inference and training speed of every registered model on this machine's CPU, at
batch 32 and the model's own input size, in float32 and mixed_bfloat16: the table
keras.applications gives as ms per step, with each model's parameters and operations.

The two precisions of a model are timed in interleaved rounds (benchmarks/timing.py),
so their ratio is measured under one machine load; each round runs enough steps to last
about ``--seconds`` (at least one), after one untimed step that traces the function.

    python benchmarks/model_speed.py --write-results          # every model (~20 min)
    python benchmarks/model_speed.py --models 'resnet[235]*' --rounds 2
"""

import argparse
import fnmatch
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from timing import interleaved, machine  # noqa: E402

import kzoo  # noqa: E402
from kzoo.models.flops import forward_flops  # noqa: E402

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def _build(name, policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = kzoo.create_model(name)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy"
        )
        return model
    finally:
        keras.config.set_dtype_policy(previous)


def _time_pair(fns, batch, rounds, seconds):
    """img/s of each labelled step function: one untimed call, then ``rounds``
    interleaved rounds of as many calls as fill ``seconds`` (judged by the slower one)."""
    once = {}
    for label, fn in fns.items():
        fn()  # traces
        start = time.perf_counter()
        fn()
        once[label] = time.perf_counter() - start
    steps = max(1, round(seconds / max(once.values())))
    timings = interleaved(fns, rounds, steps)
    return {
        label: {
            "images_per_s": round(statistics.median(batch * steps / t for t in v), 2),
            "ms_per_step": round(1000 * statistics.median(t / steps for t in v), 1),
            "rounds": [round(batch * steps / t, 2) for t in v],
        }
        for label, v in timings.items()
    }


def measure(name, batch=32, rounds=2, seconds=1.5):
    """One row: the model's shape, size and operations, and its speeds."""
    info = kzoo.model_info(name)
    models = {label: _build(name, policy) for label, policy in PRECISIONS.items()}
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *info.input_shape)).astype("float32")
    y = rng.integers(0, info.classes, (batch,))
    row = {
        "model": name,
        "input_shape": list(info.input_shape),
        "classes": info.classes,
        "params": kzoo.trainable_params(models["float32"]),
        "gflops_per_image": round(forward_flops(models["float32"]) / 1e9, 4),
    }
    for mode in ("inference", "train"):
        if mode == "inference":
            fns = {label: (lambda m=m: m.predict_on_batch(x)) for label, m in models.items()}
        else:
            fns = {label: (lambda m=m: m.train_on_batch(x, y)) for label, m in models.items()}
        speed = _time_pair(fns, batch, rounds, seconds)
        for label in PRECISIONS:
            row[f"{mode}_{label}_img_s"] = speed[label]["images_per_s"]
            row[f"{mode}_{label}_ms_per_step"] = speed[label]["ms_per_step"]
        ratios = [b / f for b, f in zip(speed["bfloat16"]["rounds"], speed["float32"]["rounds"])]
        row[f"{mode}_bfloat16_over_float32"] = round(statistics.median(ratios), 3)
    keras.backend.clear_session()
    return row


def run(pattern="*", batch=32, rounds=2, seconds=1.5, verbose=True):
    patterns = pattern.split(",")
    names = [n for n in kzoo.list_models() if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        raise ValueError(f"`pattern`={pattern!r} matches no registered model (see `kzoo list`)")
    start, rows = time.perf_counter(), []
    for name in names:
        rows.append(measure(name, batch, rounds, seconds))
        if verbose:
            r = rows[-1]
            print(
                f"{name}: inference {r['inference_float32_img_s']:.1f} / {r['inference_bfloat16_img_s']:.1f} img/s, "
                f"train {r['train_float32_img_s']:.1f} / {r['train_bfloat16_img_s']:.1f} img/s (float32 / bfloat16)",
                file=sys.stderr,
                flush=True,
            )
    return {
        "benchmark": "model_speed",
        "models": pattern,
        "batch": batch,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": machine(),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default="*", help="fnmatch patterns over the registered names, comma-separated"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.5, help="about how long each timed round lasts")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="also replace the model_speed part of benchmarks/results/latest.json and regenerate SUMMARY.md",
    )
    args = parser.parse_args()
    result = run(args.models, args.batch, args.rounds, args.seconds)
    if args.write_results:
        import summary

        summary.update("model_speed", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
