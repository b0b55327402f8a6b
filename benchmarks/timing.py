"""Interleaved timing of several Keras models in one process, so a ratio between them
is measured under the same machine load (the rounds alternate the models)."""

import argparse
import inspect
import json
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from kzoo.training.machine import cpu_info


def machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_info(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def _step_fn(model, mode):
    if mode == "inference":
        return lambda x, y: model.predict_on_batch(x)
    return lambda x, y: model.train_on_batch(x, y)


def compare(
    models,
    mode,
    batch,
    input_shape,
    classes,
    rounds=5,
    steps=5,
    warmup=2,
    seed=0,
    jit_compile=None,
    compile=True,
):
    """Images per second of each named model, median over ``rounds`` interleaved rounds
    of ``steps`` steps each. ``models`` maps a label to a built model; ``jit_compile``
    maps a label to True to compile that model's training step with XLA; ``compile=False``
    keeps the models' own compilation (and traced steps)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (batch,) + tuple(input_shape)).astype("float32")
    y = rng.integers(0, classes, (batch,))
    fns = {}
    for label, model in models.items():
        if mode == "train" and compile:
            model.compile(
                optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss="sparse_categorical_crossentropy",
                jit_compile=bool((jit_compile or {}).get(label, False)),
            )
        fns[label] = _step_fn(model, mode)
        for _ in range(warmup):
            fns[label](x, y)
    seconds = interleaved({label: (lambda fn=fn: fn(x, y)) for label, fn in fns.items()}, rounds, steps)
    return {
        label: {
            "images_per_s": round(statistics.median(batch * steps / t for t in v), 2),
            "rounds": [round(batch * steps / t, 2) for t in v],
        }
        for label, v in seconds.items()
    }


def _turns(labels, rounds):
    """The labels in the order they run, round after round: the order rotates each round
    (with two labels, it alternates), so no function always runs first and the machine's
    drift spreads over all of them."""
    order = list(labels)
    for r in range(rounds):
        k = r % len(order)
        yield from order[k:] + order[:k]


def interleaved(fns, rounds, repeats=1):
    """Seconds taken by ``repeats`` calls of each named function, one sample per round,
    in rotating order."""
    seconds = {label: [] for label in fns}
    for label in _turns(fns, rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fns[label]()
        seconds[label].append(time.perf_counter() - start)
    return seconds


def interleaved_for(fns, rounds, seconds):
    """``(calls, seconds taken)`` of each named function, one sample per round, in
    rotating order: each sample calls its function until ``seconds`` have passed (at
    least once), so a slow function costs one call per round, not a fixed count."""
    samples = {label: [] for label in fns}
    for label in _turns(fns, rounds):
        calls, start = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - start < seconds:
            fns[label]()
            calls += 1
        samples[label].append((calls, time.perf_counter() - start))
    return samples


def paired_ratio(timings, a, b):
    """Median and range of the per-round ratios a/b (of throughputs, or of latencies):
    pairing each round cancels the machine's drift between rounds; 1.0 inside the range
    is 'within noise'."""
    ratios = sorted(x / y for x, y in zip(timings[a]["rounds"], timings[b]["rounds"]))
    return {
        "median": round(statistics.median(ratios), 3),
        "min": round(ratios[0], 3),
        "max": round(ratios[-1], 3),
    }


def main(run, doc, argv=None, skip=(), helps=None):
    """The command line of a benchmark whose ``run`` takes keyword arguments with defaults:
    each becomes an option (``image_size`` -> ``--image-size``; a bool default a flag, a
    None default a string) that keeps the default, and the result prints as JSON.
    ``skip``: parameters left to their defaults; ``helps``: their help texts by name."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, p in inspect.signature(run).parameters.items():
        if name in skip or p.default is inspect.Parameter.empty:
            continue
        flag, text = "--" + name.replace("_", "-"), (helps or {}).get(name)
        if isinstance(p.default, bool):
            parser.add_argument(flag, dest=name, action="store_true", help=text)
        else:
            kind = str if p.default is None else type(p.default)
            parser.add_argument(flag, dest=name, type=kind, default=p.default, help=text)
    print(json.dumps(run(**vars(parser.parse_args(argv))), indent=2))
