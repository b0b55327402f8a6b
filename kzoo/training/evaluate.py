"""Re-check a trained model: test top-1/top-5 of a ``.keras`` file or a run directory."""

import json
import os


def _resolve(path):
    """(model file, run config or None) for a .keras file or a run directory."""
    if os.path.isdir(path):
        model_path = os.path.join(path, "last.keras")
        config_path = os.path.join(path, "config.json")
        if not os.path.exists(model_path):
            raise FileNotFoundError(f"run directory {path!r} has no last.keras (is the run finished?)")
        config = None
        if os.path.exists(config_path):
            with open(config_path) as f:
                config = json.load(f)
        return model_path, config
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`={path!r} does not exist")
    if not path.endswith(".keras"):
        raise ValueError(f"`path` must be a .keras file or a run directory, got {path!r}")
    return path, None


def evaluate(path, dataset=None, *, data_dir=None, batch_size=256):
    """Test loss, top-1 and top-5 of the model at ``path`` on ``dataset``'s test split
    (default: the dataset its run directory names)."""
    import keras

    from kzoo import data
    from kzoo.models.common import load_model

    model_path, config = _resolve(path)
    if dataset is None:
        if config is None:
            raise ValueError("`dataset` is needed when `path` is not a run directory")
        dataset = config["dataset"]
        data_dir = data_dir or config.get("data_dir")
    info = data.dataset_info(dataset)
    examples = data.load(dataset, "test", data_dir=data_dir)
    count = int(examples.cardinality())
    test = data.pipeline(examples, dataset, training=False, batch_size=batch_size)
    model = load_model(model_path)
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                           keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5")])
    scores = model.evaluate(test, return_dict=True, verbose=0)
    return {"path": model_path, "dataset": info.name, "test_top1": float(scores["accuracy"]),
            "test_top5": float(scores["top5"]), "test_loss": float(scores["loss"]),
            "examples": count if count >= 0 else data.num_examples(dataset, "test")}
