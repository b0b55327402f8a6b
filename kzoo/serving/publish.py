"""Publish finished runs as a pretrained tag: the weights kzoo's builders load by name.

``publish(runs, tag)`` takes one finished run per seed of the same command, scores each
run's weights as a builder loads them (float32, no test-time augmentation) on the test
set, and ships the median seed: ``<tag>-<sha256[:8]>.weights.h5`` (weights only, no optimiser state)
and its record in ``pretrained.json`` (kzoo.serving.manifest), a SavedModel for TF
Serving with its ONNX and LiteRT companions under ``saved_models/`` (the SavedModel's card
carrying the tag's activation statistics on the first 1,000 test images,
kzoo.serving.card_stats), and the generated ``saved_models/README.md`` and
``results.csv`` (kzoo.serving.publish_tables).

Everything is checked before anything is scored or written, a tag already published
included (replaced only when asked, saying what changes). Then everything is written
under temporary names and moved in at the end (kzoo.serving.publish_staging): a
publication that fails, or is killed, changes nothing.
"""

import datetime
import os
import statistics

from kzoo import checks
from kzoo.models import pretrained
from kzoo.models.pretrained_records import TAG
from kzoo.serving import formats, manifest
from kzoo.serving.publish_staging import Staging
from kzoo.serving.publish_tables import COMPANIONS, serving_name
from kzoo.serving.versions_dir import model_dir, versions


def check_tag(tag):
    """``tag`` as ``architecture.variant`` of a registered architecture, or an error."""
    from kzoo.models.registry import model_info

    if not isinstance(tag, str):
        raise TypeError(f"`tag` must be a string like 'resnet20.fashion_mnist', got {tag!r}")
    if not TAG.match(tag):
        raise ValueError(
            f"`tag` must be architecture.variant in lower case (letters, digits, '_'), e.g. "
            f"'resnet20.fashion_mnist_eraserelu'; got {tag!r}"
        )
    architecture, variant = tag.split(".")
    model_info(architecture)  # a ValueError naming close matches
    return architecture, variant


def _read_runs(runs, tag):
    """(architecture, [(run dir, config, metrics)]) of finished runs of one command."""
    from kzoo.training.run_dir import RunDir

    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    if not isinstance(runs, (list, tuple)) or not runs:
        raise TypeError(f"`runs` must be a run directory or a non-empty list of them, got {runs!r}")
    architecture, variant = check_tag(tag)
    found = []
    for path in runs:
        path = checks.path(path, "runs")
        if not os.path.isdir(path):
            raise FileNotFoundError(f"`runs`: {path!r} is not a run directory")
        run = RunDir(path)
        metrics = run.read_metrics("finish the run (re-run its kzoo train command) before publishing it")
        config = run.read_config("it is not a kzoo run directory") or {}
        checks.require_file(run.last, "the finished run's model")
        found.append((run, config, metrics))
    first = found[0][2]
    if first["model"] != architecture:
        raise ValueError(
            f"`tag`={tag!r} is for {architecture}, but {found[0][0].path!r} trained {first['model']}"
        )
    if variant != first["dataset"] and not variant.startswith(first["dataset"] + "_"):
        raise ValueError(
            f"`tag`={tag!r}: the variant must be the dataset, or start with it "
            f"({first['dataset']!r} or {first['dataset']}_<options>), as in timm's tags"
        )
    for run, _, metrics in found[1:]:
        for key in ("model", "model_kwargs", "dataset", "protocol", "epochs", "precision", "tta"):
            if metrics.get(key) != first.get(key):
                raise ValueError(
                    f"`runs` must be seeds of one command: {run.path!r} has {key}={metrics.get(key)!r}, "
                    f"{found[0][0].path!r} {first.get(key)!r}"
                )
    seeds = [m["seed"] for _, _, m in found]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"`runs` must be different seeds of one command; their seeds are {seeds}")
    return architecture, found


