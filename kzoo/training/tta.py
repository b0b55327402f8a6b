"""Test-time augmentation: a test image scored as the mean of the class probabilities of
several views of it (its mirror image, and one-pixel shifts), as airbench scores
CIFAR-10. ``flip`` averages the image and its mirror image; ``flip_translate`` adds both
shifted by one pixel up-left and down-right, the six views weighted equally;
``multicrop`` takes the same six views weighted as airbench weights them (the image and
its mirror 1/4 each, the four shifted views 1/8 each). The views are those the training
augmentation made familiar, so a dataset that is not trained with flips (digits: a
mirrored 2 is not a 2) refuses them."""

import keras
from keras import ops

from kzoo import checks

TTA_CHOICES = ("flip", "flip_translate", "multicrop")


def check_tta(tta, info):
    """``tta`` checked against the dataset ``info`` (a DatasetSpec): None, or one of
    TTA_CHOICES for a dataset whose training augmentation flips."""
    if tta is None:
        return None
    if not isinstance(tta, str):
        raise TypeError(f"`tta` must be None or one of {', '.join(map(repr, TTA_CHOICES))}, got {tta!r}")
    checks.choice(tta, "tta", TTA_CHOICES)
    if not info.augmentation.flip:
        raise ValueError(
            f"`tta`={tta!r} averages over mirrored images, but {info.name!r} is not trained with "
            "flips (its images are not mirror-symmetric): use tta=None"
        )
    return tta


def _shift(x, dy, dx):
    """``x`` [B, H, W, C] moved by ``dy`` rows down and ``dx`` columns right (each -1, 0
    or 1), the uncovered border reflected: padded by one pixel, then cropped back."""
    padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    return padded[:, 1 - dy : (-1 - dy) or None, 1 - dx : (-1 - dx) or None, :]


def views(x, tta):
    """The batch ``x`` [B, H, W, C] as the list of views ``tta`` averages over."""
    flipped = ops.flip(x, axis=2)
    out = [x, flipped]
    if tta in ("flip_translate", "multicrop"):
        out += [_shift(v, d, d) for v in (x, flipped) for d in (-1, 1)]
    return out


def view_weights(tta):
    """The weight of each of ``views``' views in the mean (summing to 1)."""
    if tta == "multicrop":
        return [0.25, 0.25] + [0.125] * 4
    count = view_count(tta)
    return [1.0 / count] * count


def view_count(tta):
    """How many views of each image ``tta`` scores (1 without it): what a test pass costs."""
    return 1 if tta is None else 2 + 4 * (tta in ("flip_translate", "multicrop"))


def _outputs_probabilities(model):
    """Whether the layer making ``model``'s output ends in a softmax (kzoo's classifiers
    do unless built with ``classifier_activation=None``; a loaded model too). Any other
    output layer is taken to give logits."""
    history = getattr(model.outputs[0], "_keras_history", None) if model.outputs else None
    layer = history.operation if history is not None else model.layers[-1]
    return getattr(layer, "activation", None) is keras.activations.softmax


def tta_model(model, tta):
    """``model`` (same weights) seen through ``tta``: its output is the (weighted) mean,
    over the views, of the class probabilities (a softmax is applied to a logits model's views),
    in float32 whatever the dtype policy. The views go through ``model`` as one batch."""
    checks.choice(tta, "tta", TTA_CHOICES)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"`model` must have one input and one output for `tta`, got {model.name!r}")
    inputs = keras.Input(model.input_shape[1:], dtype=model.inputs[0].dtype, name="images")
    seen = views(inputs, tta)
    stacked = ops.concatenate(seen, axis=0)  # one call of the model for every view
    scores = ops.cast(model(stacked, training=False), "float32")
    if not _outputs_probabilities(model):
        scores = ops.softmax(scores, axis=-1)
    parts = ops.split(scores, len(seen), axis=0)
    mean = sum(weight * part for weight, part in zip(view_weights(tta), parts))
    return keras.Model(inputs, mean, name=f"{model.name}_tta_{tta}")
