"""Checking an export with its own runtime before it is published: the written file
(SavedModel, ONNX, LiteRT) is run on images and compared with the Keras model it came
from. Real test images are used when the dataset is on this machine (``kzoo.data.
at_hand``, never a download), random ones otherwise; the card says which.

A float export must give the Keras model's probabilities to ``tolerance``; a quantised
one its top-1 class on at least ``QUANTIZED_MIN_AGREEMENT`` of the images, and its top-1
accuracy on the whole test set, next to the Keras model's, is measured for the card.
Anything else is refused: nothing is published.
"""

import numpy as np

from kzoo.models.common import compute_dtype
from kzoo.serving import classifier, runtimes

VERIFY_IMAGES = 256
RANDOM_IMAGES = 16
QUANTIZED_MIN_AGREEMENT = 0.9
FLOAT32_TOLERANCE = 1e-4
HALF_TOLERANCE = 1e-2  # a mixed-precision model's Keras outputs are bf16/fp16 rounded


def verification_images(info, shape, test_set=None):
    """(uint8 images [n, *shape], what they are): the first images of ``test_set``
    (images, labels, where; None when not at hand), else random ones."""
    if test_set is not None:
        images = test_set[0][:VERIFY_IMAGES]
        return images, f"the first {len(images)} {info.name} test images"
    images = np.random.default_rng(0).integers(0, 256, (RANDOM_IMAGES, *shape), dtype=np.uint8)
    return images, f"{RANDOM_IMAGES} random uint8 images ({info.name}'s test set is not on this machine)"


def keras_probabilities(model, images, info, shape, apply_softmax):
    """What the export should answer: the Keras model on the images prepared as kzoo's
    evaluation pipeline prepares them."""
    import tensorflow as tf

    from kzoo import data

    parts = []
    for i in range(0, len(images), runtimes.BATCH):
        x = data.prepare_for_model(
            tf.constant(images[i : i + runtimes.BATCH], tf.float32), info.name, shape[:2]
        )
        parts.append(np.asarray(classifier.probabilities(model, x, apply_softmax)))
    return np.concatenate(parts)


def verify(model, fmt, path, info, shape, apply_softmax, test_set=None, quantize=None, mixed=None):
    """Run ``path`` with ``fmt``'s runtime against ``model``; the figures for the card,
    or a RuntimeError (nothing is published) when they disagree. ``mixed``: the
    mixed-precision model that ``model`` is the float32 copy of, whose distance from it
    the figures give too (for the card, not a check)."""
    if test_set is not None and test_set[0].shape[1:] != tuple(shape):
        test_set = None  # not of the model's size: random images, and no test-set top-1
    images, what = verification_images(info, shape, test_set)
    run = runtimes.runner(fmt, path)
    served = run(images)
    expected = keras_probabilities(model, images, info, shape, apply_softmax)
    difference = float(np.abs(served["probabilities"] - expected).max())
    agreement = float(np.mean(served["classes"][:, 0] == expected.argmax(axis=1)))
    figures = {
        "runtime": runtimes.runtime_version(fmt),
        "images": what,
        "max_abs_diff_probabilities": difference,
        "top1_agreement": agreement,
    }
    if mixed is not None:
        half = keras_probabilities(mixed, images, info, shape, apply_softmax)
        figures["mixed_precision_model"] = compute_dtype(mixed)
        figures["max_abs_diff_to_mixed_precision_model"] = float(np.abs(expected - half).max())
        figures["top1_agreement_with_mixed_precision_model"] = float(
            np.mean(expected.argmax(1) == half.argmax(1))
        )
    if quantize is None:
        tolerance = FLOAT32_TOLERANCE if compute_dtype(model) == "float32" else HALF_TOLERANCE
        figures["tolerance"] = tolerance
        if not difference <= tolerance:
            raise RuntimeError(
                f"the {fmt} export, run by {figures['runtime']}, disagrees with the Keras model on "
                f"{what}: max probability difference {difference:.3g} > {tolerance:g}; nothing was published"
            )
    else:
        figures["min_top1_agreement"] = QUANTIZED_MIN_AGREEMENT
        if not agreement >= QUANTIZED_MIN_AGREEMENT:
            raise RuntimeError(
                f"the {quantize}-quantised {fmt} export agrees with the Keras model's top-1 class on "
                f"only {agreement:.1%} of {what} (at least {QUANTIZED_MIN_AGREEMENT:.0%} is required); "
                "nothing was published"
            )
        if test_set is not None:
            figures.update(top1_change_on_test_set(model, run, info, shape, apply_softmax, test_set))
        else:
            figures["test_top1_change"] = None
            figures["test_top1_change_note"] = f"not measured: {info.name}'s test set is not on this machine"
    return figures


def top1_change_on_test_set(model, run, info, shape, apply_softmax, test_set):
    """Top-1 on the whole test set of the Keras model and of the quantised export."""
    images, labels, _ = test_set
    keras_top1 = float(
        np.mean(keras_probabilities(model, images, info, shape, apply_softmax).argmax(1) == labels)
    )
    export_top1 = float(np.mean(run(images)["classes"][:, 0] == labels))
    return {
        "test_images": f"the {len(images)} {info.name} test images",
        "test_top1_keras": keras_top1,
        "test_top1_export": export_top1,
        "test_top1_change": export_top1 - keras_top1,
    }
