"""``kzoo.export``: a trained model as a version of a TF Serving model, loadable by
``tensorflow/serving`` as it is and by ``tf.saved_model.load`` without kzoo.

``BASE/NAME/<version>/`` holds ``saved_model.pb``, ``variables/``,
``assets.extra/tf_serving_warmup_requests`` and the model card (``model_card.json``,
``model_card.md``; ``model.keras`` too on request), published all at once and never over
an existing version (``kzoo.serving.versions_dir``). Only image classifiers whose output
is a softmax over the classes are exported (``kzoo.serving.source``,
``kzoo.serving.classifier``); the signatures are ``kzoo.serving.signatures``'. Every
check that needs no model is made before the model is loaded.
"""

import dataclasses
import os
import shutil

from kzoo import checks
from kzoo.serving import signatures, versions_dir
from kzoo.serving.card import model_card, write_card
from kzoo.serving.classifier import check_classifier
from kzoo.serving.source import input_size, source
from kzoo.serving.versions_dir import VERSION_MAX, check_name, model_dir, versions

KERAS_FILE = "model.keras"


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
    warmup=True,
    verify=True,
    apply_softmax=False,
):
    """Export ``model`` (a keras.Model, a ``.keras`` file, or a finished run directory,
    whose ``last.keras`` is exported with its metrics in the card) to
    ``base_dir/name/<version>/`` for TF Serving, and return an ``ExportResult``.

    ``name`` defaults to the model's name; ``version`` to one more than the highest
    present (an existing version is refused, never replaced). ``dataset`` (default: the
    run's) sets the preprocessing built into the graph. ``top_k`` ids are returned per
    image. ``keras_file`` adds ``model.keras``; ``warmup`` writes TF Serving's warm-up
    requests; ``verify`` reloads the SavedModel and checks it against the Keras model
    before the version appears. ``apply_softmax`` exports softmax(outputs) of a model
    that ends in logits (one that ends in softmax is refused with it, and without it a
    logits model is refused: it would serve logits as "probabilities").
    """
    from kzoo import data

    version, top_k, base_dir = _check_arguments(
        base_dir, name, version, dataset, top_k, keras_file, warmup, verify, apply_softmax
    )
    model, record, dataset = source(model, dataset)
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
    target = os.path.join(folder, str(version))

    os.makedirs(folder, exist_ok=True)
    versions_dir.remove_stale_tmp(folder)
    tmp = versions_dir.make_tmp(folder, version)
    try:
        signatures.write_saved_model(
            model, tmp, signatures.serving_functions(model, info, shape, top_k, apply_softmax)
        )
        if warmup:
            signatures.write_warmup(tmp, name, shape)
        if keras_file:
            model.save(os.path.join(tmp, KERAS_FILE))
        card = model_card(model, record, info, shape, name, version, top_k, classifier, folder=target)
        write_card(tmp, card)
        if verify:
            signatures.verify(model, tmp, info, shape, apply_softmax)
        try:
            versions_dir.rename_noreplace(tmp, target)
        except FileExistsError:
            raise ValueError(
                f"version {version} appeared while exporting; nothing was replaced "
                f"({target!r} was made meanwhile, not by this export of {name!r})"
            ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(target, version, card)


def _check_arguments(base_dir, name, version, dataset, top_k, keras_file, warmup, verify, apply_softmax):
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
        (warmup, "warmup"),
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
