"""Latency of a kzoo SavedModel's ``serving_default`` signature (uint8 images in,
preprocessing and top-k in the graph) against calling the Keras model it was exported
from on already-normalised floats, at batch 1 and 32, in one run with interleaved rounds.
kzoo's goal: the served graph costs no more than the Keras model it wraps."""

import argparse
import json
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import interleaved, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402
from kzoo import data  # noqa: E402


def _callers(model, served, images, dataset):
    floats = data.prepare_for_model(tf.constant(images, tf.float32), dataset, model.input_shape[1:3])
    floats = tf.constant(floats.numpy())
    signature = served.signatures["serving_default"]
    call = tf.function(lambda x: model(x, training=False))
    return {
        "saved_model_signature": lambda: signature(images=tf.constant(images)),
        "keras_predict_on_batch": lambda: model.predict_on_batch(floats),
        "keras_call_tf_function": lambda: call(floats),
    }


def run(model_name="resnet20", dataset="fashion_mnist", batches=(1, 32), rounds=10, calls=20, warmup=5):
    info = data.dataset_info(dataset)
    keras.utils.set_random_seed(0)
    model = kzoo.create_model(model_name, input_shape=info.image_shape, classes=info.classes)
    results = {}
    with tempfile.TemporaryDirectory() as base:
        exported = kzoo.export(model, base, "bench", dataset=dataset, warmup=False)
        served = tf.saved_model.load(exported.path)
        rng = np.random.default_rng(0)
        for batch in batches:
            images = rng.integers(0, 256, (batch, *info.image_shape), dtype=np.uint8)
            fns = _callers(model, served, images, dataset)
            for fn in fns.values():
                for _ in range(warmup):
                    fn()
            seconds = interleaved(fns, rounds, calls)
            timings = {
                label: {
                    "ms_per_call": round(statistics.median(1000 * t / calls for t in v), 3),
                    "rounds": [round(1000 * t / calls, 3) for t in v],
                }
                for label, v in seconds.items()
            }
            results[f"batch_{batch}"] = {
                **timings,
                "signature_vs_keras_tf_function": paired_ratio(
                    timings, "saved_model_signature", "keras_call_tf_function"
                ),
            }
    return {
        "benchmark": "serving_latency",
        "model": model_name,
        "dataset": dataset,
        "input_shape": list(info.image_shape),
        "rounds": rounds,
        "calls_per_round": calls,
        "latency": results,
        "machine": machine(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(args.model, args.dataset, rounds=args.rounds, calls=args.calls), indent=2))


if __name__ == "__main__":
    main()
