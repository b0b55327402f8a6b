"""The model a run trains or scores: checked against the dataset before any data is read,
and, for a registered name, built with the dataset's classes and image shape."""

import inspect

import keras

from kzoo import checks


def check_model_fits(model, info, arg="model"):
    """Refuse a model that cannot be trained or scored on dataset ``info``: unbuilt, not
    one image input and one ``[batch, classes]`` output, or of another class count or
    image shape. Needs no data, so it runs before any is read."""
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError(
            f"`{arg}` is not built: build it (call it on a batch, or use a functional "
            "model) before training or evaluating it"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"`{arg}` must have one image input and one output of class scores, it has "
            f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)"
        )
    if len(model.output_shape) != 2:
        raise ValueError(
            f"`{arg}` must output [batch, classes], its output has shape {model.output_shape} "
            "(a per-pixel or unpooled output? build it with include_top=True)"
        )
    classes = model.output_shape[-1]
    if classes != info.classes:
        raise ValueError(
            f"`{arg}`: the model predicts {classes} classes but dataset {info.name!r} has {info.classes}; "
            f"build it with classes={info.classes}, or give it a new head: "
            f"kzoo.adapt(model, classes={info.classes})"
        )
    expected = tuple(model.input_shape[1:])
    if len(expected) != 3 or any(e is not None and e != d for e, d in zip(expected, info.image_shape)):
        raise ValueError(
            f"`{arg}`: the model takes inputs of shape {expected} but dataset {info.name!r} has images of "
            f"shape {info.image_shape}; kzoo.adapt(model, input_shape={tuple(info.image_shape)}) adapts it"
        )
    check_gives_probabilities(model, info, arg)


def check_gives_probabilities(model, info, arg="model"):
    """Refuse a model whose output is not a softmax over the classes: the run's loss and
    cross-entropy take probabilities, and logits trained as such learn nothing useful
    while the run looks finished. What the layers say decides; where they do not tell,
    the model's outputs on a few random images."""
    from kzoo.serving.classifier import output_kind

    kind, where = output_kind(model, info, tuple(info.image_shape))
    if kind != "softmax":
        raise ValueError(
            f"`{arg}` ends in {where}, not a softmax over the classes: kzoo trains and scores "
            "class probabilities (its loss expects them). Build it with classifier_activation="
            "'softmax', or end it in one: keras.Model(model.input, keras.layers.Softmax()(model.output))"
        )


def check_model_before_data(model, model_kwargs, info):
    """Everything about the model that can be refused before data is read (the builder's
    own arguments are checked by building it, also before any data). ``model`` is a
    registered name or a keras.Model (``RunConfig`` checked that)."""
    from kzoo.models.registry import model_info

    if isinstance(model, keras.Model):
        if model_kwargs:
            raise ValueError("`model_kwargs` only applies when `model` is a registered name")
        check_model_fits(model, info)
        return
    model_info(model)
    check_dataset_kwargs(model_kwargs, info)


def check_model_type(model):
    """``model`` as a run takes it: a name (registered, ``keras:NAME`` or a ``.keras``
    file) or a keras.Model."""
    if not isinstance(model, (str, keras.Model)):
        raise TypeError(
            f"`model` must be a registered model name, keras:NAME, a .keras file or a keras.Model, got {model!r}"
        )
    return model


def model_precision(model, asked, resolved):
    """A built model's precision, read from its layers (a loaded mixed-precision model's
    own policy says float32). A precision asked for that it does not have would do nothing."""
    from kzoo.models import common

    dtype = common.compute_dtype(model)
    own = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}.get(dtype, "float32")
    if asked != "auto" and resolved != own:
        raise ValueError(
            f"`mixed_precision`={asked!r} does nothing for a built model, which computes in {dtype} "
            f"({own}): build it under keras.config.set_dtype_policy({resolved!r}), or leave "
            "`mixed_precision` at 'auto'"
        )
    return own


def check_dataset_kwargs(model_kwargs, info):
    """``classes`` / ``input_shape`` in ``model_kwargs`` must agree with dataset ``info``,
    which sets them."""
    for key in ("classes", "input_shape"):
        if key in model_kwargs and not _fits(key, model_kwargs[key], info):
            what = (
                f"{info.classes} classes"
                if key == "classes"
                else f"images of shape {tuple(info.image_shape)}"
            )
            raise ValueError(
                f"`model_kwargs`: {key}={model_kwargs[key]!r} disagrees with dataset {info.name!r}, "
                f"which has {what}; leave it out (the dataset sets it)"
            )


