"""Pretrained weights by name: timm-style tags (``resnet20.fashion_mnist_eraserelu``) for
the weights kzoo trained, and the checksum-verified lookup that loads them.

A tag's record (``Pretrained``) says what the weights are for (architecture, builder
options, input shape, classes, dataset) and how they were made and scored. The records
are ``kzoo/weights/pretrained.json``, written by ``kzoo publish``; the weights files
(``<tag>-<sha256[:8]>.weights.h5``) are looked up in the package, then in the cache (``$KZOO_HOME/weights``,
else ``~/.keras/models``), then downloaded from ``$KZOO_WEIGHTS_URL`` (else
``DEFAULT_BASE_URL``). A file whose sha256 differs from the record's is refused. The
records are read and checked in kzoo.models.pretrained_records, the files looked up in
kzoo.models.pretrained_files; this module is what the builders call.

A builder's ``weights`` takes a dataset name or a tag (``weights="fashion_mnist"``), as
keras.applications takes "imagenet": the tag whose options match the call is loaded, and a
call no tag matches is refused with the list of tags that exist. The input a call asks
for (``input_shape``, or an ``input_tensor``'s shape) is checked against the weights the
same way, whichever way it is given, before anything is built.
"""

import contextlib
import fnmatch
import json
import os
import warnings

from kzoo import checks
from kzoo.models import pretrained_files as files
from kzoo.models import pretrained_records as records
from kzoo.models.pretrained_files import DEFAULT_BASE_URL, base_url, cache_dir, sha256  # noqa: F401
from kzoo.models.pretrained_records import MANIFEST, Pretrained  # noqa: F401

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# The keras.applications arguments: everything else in a builder's signature is an option
# (depth, placement) that the weights depend on.
KERAS_ARGS = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
)


def read_manifest(directory=None):
    """The records in ``directory``'s manifest (default: the package's), by tag; empty
    when it has none. A damaged one is refused naming the file and the tag."""
    return records.read_manifest(directory or PACKAGE_DIR)


_TAGS = None


def _tags():
    global _TAGS
    if _TAGS is None:
        _TAGS = read_manifest()
    return _TAGS


def reload():
    """Read the package's manifest again (after ``kzoo publish`` wrote it)."""
    global _TAGS
    _TAGS = None
    return _tags()


def is_tag(name):
    """Whether ``name`` is written as a tag (``arch.variant``)."""
    return isinstance(name, str) and "." in name and not name.endswith((".h5", ".keras"))


def list_tags(patterns=("*",), architectures=None):
    """Tags matching one of ``patterns`` (by the tag, or by its architecture's name) and,
    when given, whose architecture is in ``architectures``; in the manifest's order."""
    return [
        tag
        for tag, record in _tags().items()
        if any(fnmatch.fnmatchcase(tag, p) or fnmatch.fnmatchcase(record.architecture, p) for p in patterns)
        and (architectures is None or record.architecture in architectures)
    ]


def get(tag):
    """The record of ``tag``, or a ValueError listing the tags that exist."""
    if not isinstance(tag, str):
        raise TypeError(f"a pretrained tag must be a string, got {tag!r}")
    record = _tags().get(tag.lower())
    if record is None:
        raise ValueError(f"Unknown pretrained tag {tag!r}. {listing()}")
    return record


def listing(tags=None):
    tags = list(_tags()) if tags is None else tags
    if not tags:
        return "kzoo has no pretrained weights installed (see kzoo.list_models(pretrained=True))."
    return "Pretrained tags: " + ", ".join(tags) + "."


class FixedSizeError(ValueError):
    """An input without a fixed height and width, given to a model that needs one (an
    MLP flattens its input; kzoo.models.common raises it): loading weights without the
    top asks for it by its type."""


def names_weights(value):
    """Whether a builder's ``weights`` value names published weights (a dataset or a tag)
    rather than a file: a string without a path separator that is not an existing file."""
    return (
        isinstance(value, str)
        and os.sep not in value
        and "/" not in value
        and not value.endswith((".h5", ".keras"))
        and not os.path.isfile(value)
    )


def _options(signature, arguments, owner):
    """The arguments of a build that are not keras.applications', defaults applied."""
    bound = checks.bind(signature, owner, **arguments)
    return {k: v for k, v in bound.arguments.items() if k not in KERAS_ARGS}