def _weights_model(architecture, run, metrics):
    """The run's last model as a fresh float32 build of the architecture (what a builder
    loading the tag makes), with the run's weights."""
    from kzoo import data
    from kzoo.models.registry import create_model
    from kzoo.saving import load_model
    from kzoo.training.precision import dtype_policy

    info = data.dataset_info(metrics["dataset"])
    trained = load_model(run.last)
    with dtype_policy("float32"):
        model = create_model(
            architecture,
            **metrics["model_kwargs"],
            input_shape=tuple(info.image_shape),
            classes=info.classes,
        )
    model.set_weights(trained.get_weights())
    return model


def publish(
    runs,
    tag,
    *,
    weights_dir=None,
    saved_models="saved_models",
    data_dir=None,
    companions=True,
    verbose=True,
    replace=False,
):
    """Publish ``runs`` (finished run directories, one per seed of one command) as
    ``tag`` and return its ``kzoo.models.pretrained.Pretrained`` record.

    ``weights_dir`` (default: the package's, kzoo/weights) gets the weights and the
    record; ``saved_models`` (None: no exports) the SavedModel ``serving_name(tag)`` and,
    with ``companions``, its ONNX/LiteRT versions, and the generated README/results.csv.
    A tag ``weights_dir`` already has is refused unless ``replace``: its record is then
    replaced and its weights file removed, and what changed is said.
    """
    from kzoo.training.evaluation import evaluate

    _check_switches(companions, verbose, replace, saved_models)
    weights_dir = checks.writable_dir(weights_dir or pretrained.PACKAGE_DIR, "weights_dir")
    if saved_models is not None:
        saved_models = checks.writable_dir(saved_models, "saved_models")
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    architecture, found = _read_runs(runs, tag)
    manifest.records_before(weights_dir, tag, found, replace)  # a damaged one is refused, naming it
    if saved_models is not None:
        _check_export_places(saved_models, tag, companions)
    say = print if verbose else (lambda *a, **k: None)

    scored = []
    for run, config, metrics in found:
        model = _weights_model(architecture, run, metrics)
        scores = evaluate(model, metrics["dataset"], data_dir=data_dir or config.get("data_dir"))
        say(f"{tag}: {run.path} (seed {metrics['seed']}): test top-1 {scores['test_top1']:.4f} as loaded")
        scored.append((scores, run, metrics, model))
    order = sorted(range(len(scored)), key=lambda i: scored[i][0]["test_top1"])
    scores, run, metrics, model = scored[order[(len(order) - 1) // 2]]

    with Staging(weights_dir, saved_models) as staging:
        file, digest = staging.weights(model, tag)
        record = _record(tag, architecture, model, scored, metrics, file, digest)
        if saved_models is not None:
            card_record = {**metrics, "test_top1": record.top1, "test_top5": record.top5, "source": run.path}
            shipped = data_dir or next(c for r, c, _ in found if r is run).get("data_dir")
            staging.exports(model, record, card_record, data_dir, companions, say, stats_data_dir=shipped)
        # Read again: the records another publication added to this folder meanwhile stay.
        replaced, records = manifest.merged(weights_dir, record, found, replace)
        if saved_models is not None:
            staging.tables(records)
        manifest.stage(staging, weights_dir, records)
        staging.commit()
    if replaced is not None:
        manifest.retire(weights_dir, replaced, record, say)
    say(f"{tag}: {os.path.join(weights_dir, file)} (sha256 {record.sha256[:12]}...), seed {metrics['seed']}")
    if weights_dir == pretrained.PACKAGE_DIR:
        pretrained.reload()
    return record


def _check_switches(companions, verbose, replace, saved_models):
    """The on/off options, checked as every other argument is; one that would do nothing
    (``companions=False`` when nothing is exported) is refused too."""
    for value, arg in ((companions, "companions"), (verbose, "verbose"), (replace, "replace")):
        checks.boolean(value, arg)
    if saved_models is None and not companions:
        raise ValueError(
            "`companions`=False does nothing with saved_models=None (nothing is exported): leave it out"
        )


def _check_export_places(saved_models, tag, companions):
    """The model directories the exports go to, checked before anything is scored: each a
    folder that can be written (or made) holding versions of its own format only."""
    name = serving_name(tag)
    places = [("", "saved_model")] + [(folder, fmt) for folder, fmt, _ in COMPANIONS if companions]
    for folder, fmt in places:
        folder = model_dir(os.path.join(saved_models, folder) if folder else saved_models, name)
        formats.check_same_format(folder, versions(folder), fmt)


def _record(tag, architecture, model, scored, metrics, file, digest):
    """The ``Pretrained`` record of the shipped run (``metrics``) among the ``scored`` seeds."""
    from kzoo.training.machine import hardware
    from kzoo.training.machine import versions as library_versions

    top1s = [s["test_top1"] for s, *_ in scored]
    scores = next(s for s, _, m, _ in scored if m is metrics)
    return pretrained.Pretrained(
        tag=tag,
        architecture=architecture,
        dataset=metrics["dataset"],
        options=metrics["model_kwargs"],
        input_shape=tuple(model.input_shape[1:]),
        classes=int(model.output_shape[-1]),
        top1=round(scores["test_top1"], 6),
        top5=round(scores["test_top5"], 6),
        params=metrics["params"],
        command=metrics["command"],
        protocol=metrics["protocol"],
        epochs=metrics["epochs"],
        sha256=digest,
        file=file,
        source={
            "seed": metrics["seed"],
            "precision": metrics.get("precision"),
            "train_seconds": round(metrics.get("train_seconds") or 0, 1),
            "hardware": metrics.get("hardware") or hardware(),
            "versions": metrics.get("versions") or library_versions(),
            "published": datetime.date.today().isoformat(),
            "top1_mean": round(statistics.mean(top1s), 6),
            "top1_std": round(statistics.stdev(top1s), 6) if len(top1s) > 1 else None,
        },
        top1_tta=metrics["test_top1"] if metrics.get("tta") else None,
        seeds=tuple(
            {
                "seed": m["seed"],
                "top1": round(s["test_top1"], 6),
                "top5": round(s["test_top5"], 6),
                "top1_run": m["test_top1"],
                "shipped": m is metrics,
            }
            for s, _, m, _ in scored
        ),
    )


def export_tag(tag, *, saved_models="saved_models", data_dir=None, companions=True, verbose=True):
    """Export a published ``tag`` again from its shipped weights and record, without its
    runs: a new SavedModel version (and ONNX/LiteRT companions) whose card states the
    record, and the regenerated tables, all moved in at the end. For a tag published
    with ``--no-export``, or after kzoo's export changes. Returns the record."""
    from kzoo.models.registry import create_model

    _check_switches(companions, verbose, False, saved_models)
    check_tag(tag)
    saved_models = checks.writable_dir(saved_models, "saved_models")
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    record = pretrained.get(tag)  # a ValueError listing the tags when there is none
    _check_export_places(saved_models, tag, companions)
    model = create_model(tag, pretrained=True)
    card_record = {
        "model": record.architecture,
        "model_kwargs": dict(record.options),
        "dataset": record.dataset,
        "protocol": record.protocol,
        "epochs": record.epochs,
        "test_top1": record.top1,
        "test_top5": record.top5,
        "params": record.params,
        "command": record.command,
        **{k: record.source.get(k) for k in ("seed", "precision", "train_seconds", "hardware", "versions")},
    }
    run_dir = _run_dir_of(record.command)
    if run_dir is not None:  # as the command wrote it: relative to where it ran
        card_record["run_dir"] = run_dir
    say = print if verbose else (lambda *a, **k: None)
    with Staging(None, saved_models) as staging:
        staging.exports(model, record, card_record, data_dir, companions, say)
        staging.tables(pretrained.read_manifest())
        staging.commit()
    return record


def _run_dir_of(command):
    """The ``--out`` of a ``kzoo train`` command line, or None."""
    import shlex

    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "--out" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--out="):
            return word.split("=", 1)[1]
    return None