def _fits(key, value, info):
    if key == "classes":
        return not isinstance(value, bool) and value == info.classes
    if not isinstance(value, (list, tuple)) or len(value) != len(info.image_shape):
        return False
    return all(v is None or (not isinstance(v, bool) and v == d) for v, d in zip(value, info.image_shape))


def check_builder_kwargs(builder, model_kwargs, info, origin=""):
    """Build registered model ``builder`` (a ``ModelInfo``) once with ``model_kwargs``
    alone, for dataset ``info``, before any data: a key it does not take (unless it takes
    ``**kwargs``) is named with a hint, a build error is blamed on ``model_kwargs`` (with
    none, on the architecture against the dataset), and the output must be [batch,
    classes]. ``origin``: where ``model_kwargs`` came from, added to the message."""
    check_dataset_kwargs(model_kwargs, info)
    params = inspect.signature(builder.builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        try:
            checks.unknown_keys(model_kwargs, list(params), "model_kwargs", f"argument(s) of {builder.name}")
        except ValueError as err:
            raise ValueError(f"{err}{origin}") from None
    try:
        output = tuple(builder.build(**for_dataset(model_kwargs, info)).output_shape)
    except (ValueError, TypeError) as err:
        if not model_kwargs:  # nothing of the user's: the architecture does not fit the dataset
            raise type(err)(
                f"`model` {builder.name} cannot be built for dataset {info.name!r} (images of "
                f"shape {tuple(info.image_shape)}, {info.classes} classes): {err}"
            ) from None
        raise blame_model_kwargs(err, builder.name, model_kwargs, origin) from None
    finally:
        keras.backend.clear_session()
    if len(output) != 2 or output[-1] != info.classes:
        raise ValueError(
            f"`model_kwargs`={model_kwargs!r} make {builder.name} output shape {output}, not "
            f"[batch, {info.classes}] class scores for {info.name!r}"
        )


def for_dataset(model_kwargs, info):
    """Builder keywords for dataset ``info``: its classes and image shape, unless
    ``model_kwargs`` set them."""
    kwargs = dict(model_kwargs)
    kwargs.setdefault("classes", info.classes)
    kwargs.setdefault("input_shape", info.image_shape)
    return kwargs


def blame_model_kwargs(err, name, model_kwargs, origin=""):
    """A builder's error caused by ``model_kwargs``, as theirs (of the same kind)."""
    kind = TypeError if isinstance(err, TypeError) else ValueError
    return kind(f"`model_kwargs`: {name} cannot be built with {model_kwargs!r}{origin}: {err}")


def build_model(model, model_kwargs, info):
    """The model to train; a registered one built with the dataset's classes and image
    shape, an error in ``model_kwargs`` reported as theirs."""
    from kzoo.models.registry import model_info

    if isinstance(model, keras.Model):
        return model
    try:
        net = model_info(model).build(**for_dataset(model_kwargs, info))
    except (TypeError, ValueError) as err:
        if not model_kwargs:
            raise
        raise blame_model_kwargs(err, model, model_kwargs) from None
    check_model_fits(net, info, "model_kwargs")
    return net


ERASING = ("erase", "proportion")  # the builder options that remove activations


def build_original(model, model_kwargs, info):
    """The network a run or tag built by name (``model`` with ``model_kwargs``) before its
    erasure: the same builder with ``erase``/``proportion`` set to None, what
    ``kzoo.activation_stats(original=)`` reads the erased ReLUs' places from. None when
    nothing was erased, or the model was not built by name."""
    from kzoo.models.registry import model_info

    if not isinstance(model, str) or not any(model_kwargs.get(k) is not None for k in ERASING):
        return None
    builder = model_info(model)  # a tag's options are its builder's defaults: erasure undone by None
    kept = {k: v for k, v in model_kwargs.items() if k != "weights"}
    kept.update({k: None for k in ERASING if k in kept or k in builder.kwargs})
    return builder.build(**for_dataset(kept, info))
