"""``kzoo.export``: a trained model as a version of a served model, in one of three
formats (``kzoo.serving.formats``), each usable without kzoo:

* ``saved_model``: ``saved_model.pb``, ``variables/``, ``assets.extra/
  tf_serving_warmup_requests``, loadable by ``tensorflow/serving`` as it is;
* ``onnx``: ``model.onnx`` for ONNX Runtime; ``litert``: ``model.tflite`` for LiteRT.

``BASE/NAME/<version>/`` holds that and the model card (``model_card.json``,
``model_card.md``; ``model.keras`` too on request), published all at once and never over
an existing version (``kzoo.serving.versions_dir``). Every format takes uint8 images and
answers ``probabilities``/``classes``/``scores`` with the preprocessing inside
(``kzoo.serving.signatures``), and is run by its own runtime against the Keras model
before it is published (``kzoo.serving.verification``). Only image classifiers whose
output is a softmax over the classes are exported (``kzoo.serving.source``,
``kzoo.serving.classifier``). Every check that needs no model is made before the model
is loaded.
"""

import dataclasses
import os
import shutil

from kzoo import checks
from kzoo.models import common
from kzoo.serving import convert, formats, runtimes, signatures, verification, versions_dir
from kzoo.serving.card import model_card, write_card
from kzoo.serving.classifier import check_classifier
from kzoo.serving.source import input_size, source
from kzoo.serving.versions_dir import VERSION_MAX, check_name, model_dir, versions

KERAS_FILE = "model.keras"
LITERT_SOURCE = ".litert-saved-model"  # in the temporary folder, gone before it is published


@dataclasses.dataclass
class ExportResult:
    """Where the version went and what its card says."""

    path: str
    version: int
    card: dict


