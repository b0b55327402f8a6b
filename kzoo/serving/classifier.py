"""Whether a model's output may be served as ``probabilities``: a softmax over the classes.

A model ending in logits (a linear classifier, e.g. ``classifier_activation=None``) is
refused unless ``apply_softmax=True``, which puts the softmax into the graph (and says so
in the card); a model ending in another activation (sigmoid, ...) is refused. Where the
layers do not tell (a custom or subclassed last layer), the model is run on a few random
images: rows of non-negative numbers summing to 1 are probabilities, anything else is
taken for logits.
"""

PROBE_IMAGES = 4
# How far from 1 a row of probabilities may sum, by the dtype it was computed in.
PROBE_TOLERANCE = {"float64": 1e-3, "float32": 1e-3, "float16": 1e-2, "bfloat16": 3e-2}
SOFTMAX_APPLIED = "softmax applied at export (the model outputs logits)"
SOFTMAX_IN_MODEL = "softmax (the model's own)"

_TRANSPARENT = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "AlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "ActivityRegularization",
    "Identity",
    "Cast",
)


def _final_activation(tensor):
    """What the layers say ``tensor`` is: ("softmax" | "logits" | "other" | "unknown",
    a description). Steps back through layers that are the identity at inference and
    into nested models; only keras' own layers are trusted, anything else is "unknown"."""
    import keras

    for _ in range(1000):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return "unknown", "an input"
        op = history.operation
        kind, module = type(op).__name__, type(op).__module__
        where = f"{kind} {getattr(op, 'name', '')!r}"
        if not module.startswith("keras."):
            return "unknown", f"custom {where}"
        if isinstance(op, keras.Model):
            inner = getattr(op, "outputs", None)
            if not inner:
                return "unknown", f"subclassed {where}"
            tensor = inner[history.tensor_index]
            continue
        activation = getattr(op, "activation", None) if isinstance(op, keras.layers.Layer) else None
        linear = activation is None or activation is keras.activations.linear
        if kind in _TRANSPARENT or (kind == "Activation" and linear):
            node = op._inbound_nodes[history.node_index]
            if len(node.input_tensors) != 1:
                return "unknown", where
            tensor = node.input_tensors[0]
            continue
        if kind == "Softmax":  # the layer, or keras.ops.softmax in a functional graph
            axis = getattr(op, "axis", -1)
            if axis in (-1, 1, [-1], [1], (-1,), (1,)):
                return "softmax", where
            return "other", f"{where} over axis {axis}, not over the classes"
        if callable(activation):
            fn = getattr(activation, "__name__", "")
            keras_fn = getattr(activation, "__module__", "").startswith("keras.")
            if activation is keras.activations.softmax or (fn == "softmax" and keras_fn):
                return "softmax", f"{where} with activation softmax"
            if linear:
                return "logits", f"{where} with no activation"
            if keras_fn:
                return "other", f"{where} with activation {fn}"
            return "unknown", f"{where} with a custom activation"
        if module.startswith("keras.src.layers.activations"):  # ReLU, LeakyReLU, ELU, PReLU
            return "other", where
        return "unknown", where
    return "unknown", "a graph too deep to follow"


def _probe(model, info, shape):
    """Run the model on a few random images: (are its rows probabilities?, what was seen)."""
    import numpy as np
    import tensorflow as tf

    from kzoo import data
    from kzoo.models.common import compute_dtype

    images = np.random.default_rng(0).integers(0, 256, (PROBE_IMAGES, *shape), dtype=np.uint8)
    x = data.prepare_for_model(tf.constant(images, tf.float32), info.name, shape[:2])
    out = np.asarray(tf.cast(model(x, training=False), tf.float32))
    dtypes = (str(model.outputs[0].dtype), compute_dtype(model))
    tolerance = max(PROBE_TOLERANCE.get(d, PROBE_TOLERANCE["bfloat16"]) for d in dtypes)
    if not np.all(np.isfinite(out)):
        return False, "non-finite values"
    sums = out.sum(axis=1)
    seen = f"values in [{out.min():.3g}, {out.max():.3g}], rows summing to {sums.min():.4g}..{sums.max():.4g}"
    return bool(out.min() >= -tolerance and np.all(np.abs(sums - 1) <= tolerance)), seen


def check_classifier(model, info, shape, apply_softmax):
    """The card's "classifier" line for ``model``, or a ValueError when its output would
    not be served as probabilities (a softmax over the classes)."""
    kind, where = _final_activation(model.outputs[0])
    logits = (
        "the model outputs logits ({why}); pass `apply_softmax=True` (kzoo export "
        "--apply-softmax) to export softmax(logits) as its probabilities"
    )
    if kind == "other":
        raise ValueError(
            f"the model ends in {where}; kzoo serves `probabilities`, which must be a "
            "softmax over the classes: export a model ending in softmax, or in logits "
            "(no activation) with `apply_softmax=True`"
        )
    if kind == "logits":
        if not apply_softmax:
            raise ValueError(logits.format(why=f"it ends in {where}"))
        return SOFTMAX_APPLIED
    if kind == "softmax" and apply_softmax:
        raise ValueError(
            f"`apply_softmax=True`, but the model already ends in softmax ({where}); a "
            "double softmax would flatten its probabilities: leave `apply_softmax` out"
        )
    are_probabilities, seen = _probe(model, info, shape)
    if kind == "softmax":
        if not are_probabilities:
            raise ValueError(
                f"the model ends in softmax ({where}), but on random images its outputs "
                f"are not probabilities ({seen}); nothing was exported"
            )
        return SOFTMAX_IN_MODEL
    # "unknown": the probe decides.
    if are_probabilities and apply_softmax:
        raise ValueError(
            f"`apply_softmax=True`, but the model's outputs are already probabilities on "
            f"random images ({seen}; it ends in {where}): a double softmax would flatten "
            "them; leave `apply_softmax` out"
        )
    if not are_probabilities:
        if not apply_softmax:
            raise ValueError(
                logits.format(
                    why=f"it ends in {where}, and on random images its outputs are not probabilities: {seen}"
                )
            )
        return SOFTMAX_APPLIED
    return SOFTMAX_IN_MODEL


def probabilities(model, x, apply_softmax):
    """The model's float32 outputs on ``x``, softmax(outputs) with ``apply_softmax``."""
    import tensorflow as tf

    out = tf.cast(model(x, training=False), tf.float32)
    return tf.nn.softmax(out, axis=-1) if apply_softmax else out


def output_kind(model, info, shape):
    """What ``model`` outputs, for a trainer that needs probabilities: ("softmax" |
    "logits" | "other", where), from its layers, or, where they do not tell, from its
    outputs on a few random images (rows of probabilities count as a softmax)."""
    kind, where = _final_activation(model.outputs[0])
    if kind != "unknown":
        return kind, where
    are_probabilities, seen = _probe(model, info, shape)
    return (
        "softmax" if are_probabilities else "logits"
    ), f"{where}, whose outputs on random images have {seen}"