def _canonical(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def match(info, signature, arguments):
    """The record that a build of the architecture ``info`` (its registry entry) with
    ``arguments`` (its builder's ``signature``; ``arguments["weights"]`` a dataset name, a
    tag, or None for any of the architecture's tags) asks for, or a ValueError listing
    the architecture's tags."""
    wanted = arguments.get("weights")
    own = list_tags(architectures=(info.name,))
    asked = "`pretrained=True`" if wanted is None else f"`weights`={wanted!r}"
    if not own:
        raise ValueError(f"{asked}: kzoo has no pretrained weights for {info.name}. {listing()}")
    named = [t for t in own if wanted is None or wanted.lower() in (t, _tags()[t].dataset)]
    if not named:
        datasets = sorted({_tags()[t].dataset for t in own})
        raise ValueError(
            f"`weights` must be None, a weights file, a dataset with weights for {info.name} "
            f"({', '.join(datasets)}) or one of its tags; got {wanted!r}. {listing(own)}"
        )
    options = _canonical(_options(signature, {**info.kwargs, **arguments}, info.name))
    for tag in named:
        record = _tags()[tag]
        theirs = _options(signature, {**info.kwargs, **record.options}, f"the record of {tag}")
        if _canonical(theirs) == options:
            return record
    given = {k: v for k, v in options.items() if k not in info.kwargs}
    raise ValueError(
        f"{asked}: no pretrained {info.name} has the options {given}; "
        + "the tags have "
        + "; ".join(f"{t}: {_tags()[t].options or 'the defaults'}" for t in named)
        + ". Pass the options of one of them."
    )


def _given_inputs(arguments):
    """[(how the call names it, (H, W, C))] for the input shapes the call gives:
    ``input_shape`` and ``input_tensor``'s alike (a malformed one is left to the builder)."""
    import keras

    given = []
    shape = arguments.get("input_shape")
    if isinstance(shape, (tuple, list)) and len(shape) == 3:
        given.append((f"`input_shape`={tuple(shape)}", tuple(shape)))
    tensor = arguments.get("input_tensor")
    if tensor is not None and keras.backend.is_keras_tensor(tensor) and len(tensor.shape) == 4:
        given.append((f"`input_tensor` of shape {tuple(tensor.shape)}", tuple(tensor.shape)[1:]))
    return given


def _check_fit(record, arguments, given):
    """Refuse ``classes`` or an input (``input_shape``, ``input_tensor``) the weights do
    not fit: with the top, their own size and classes; without it, their channels."""
    if not arguments["include_top"]:
        for what, shape in given:
            if shape[-1] != record.input_shape[-1]:
                raise ValueError(
                    f"{what} has {shape[-1]} channels; the weights of {record.tag} take "
                    f"{record.input_shape[-1]} (input_shape {record.input_shape})"
                )
        return
    if arguments.get("classes") != record.classes:
        raise ValueError(
            f"`classes`={arguments.get('classes')!r} does not fit the weights of {record.tag} "
            f"({record.classes} classes); pass classes={record.classes}, or include_top=False for "
            "the backbone only"
        )
    for what, shape in given:
        if shape != record.input_shape:
            fix = (
                "leave it out"
                if what.startswith("`input_shape`")
                else f"give it the shape {record.input_shape}"
            )
            raise ValueError(
                f"{what} does not fit the weights of {record.tag} (input_shape {record.input_shape}); "
                f"{fix}, or pass include_top=False for the backbone only"
            )


def weights_file(record, package_dir=None):
    """A local copy of ``record``'s weights whose sha256 is the record's (kzoo.models.pretrained_files)."""
    return files.weights_file(record, package_dir or PACKAGE_DIR)


def build(info, signature, call, arguments):
    """Build the architecture ``info`` (its registry entry, ``kzoo.model_info``'s) by
    ``call(**arguments)`` (``signature``: the builder's) with
    the published weights that ``arguments["weights"]`` names loaded into it: all of them,
    or the backbone's only when ``include_top=False`` (any input size, the weights'
    channels; the weights' own size for a model whose weights depend on it, like an MLP).
    Every way of giving the input is checked alike, before anything is built."""
    arguments = dict(checks.bind(signature, info.name, **arguments).arguments)
    checks.boolean(arguments["include_top"], "include_top")
    record = match(info, signature, arguments)
    given = _given_inputs(arguments)
    _check_fit(record, arguments, given)
    path = weights_file(record)
    arguments = {**arguments, "weights": None}
    if arguments["include_top"]:
        if arguments.get("input_shape") is None and arguments.get("input_tensor") is None:
            arguments["input_shape"] = record.input_shape
        model = call(**arguments)
        _load(model, path, record)
        return model
    model = _backbone(call, arguments, record)
    full = call(
        **{
            **arguments,
            "include_top": True,
            "pooling": None,
            "input_shape": record.input_shape,
            "classes": record.classes,
            "input_tensor": None,
        }
    )
    _load(full, path, record)
    for layer in model.layers:
        if layer.weights:
            _copy_weights(full.get_layer(layer.name), layer, record, model)
    return model


def _backbone(call, arguments, record):
    """The model without its top, at the input asked for; by default at any size with the
    weights' channels, or at the weights' own size for a model that needs a fixed one."""
    if arguments.get("input_shape") is not None or arguments.get("input_tensor") is not None:
        return call(**arguments)
    try:
        return call(**{**arguments, "input_shape": (None, None, record.input_shape[-1])})
    except FixedSizeError:
        return call(**{**arguments, "input_shape": record.input_shape})


def _copy_weights(source, layer, record, model):
    """``source``'s weights (the full model's) into the backbone's ``layer``, refused in
    kzoo's words where the input size changed their shapes (an MLP's first layer)."""
    values = source.get_weights()
    here = [tuple(w.shape) for w in layer.weights]
    if here != [v.shape for v in values]:
        raise ValueError(
            f"the backbone of {record.tag} at input shape {tuple(model.input_shape[1:])} does not take "
            f"its weights: its layer {layer.name!r} holds weights of shapes {here}, the weights "
            f"{[v.shape for v in values]}, made at input_shape {record.input_shape}. This model's "
            f"weights depend on the image size: pass input_shape={record.input_shape}"
        )
    layer.set_weights(values)


@contextlib.contextmanager
def quiet_weight_loading():
    """Keras 3.15 warns "Skipping nested container at '_operations_by_depth/...'" for a
    functional model's internal lists, which hold no weights of their own; every weight
    still loads (tests/test_pretrained.py compares them all), so the warning only misleads."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Skipping nested container at '_operations_by_depth")
        yield


def _load(model, path, record):
    try:
        with quiet_weight_loading():
            model.load_weights(path)
    except Exception as err:  # keras raises many types for a mismatched file
        raise ValueError(
            f"the weights of {record.tag} ({path}) do not load into {model.name}: {err}"
        ) from err
