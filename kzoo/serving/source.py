"""What is exported: a keras.Model, a ``.keras`` file, a finished run directory (whose
last model is exported with the run's record) or a SavedModel version kzoo exported
(rebuilt with its card's record: ``kzoo.serving.from_saved_model``), and whether it is an image classifier
with one image input ``[batch, H, W, C]`` and one output ``[batch, classes]``."""

import os
import zipfile

from kzoo import checks
from kzoo.serving import from_saved_model
from kzoo.training.run_dir import LAST, METRICS, RunDir

_KERAS_ARCHIVE_CONFIG = "config.json"  # inside a .keras zip (Keras' format, not the run's)


def load_keras(path):
    """The model in the ``.keras`` file ``path``, or a kzoo error naming it."""
    from kzoo.models.common import load_model

    checks.require_file(path, "`model`")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"`model`={path!r} is not a Keras archive (a .keras file is a zip written by model.save)"
        )
    with zipfile.ZipFile(path) as archive:
        if _KERAS_ARCHIVE_CONFIG not in archive.namelist():
            raise ValueError(
                f"`model`={path!r} is not a Keras archive (a zip without {_KERAS_ARCHIVE_CONFIG})"
            )
    try:
        return load_model(path)
    except Exception as err:  # keras raises many kinds for a damaged or foreign archive
        raise ValueError(
            f"`model`={path!r} could not be loaded as a Keras model ({type(err).__name__}: {err})"
        ) from None


def run_record(path):
    """The finished run directory ``path``'s config and metrics as one record (with its
    absolute path as ``source``), and the path of its last model."""
    run = RunDir(path)
    fix = f"export its {LAST} with `dataset` given instead, or train the run again"
    record = {}
    if os.path.lexists(run.config):
        record.update(checks.read_json(run.config, "the run's config", fix))
    if not os.path.lexists(run.metrics):
        raise ValueError(
            f"run directory {path!r} is not finished (no {METRICS}); "
            "finish it with the same `kzoo train` command first"
        )
    record.update(checks.read_json(run.metrics, "the run's metrics", fix))
    if not os.path.lexists(run.config):
        checks.require_file(run.config, "the run's config")
    if "test_top1" not in record:
        raise ValueError(
            f"run directory {path!r} is not finished ({run.metrics!r} has no "
            "test_top1); finish it with the same `kzoo train` command first"
        )
    record.pop("protocol_fields", None)
    record["source"] = os.path.abspath(path)
    return record, checks.require_file(run.last, "the run's last model")


def source(model, dataset):
    """(keras model, run record or {}, dataset) from a model, a .keras file or a run dir."""
    import keras

    record = {}
    if isinstance(model, (str, os.PathLike)) and not isinstance(model, bytes):
        path = checks.path(model, "model")
        if os.path.isdir(path) and from_saved_model.is_saved_model(path):
            model, record = from_saved_model.load_version(path)
        elif os.path.isdir(path):
            record, path = run_record(path)
        elif not os.path.lexists(path):
            raise FileNotFoundError(
                f"`model`={path!r} does not exist (expected a .keras file or a finished run directory)"
            )
        elif not path.endswith(".keras"):
            raise ValueError(f"`model` must be a keras.Model, a .keras file or a run directory, got {path!r}")
        if not isinstance(model, keras.Model):
            model = load_keras(path)
    elif not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, a .keras file or a run directory, got {model!r}")
    check_io(model)
    dataset = dataset or record.get("dataset")
    if dataset is None:
        raise ValueError("`dataset` is needed to know the model's preprocessing (e.g. 'fashion_mnist')")
    return model, record, dataset


def check_io(model):
    """One image input and one ``[batch, classes]`` output, known before anything is traced."""
    expected = "one image input [batch, H, W, C] and one output [batch, classes]"
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"`model` is not built, or is a subclassed model whose input is not known: "
            f"kzoo exports image classifiers with {expected}; build a functional model "
            "(e.g. keras.Model(inputs, net(inputs))) before exporting"
        )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise ValueError(
            f"kzoo exports image classifiers with {expected}; this model takes "
            f"{len(shapes)} input(s) of shape {', '.join(map(str, shapes))}"
        )
    outputs = model.outputs or []
    shapes = [tuple(t.shape) for t in outputs]
    if len(outputs) != 1 or len(shapes[0]) != 2 or shapes[0][-1] is None:
        what = (
            "a per-pixel / spatial output"
            if len(shapes) == 1 and len(shapes[0]) == 4
            else f"{len(shapes)} outputs"
            if len(shapes) != 1
            else "an output of another shape"
        )
        raise ValueError(
            f"kzoo exports image classifiers with {expected}; this model has {what}: "
            f"{', '.join(map(str, shapes)) or 'none'}"
        )


def input_size(model, info):
    """The model's (height, width, channels), the dataset's where the model leaves one open."""
    shape = tuple(model.inputs[0].shape[1:])
    shape = tuple(s if s is not None else d for s, d in zip(shape, info.image_shape))
    if shape[-1] != info.image_shape[-1]:
        raise ValueError(
            f"the model takes {shape[-1]} channels but dataset {info.name!r} has {info.image_shape[-1]}"
        )
    return shape
