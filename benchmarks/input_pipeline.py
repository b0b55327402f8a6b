"""Images/s of kzoo's CIFAR training pipeline (batch first, one vectorised crop + flip
per batch) vs the naive per-example ``ds.map(augment_one).batch()`` of the same
augmentation, on the same in-memory synthetic CIFAR-shaped uint8 data, in one run.
Each round times one full epoch of each, in alternating order; kzoo's goal is >= 2x."""

import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import timing  # noqa: E402
from timing import interleaved, machine, paired_ratio  # noqa: E402

from kzoo import data  # noqa: E402


def pipelines(images, labels, batch, dataset="cifar10"):
    """{label: dataset} for the two pipelines over the same uint8 arrays."""
    base = tf.data.Dataset.from_tensor_slices((images, labels))
    kzoo_ds = data.pipeline(base, dataset, training=True, batch_size=batch, seed=0)
    # The naive pipeline as commonly written, given the same advantages: data already
    # in memory, the same full shuffle, a parallel map, prefetching.
    naive = (
        base.shuffle(len(images), seed=0, reshuffle_each_iteration=True)
        .map(lambda x, y: (data.reference_augment(x, dataset), y), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return {"kzoo": kzoo_ds, "naive": naive}


def _epoch(ds):
    count = 0
    for x, _ in ds:
        count += int(x.shape[0])
    return count


def run(images=50000, batch=128, rounds=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.int32)
    dss = pipelines(x, y, batch)
    # Warm-up (tracing, kzoo's in-memory cache), which also counts what an epoch yields.
    counts = {label: _epoch(ds) for label, ds in dss.items()}
    seconds = interleaved({label: (lambda ds=ds: _epoch(ds)) for label, ds in dss.items()}, rounds)
    samples = {label: [counts[label] / t for t in v] for label, v in seconds.items()}
    timings = {
        label: {"images_per_s": round(statistics.median(v), 1), "rounds": [round(s, 1) for s in v]}
        for label, v in samples.items()
    }
    ratio = paired_ratio(timings, "kzoo", "naive")
    return {
        "benchmark": "input_pipeline",
        "dataset": "cifar10 (synthetic uint8)",
        "images": images,
        "batch": batch,
        "rounds": rounds,
        "kzoo_img_s": timings["kzoo"]["images_per_s"],
        "naive_img_s": timings["naive"]["images_per_s"],
        "ratio": ratio["median"],
        "ratio_range": [ratio["min"], ratio["max"]],
        "per_round": timings,
        "machine": machine(),
    }


if __name__ == "__main__":
    timing.main(run, __doc__)
