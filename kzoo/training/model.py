"""The model a run trains or scores: checked against the dataset before any data is read,
and, for a registered name, built with the dataset's classes and image shape."""

import keras


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
    own arguments are checked by building it, also before any data)."""
    from kzoo.models.registry import model_info

    if isinstance(model, keras.Model):
        if model_kwargs:
            raise ValueError("`model_kwargs` only applies when `model` is a registered name")
        check_model_fits(model, info)
        return
    if not isinstance(model, str):
        raise TypeError(
            f"`model` must be a registered model name, keras:NAME, a .keras file or a keras.Model, got {model!r}"
        )
    model_info(model)
    if "classes" in model_kwargs and model_kwargs["classes"] != info.classes:
        raise ValueError(
            f"`model_kwargs`: classes={model_kwargs['classes']!r} disagrees with dataset {info.name!r}, "
            f"which has {info.classes} classes"
        )


def build_model(model, model_kwargs, info):
    """The model to train; a registered one built with the dataset's classes and image
    shape, an error in ``model_kwargs`` reported as theirs."""
    from kzoo.models.registry import model_info

    if isinstance(model, keras.Model):
        return model
    kwargs = dict(model_kwargs)
    kwargs.setdefault("classes", info.classes)
    kwargs.setdefault("input_shape", info.image_shape)
    try:
        net = model_info(model).build(**kwargs)
    except (TypeError, ValueError) as err:
        if not model_kwargs:
            raise
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"`model_kwargs`={model_kwargs!r} for {model}: {err}") from None
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
    kept.setdefault("classes", info.classes)
    kept.setdefault("input_shape", info.image_shape)
    return builder.build(**kept)
