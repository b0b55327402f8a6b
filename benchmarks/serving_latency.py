"""Latency of one model served four ways, uint8 images in and preprocessing and top-k
inside: the SavedModel's ``serving_default`` signature (TensorFlow), ``model.onnx`` run by
ONNX Runtime, ``model.tflite`` run by LiteRT, float and dynamic-range int8; next to the
Keras model it was exported from, called on already-normalised floats. Batch 1 and 32,
in one run, interleaved rounds, each runtime timed through its own call (not kzoo's
batching runner), with latency ratios against the SavedModel paired round by round.
Every runtime's answers are checked against the SavedModel's before it is timed, so a
wrong model is never timed. kzoo's goal: the served graph costs no more than the Keras
model it wraps."""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import interleaved, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402
from kzoo import data  # noqa: E402
from kzoo.serving import formats, verification  # noqa: E402

REFERENCE = "saved_model_signature"
# label: (kzoo.export options, quantised); one export, hence one model directory, each.
RUNTIMES = {
    "onnxruntime": ({"format": "onnx"}, False),
    "litert": ({"format": "litert"}, False),
    "litert_dynamic_int8": ({"format": "litert", "quantize": "dynamic_int8"}, True),
}
CHECK_IMAGES = 256  # of the test set when it is on this machine, else random
FLOAT_TOLERANCE = verification.FLOAT32_TOLERANCE  # max |probability difference| from the SavedModel
QUANTIZED_MIN_AGREEMENT = verification.QUANTIZED_MIN_AGREEMENT  # top-1 agreement with it


def _runtime_call(label, path, threads):
    """fn(uint8 images) -> {output: array}: the runtime's own call on ``path`` with
    ``threads`` intra-op threads. LiteRT resizes its input whenever the batch changes,
    so each batch size gets its own call (interpreter) from here."""
    if label == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # sequential execution, ORT's default mode
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        (feed,) = session.get_inputs()
        if feed.name != "images" or feed.type != "tensor(uint8)":
            raise RuntimeError(f"{path}: expected a uint8 input 'images', found {feed.name!r} {feed.type}")
        return lambda images: dict(zip(names, session.run(names, {"images": images})))
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_path=path, num_threads=threads).get_signature_runner()
    return lambda images: run(images=images)


def _compare(answer, reference):
    return {
        "max_abs_diff_probabilities": float(
            np.abs(answer["probabilities"] - reference["probabilities"]).max()
        ),
        "top1_agreement": float(np.mean(answer["classes"][:, 0] == reference["classes"][:, 0])),
    }


def _check(label, quantized, answer, reference, what, gate_agreement=True):
    """The comparison of ``answer`` with the SavedModel's, or a RuntimeError: a float
    runtime must give its probabilities to FLOAT_TOLERANCE, a quantised one its top-1
    class on QUANTIZED_MIN_AGREEMENT of the images (when ``gate_agreement``)."""
    figures = _compare(answer, reference)
    if not quantized and not figures["max_abs_diff_probabilities"] <= FLOAT_TOLERANCE:
        raise RuntimeError(
            f"{label} disagrees with the SavedModel on {what}: max probability difference "
            f"{figures['max_abs_diff_probabilities']:.3g} > {FLOAT_TOLERANCE:g}; not timed"
        )
    if quantized and gate_agreement and not figures["top1_agreement"] >= QUANTIZED_MIN_AGREEMENT:
        raise RuntimeError(
            f"{label} agrees with the SavedModel's top-1 class on only {figures['top1_agreement']:.1%} "
            f"of {what} (at least {QUANTIZED_MIN_AGREEMENT:.0%} required); not timed"
        )
    return figures


def _check_images(info, data_dir):
    found = data.at_hand(info.name, "test", data_dir=data_dir, limit=CHECK_IMAGES)
    if found is not None:
        return found[0], f"the first {len(found[0])} {info.name} test images"
    images = np.random.default_rng(1).integers(0, 256, (CHECK_IMAGES, *info.image_shape), dtype=np.uint8)
    return images, f"{CHECK_IMAGES} random uint8 images ({info.name}'s test set is not on this machine)"


