"""Re-check a trained model: test top-1/top-5 of a ``.keras`` file or a run directory."""

import os

from kzoo import checks
from kzoo.training.run_dir import LAST, RunDir


def _resolve(path):
    """(model file or keras.Model, run config or None) for a .keras file, a run directory
    or a model."""
    import keras

    if isinstance(path, keras.Model):
        return path, None
    path = checks.path(path, "path")
    if os.path.isdir(path):
        run = RunDir(path)
        if not os.path.exists(run.last):
            raise FileNotFoundError(f"run directory {path!r} has no {LAST} (is the run finished?)")
        config = run.read_config("pass `dataset` (and `data_dir`) explicitly, or re-create the run")
        return run.last, config
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`={path!r} does not exist")
    if not path.endswith(".keras"):
        raise ValueError(f"`path` must be a .keras file or a run directory, got {path!r}")
    return path, None


def evaluate(path, dataset=None, *, data_dir=None, batch_size=256, tta=None):
    """Test loss, top-1 and top-5 of the model at ``path`` (a .keras file, a run
    directory, or a keras.Model) on ``dataset``'s test split (default: the dataset its
    run directory names). The model is loaded and checked
    against the dataset (classes, image shape) before any data is read. ``tta``
    ("flip", "flip_translate" or "multicrop") scores the mean of the views' probabilities
    (kzoo.training.tta)."""

    from kzoo import data
    from kzoo.saving import load_model
    from kzoo.training.compile import compile_for_scoring
    from kzoo.training.model import check_model_fits
    from kzoo.training.tta import check_tta, tta_model

    checks.integer(batch_size, "batch_size", minimum=1)
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    model_path, config = _resolve(path)
    trained = config.get("dataset") if config is not None else None
    if dataset is not None and isinstance(trained, str):
        differences = data.preprocessing_differences(dataset, trained)
        if differences:
            raise ValueError(
                f"`dataset`={dataset!r} contradicts the run directory {os.path.dirname(model_path)!r}: "
                f"its model was trained on {trained!r}, and {dataset!r} has {', '.join(differences)}; "
                f"its images would be preprocessed as the model never saw them. Leave `dataset` out"
            )
    if dataset is None:
        if config is None:
            raise ValueError("`dataset` is needed when `path` is not a run directory")
        if not isinstance(config.get("dataset"), str):
            raise ValueError(
                f"the run's config in {os.path.dirname(model_path)!r} names no dataset; pass `dataset`"
            )
        dataset = config["dataset"]
        data_dir = data_dir or config.get("data_dir")
    info = data.dataset_info(dataset)
    check_tta(tta, info)
    model = model_path if not isinstance(model_path, str) else load_model(model_path)
    check_model_fits(model, info, "path")
    examples = data.load(dataset, "test", data_dir=data_dir)
    count = int(examples.cardinality())
    if count == 0:
        raise ValueError(
            f"the test split of {dataset!r} is empty (read from "
            f"{data_dir or 'the default locations'}); there is nothing to score"
        )
    test = data.pipeline(examples, dataset, training=False, batch_size=batch_size)
    scorer = compile_for_scoring(tta_model(model, tta) if tta else model)
    scores = scorer.evaluate(test, return_dict=True, verbose=0)
    return {
        "path": model_path if isinstance(model_path, str) else None,
        "dataset": info.name,
        "test_top1": float(scores["accuracy"]),
        "test_top5": float(scores["top5"]),
        "test_loss": float(scores["loss"]),
        "tta": tta,
        "examples": count if count >= 0 else data.num_examples(dataset, "test"),
    }
