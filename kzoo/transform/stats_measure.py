"""What ``kzoo stats`` and a published tag's card (kzoo.serving.card_stats) measure and
write: ``kzoo.activation_stats`` of a model on the first test images of its dataset,
preprocessed as ``kzoo evaluate`` does, and the table's CSV and JSON texts. Apart from
the command (``stats_cli``), which finds its models in runs, tags and exports: the
measure itself needs none of that."""

import json
import math

from kzoo.training.model import build_original

DEFAULT_IMAGES = 1000
FILES = ("activation_stats.csv", "activation_stats.json", "activation_stats.png")


def _sample(dataset, data_dir, images, batch_size):
    """Batches (numpy) of the first ``images`` test images as the model was evaluated, and
    how many batches there are (None when unknown)."""
    from kzoo import data

    test = data.load(dataset, "test", data_dir=data_dir).take(images)
    count = int(test.cardinality())
    batches = data.pipeline(test, dataset, training=False, batch_size=batch_size)
    steps = math.ceil(count / batch_size) if count >= 0 else None
    return (x for x, _ in batches.as_numpy_iterator()), steps


def measure(
    model, dataset, original=None, *, data_dir=None, images=DEFAULT_IMAGES, batch_size=100, verbose=0
):
    """``kzoo.activation_stats`` of ``model`` (``original``: the network before its
    erasure, or None) on the first ``images`` test images of ``dataset``, preprocessed as
    ``kzoo evaluate`` does, ``batch_size`` at a time: what ``kzoo stats`` and a published
    tag's card (kzoo.serving.card_stats) measure."""
    from kzoo.transform.stats import ActivationProbe

    probe = ActivationProbe(model, original)
    batches, steps = _sample(dataset, data_dir, images, batch_size)
    return probe.measure(batches, steps, verbose)


def measure_built(model, architecture, options, dataset, **kwargs):
    """``measure`` of a model its builder made by name (``architecture`` or a tag, with
    ``options``), an erased one against the same builder without the erasure, as
    ``kzoo stats`` measures a run or a tag."""
    from kzoo import data

    info = data.dataset_info(dataset)
    return measure(model, info.name, build_original(architecture, dict(options or {}), info), **kwargs)


def texts(table, source, dataset):
    """{file name: text} of the table's CSV and JSON (the JSON with its ``source`` and
    ``dataset``), as ``kzoo stats`` writes them."""
    record = {"source": source, "dataset": dataset, "split": "test", **table.to_dict()}
    return {FILES[0]: table.to_csv(), FILES[1]: json.dumps(record, indent=1)}