def _callers(model, signature, images, dataset, runtime_calls):
    floats = data.prepare_for_model(tf.constant(images, tf.float32), dataset, model.input_shape[1:3])
    floats = tf.constant(floats.numpy())
    call = tf.function(lambda x: model(x, training=False))
    return {
        REFERENCE: lambda: signature(images=tf.constant(images)),
        "keras_predict_on_batch": lambda: model.predict_on_batch(floats),
        "keras_call_tf_function": lambda: call(floats),
        **{label: (lambda fn=fn: fn(images)) for label, fn in runtime_calls.items()},
    }


def _reference(signature, images):
    return {k: v.numpy() for k, v in signature(images=tf.constant(images)).items()}


def run(
    model_name="resnet20",
    dataset="fashion_mnist",
    batches=(1, 32),
    rounds=10,
    calls=20,
    warmup=5,
    threads=None,
    data_dir=None,
):
    """``threads``: intra-op threads of ONNX Runtime and LiteRT (default: one per CPU,
    as TensorFlow's default); ``data_dir``: where the dataset's test images are for the
    pre-timing check (random images when they are not on this machine)."""
    info = data.dataset_info(dataset)
    threads = len(os.sched_getaffinity(0)) if threads is None else threads
    keras.utils.set_random_seed(0)
    model = kzoo.create_model(model_name, input_shape=info.image_shape, classes=info.classes)
    check_images, check_what = _check_images(info, data_dir)
    results, checks = {}, {}
    with tempfile.TemporaryDirectory() as base:
        exported = kzoo.export(model, base, "bench", dataset=dataset, warmup=False, data_dir=data_dir)
        signature = tf.saved_model.load(exported.path).signatures["serving_default"]
        paths = {}
        for label, (options, quantized) in RUNTIMES.items():
            # verified below against the SavedModel, with the very call that is timed
            written = kzoo.export(model, base, f"bench_{label}", dataset=dataset, verify=False, **options)
            paths[label] = os.path.join(written.path, formats.MARKERS[options["format"]])
            answer = _runtime_call(label, paths[label], threads)(check_images)
            checks[label] = {
                "images": check_what,
                **_check(label, quantized, answer, _reference(signature, check_images), check_what),
                **(
                    {"min_top1_agreement": QUANTIZED_MIN_AGREEMENT}
                    if quantized
                    else {"tolerance": FLOAT_TOLERANCE}
                ),
            }
        rng = np.random.default_rng(0)
        for batch in batches:
            images = rng.integers(0, 256, (batch, *info.image_shape), dtype=np.uint8)
            runtime_calls = {label: _runtime_call(label, path, threads) for label, path in paths.items()}
            reference = _reference(signature, images)
            batch_checks = {
                label: _check(
                    label, RUNTIMES[label][1], fn(images), reference, f"the batch of {batch}", False
                )
                for label, fn in runtime_calls.items()
            }
            fns = _callers(model, signature, images, dataset, runtime_calls)
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
                "signature_vs_keras_tf_function": paired_ratio(timings, REFERENCE, "keras_call_tf_function"),
                # latency of each caller / the SavedModel signature's: below 1 is faster
                "vs_saved_model_signature": {
                    label: paired_ratio(timings, label, REFERENCE) for label in timings if label != REFERENCE
                },
                "checks": batch_checks,
            }
    return {
        "benchmark": "serving_latency",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": model_name,
        "dataset": dataset,
        "input_shape": list(info.image_shape),
        "rounds": rounds,
        "calls_per_round": calls,
        "threads": {
            # 0: TensorFlow's default, one thread per CPU
            "tensorflow_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "onnxruntime_intra_op": threads,
            "litert": threads,
        },
        "checks": checks,
        "latency": results,
        "machine": machine(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime and LiteRT threads")
    parser.add_argument("--data-dir", default=None, help="where the dataset's test images are")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="also replace the serving_latency part of benchmarks/results/latest.json and regenerate SUMMARY.md",
    )
    args = parser.parse_args()
    result = run(
        args.model,
        args.dataset,
        rounds=args.rounds,
        calls=args.calls,
        threads=args.threads,
        data_dir=args.data_dir,
    )
    if args.write_results:
        import summary

        summary.update("serving_latency", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