def export(
    model,
    base_dir,
    name=None,
    *,
    version=None,
    dataset=None,
    top_k=5,
    keras_file=False,
    warmup=None,
    verify=True,
    apply_softmax=False,
    format="saved_model",  # noqa: A002  (the word users know, as in keras' model.export)
    quantize=None,
    opset=None,
    data_dir=None,
    record=None,
):
    """Export ``model`` (a keras.Model, a ``.keras`` file, a finished run directory,
    whose ``last.keras`` is exported with its metrics in the card, or a SavedModel version
    kzoo exported, rebuilt with its card's record) to
    ``base_dir/name/<version>/`` and return an ``ExportResult``.

    ``format``: "saved_model" (TF Serving), "onnx" (``opset``, default 17) or "litert"
    (``quantize``: None, "dynamic_int8" or "int8", calibrated on training images).

    ``name`` defaults to the model's name; ``version`` to one more than the highest
    present (an existing version is refused, never replaced). ``dataset`` sets the
    preprocessing built into the graph; what the run, the version's card or ``record``
    says the model was trained on is the default and the truth: another dataset is
    refused unless its preprocessing and classes are the same. ``top_k`` ids are
    returned per image. ``keras_file`` adds ``model.keras``; ``warmup`` (default: with a SavedModel)
    writes TF Serving's warm-up requests; ``verify`` runs the written file with its own
    runtime against the Keras model, on the dataset's test images when they are on this
    machine (``data_dir``, as ``kzoo.data.load`` takes it; never downloaded), before the
    version appears. ``apply_softmax`` exports softmax(outputs) of a model that ends in
    logits (one that ends in softmax is refused with it, and without it a logits model is
    refused: it would serve logits as "probabilities"). ``record`` (a dict of
    ``CARD_KEYS``, as a run's metrics.json holds) is the training record the card states,
    in place of the run's: for a model rebuilt from a run's weights (``kzoo publish``).
    A failed export leaves nothing behind, not even the folders it made.
    """
    from kzoo import data

    version, top_k, base_dir = _check_arguments(
        base_dir, name, version, dataset, top_k, keras_file, verify, apply_softmax
    )
    fmt, quantize, opset, warmup = formats.check_format_options(format, quantize, opset, warmup)
    _check_backend_and_runtime(fmt)
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    if record is not None and not isinstance(record, dict):
        raise TypeError(f"`record` must be None or a dict of the run's facts, got {record!r}")
    model, record, dataset = source(model, dataset, record)
    info = data.dataset_info(dataset)
    if name is None:
        try:
            name = check_name(model.name)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{err} (the model's name, the default): pass `name`") from None
    folder = model_dir(base_dir, name)
    shape = input_size(model, info)
    classes = model.outputs[0].shape[-1]
    if classes != info.classes:
        raise ValueError(f"the model predicts {classes} classes but dataset {info.name!r} has {info.classes}")
    _check_top_k(top_k, classes, "the model")
    classifier = check_classifier(model, info, shape, apply_softmax)
    version = _new_version(folder, name, version)
    formats.check_same_format(folder, versions(folder), fmt)
    target = os.path.join(folder, str(version))
    test_set, calibration = _images_at_hand(info, shape, data_dir, verify, quantize)

    made, tmp, published = versions_dir.make_dirs(folder), None, False
    try:
        versions_dir.remove_stale_tmp(folder)
        tmp = versions_dir.make_tmp(folder, version)
        # A mixed-precision model is exported as its float32 copy (same weights) in every
        # format: ONNX Runtime and LiteRT have no bfloat16/float16 CPU kernels, and each
        # runtime's graph rounds half precision its own way (a deep net's probabilities
        # moved by 1% between Keras and its own SavedModel). The file is verified against
        # the copy; the copy's difference from the mixed-precision model is on the card.
        converted = convert.float32_copy(model)
        functions = signatures.serving_functions(converted, info, shape, top_k, apply_softmax)
        written, facts = _write(fmt, converted, tmp, functions, quantize, opset, calibration)
        if converted is not model:
            facts["computed_in"] = f"float32 (the model computes in {common.compute_dtype(model)})"
        if warmup:
            signatures.write_warmup(tmp, name, shape)
        if keras_file:
            model.save(os.path.join(tmp, KERAS_FILE))
        card = model_card(
            model, record, info, shape, name, version, top_k, classifier, folder=target, fmt=fmt
        )
        card["export"] = facts
        if verify:
            card["verification"] = verification.verify(
                converted,
                fmt,
                written,
                info,
                shape,
                apply_softmax,
                test_set,
                quantize,
                mixed=model if converted is not model else None,
            )
        write_card(tmp, card)
        try:
            versions_dir.rename_noreplace(tmp, target)
        except FileExistsError:
            raise ValueError(
                f"version {version} appeared while exporting; nothing was replaced "
                f"({target!r} was made meanwhile, not by this export of {name!r})"
            ) from None
        published = True
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not published:  # a failed export leaves no folder it made, not even an empty one
            versions_dir.remove_dirs(made)
    return ExportResult(target, version, card)


def _write(fmt, model, folder, functions, quantize, opset, calibration):
    """The format's files in ``folder``: (what the runtime opens, converter facts)."""
    if fmt == "saved_model":
        signatures.write_saved_model(model, folder, functions)
        return folder, {"signatures": list(functions)}
    if fmt == "onnx":
        path = os.path.join(folder, convert.ONNX_FILE)
        return path, convert.to_onnx(*functions[signatures.FIXED_SIGNATURE], path, opset)
    # The converter reads a SavedModel, written inside the version's temporary folder so
    # that an export killed meanwhile leaves it where the next export's clearing finds it.
    path = os.path.join(folder, convert.LITERT_FILE)
    fixed = signatures.FIXED_SIGNATURE
    saved_model = os.path.join(folder, LITERT_SOURCE)
    try:
        signatures.write_saved_model(model, saved_model, {fixed: functions[fixed]})
        return path, convert.to_litert(saved_model, fixed, path, quantize, calibration)
    finally:
        shutil.rmtree(saved_model, ignore_errors=True)


def _images_at_hand(info, shape, data_dir, verify, quantize):
    """(test set or None, calibration images or None), read before anything is written:
    the test set to verify on, the training images int8 quantisation calibrates on."""
    from kzoo import data

    fixed_size = info.eval_resize is None and tuple(info.image_shape) == tuple(shape)
    test_set = data.at_hand(info.name, "test", data_dir=data_dir) if verify and fixed_size else None
    calibration = None
    if quantize == "int8":
        found = data.at_hand(info.name, "train_full", data_dir=data_dir, limit=convert.CALIBRATION_IMAGES)
        if found is None or not fixed_size:
            raise ValueError(
                f"quantize='int8' calibrates on {info.name} training images at the model's size "
                f"{shape}, and none are on this machine: pass `data_dir` (where the dataset is) "
                "or use quantize='dynamic_int8', which needs none"
            )
        calibration = found[0]
    return test_set, calibration


def _check_backend_and_runtime(fmt):
    """The TensorFlow backend (the exports are TF graphs) and the format's converter and
    runtime, checked before anything is loaded."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"kzoo.export builds TensorFlow graphs and needs Keras' TensorFlow backend, but "
            f"KERAS_BACKEND is {keras.backend.backend()!r}: save the model (.keras files move "
            "between backends) and export it in a process run with KERAS_BACKEND=tensorflow"
        )
    if fmt == "onnx":
        for module in ("tf2onnx", "onnx", "onnxruntime"):
            runtimes.require(module, fmt)
    elif fmt == "litert":
        runtimes.require("ai_edge_litert.interpreter", fmt)


def _check_arguments(base_dir, name, version, dataset, top_k, keras_file, verify, apply_softmax):
    """What needs no model first: a bad argument fails before anything is loaded or
    written. Returns (version, top_k, base_dir) as export uses them."""
    from kzoo import data

    try:
        version = checks.integer(version, "version", minimum=1, maximum=VERSION_MAX, optional=True)
    except ValueError as err:
        raise ValueError(f"{err} (TF Serving's version directory, read as an int64)") from None
    top_k = checks.integer(top_k, "top_k", minimum=1)
    for value, arg in (
        (keras_file, "keras_file"),
        (verify, "verify"),
        (apply_softmax, "apply_softmax"),
    ):
        checks.boolean(value, arg)
    if name is not None:
        check_name(name)
    base_dir = checks.writable_dir(base_dir, "base_dir")
    if name is not None:
        model_dir(base_dir, name)
    if dataset is not None:
        info = data.dataset_info(dataset)
        _check_top_k(top_k, info.classes, f"dataset {info.name!r}")
    return version, top_k, base_dir


def _new_version(folder, name, version):
    """``version``, or the next after those in ``folder``; refused when it exists."""
    present = versions(folder)
    if version is None:
        version = (present[-1] if present else 0) + 1
        if version > VERSION_MAX:
            raise ValueError(
                f"{name!r} already has version {present[-1]}, TF Serving's largest "
                "(2**63-1): pass an unused `version`"
            )
    target = os.path.join(folder, str(version))
    if version in present or os.path.lexists(target):
        raise ValueError(
            f"version {version} of {name!r} already exists at {target!r}; kzoo never "
            "overwrites a version: pass another `version` or leave it out for the next one"
        )
    return version


def _check_top_k(top_k, classes, what):
    if top_k > classes:
        raise ValueError(
            f"`top_k` must be at most the class count: {what} has {classes} classes, got top_k={top_k}"
        )
