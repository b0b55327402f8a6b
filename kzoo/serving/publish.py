"""Publish finished runs as a pretrained tag: the weights kzoo's builders load by name.

``publish(runs, tag)`` takes one finished run per seed of the same command, scores each
run's weights as a builder loads them (float32, no test-time augmentation) on the test
set, and ships the median seed: ``<tag>-<sha256[:8]>.weights.h5`` (weights only, no optimiser state)
and its record in ``pretrained.json`` (kzoo.models.pretrained), a SavedModel for TF
Serving with its ONNX and LiteRT companions under ``saved_models/``, and the generated
``saved_models/README.md`` and ``results.csv``. Everything is checked before anything is
scored or written; each file is written whole or not at all.
"""

import contextlib
import csv
import datetime
import io
import json
import os
import re
import statistics
import tempfile

from kzoo import checks
from kzoo.models import pretrained
from kzoo.serving.versions_dir import versions
from kzoo.training.callbacks import atomic_write_text

TAG = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
# (folder under saved_models, format, quantize): the SavedModel's companions.
COMPANIONS = (("onnx", "onnx", None), ("litert", "litert", None), ("litert_int8", "litert", "int8"))
COLUMNS = (
    "tag",
    "architecture",
    "options",
    "dataset",
    "top1",
    "top5",
    "top1_mean",
    "top1_std",
    "seeds",
    "top1_tta",
    "params",
    "epochs",
    "protocol",
    "sha256",
    "saved_model",
    "command",
)


def serving_name(tag):
    """The TF Serving model name of a tag: resnet20.fashion_mnist -> resnet20_fashion_mnist."""
    return tag.replace(".", "_")


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
    from kzoo.models.common import load_model
    from kzoo.models.registry import create_model
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
):
    """Publish ``runs`` (finished run directories, one per seed of one command) as
    ``tag`` and return its ``kzoo.models.pretrained.Pretrained`` record.

    ``weights_dir`` (default: the package's, kzoo/weights) gets the weights and the
    record; ``saved_models`` (None: no exports) the SavedModel ``serving_name(tag)`` and,
    with ``companions``, its ONNX/LiteRT versions, and the generated README/results.csv.
    """
    from kzoo.training.evaluation import evaluate
    from kzoo.training.report import hardware
    from kzoo.training.report import versions as library_versions

    weights_dir = checks.writable_dir(weights_dir or pretrained.PACKAGE_DIR, "weights_dir")
    if saved_models is not None:
        saved_models = checks.writable_dir(saved_models, "saved_models")
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    architecture, found = _read_runs(runs, tag)
    say = print if verbose else (lambda *a, **k: None)

    scored = []
    for run, config, metrics in found:
        model = _weights_model(architecture, run, metrics)
        scores = evaluate(model, metrics["dataset"], data_dir=data_dir or config.get("data_dir"))
        say(f"{tag}: {run.path} (seed {metrics['seed']}): test top-1 {scores['test_top1']:.4f} as loaded")
        scored.append((scores, run, metrics, model))
    order = sorted(range(len(scored)), key=lambda i: scored[i][0]["test_top1"])
    scores, run, metrics, model = scored[order[(len(order) - 1) // 2]]

    file = _write_weights(model, weights_dir, tag)
    top1s = [s["test_top1"] for s, *_ in scored]
    record = pretrained.Pretrained(
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
        sha256=pretrained.sha256(os.path.join(weights_dir, file)),  # of a file named by it
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
    before = pretrained.read_manifest(weights_dir)
    write_manifest(weights_dir, {**before, tag: record})
    replaced = before.get(tag)
    if replaced is not None and replaced.file != file:  # the record no longer names it
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(weights_dir, replaced.file))
    say(f"{tag}: {os.path.join(weights_dir, file)} (sha256 {record.sha256[:12]}...), seed {metrics['seed']}")
    if weights_dir == pretrained.PACKAGE_DIR:
        pretrained.reload()
    if saved_models is not None:
        card_record = {**metrics, "test_top1": record.top1, "test_top5": record.top5, "source": run.path}
        _export(model, record, card_record, saved_models, data_dir, companions, say)
        write_tables(saved_models, pretrained.read_manifest(weights_dir))
    return record


def export_tag(tag, *, saved_models="saved_models", data_dir=None, companions=True, verbose=True):
    """Export a published ``tag`` again from its shipped weights and record, without its
    runs: a new SavedModel version (and ONNX/LiteRT companions) whose card states the
    record, and the regenerated tables. For a tag published with ``--no-export``, or
    after kzoo's export changes. Returns the record."""
    from kzoo.models.registry import create_model

    check_tag(tag)
    saved_models = checks.writable_dir(saved_models, "saved_models")
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    record = pretrained.get(tag)  # a ValueError listing the tags when there is none
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
        **{k: record.source[k] for k in ("seed", "precision", "train_seconds", "hardware", "versions")},
    }
    run_dir = _run_dir_of(record.command)
    if run_dir is not None:  # as the command wrote it: relative to where it ran
        card_record["run_dir"] = run_dir
    say = print if verbose else (lambda *a, **k: None)
    _export(model, record, card_record, saved_models, data_dir, companions, say)
    write_tables(saved_models, pretrained.read_manifest())
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


def _write_weights(model, folder, tag):
    """``model``'s weights in ``folder`` as ``<tag>-<sha256[:8]>.weights.h5``, whole or not
    at all; returns the file's name. A file is never rewritten under its name: the record
    in force keeps its file until the manifest names the new one, and a cached copy of an
    older file never passes for the new one."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".weights.h5", dir=folder)
    os.close(fd)
    try:
        model.save_weights(tmp, overwrite=True)
        name = f"{tag}-{pretrained.sha256(tmp)[:8]}.weights.h5"
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a package file is read by everyone
        os.replace(tmp, os.path.join(folder, name))
        return name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_manifest(directory, records):
    """``pretrained.json`` in ``directory``: the records, sorted by tag."""
    text = json.dumps([records[t].to_dict() for t in sorted(records)], indent=1) + "\n"
    path = os.path.join(directory, pretrained.MANIFEST)
    atomic_write_text(path, text)
    os.chmod(path, 0o644)


def _export(model, record, card_record, base, data_dir, companions, say):
    """The tag's SavedModel (a new version) and, with ``companions``, its ONNX/LiteRT;
    the card states ``card_record`` (the shipped run's facts) as the weights score as
    loaded, without test-time augmentation."""
    from kzoo.serving.export import export

    name = serving_name(record.tag)
    card_record = {**card_record, "tta": None, "pretrained_tag": record.tag}
    result = export(model, base, name, dataset=record.dataset, record=card_record, data_dir=data_dir)
    say(f"{record.tag}: exported {result.path}")
    if not companions:
        return
    for folder, fmt, quantize in COMPANIONS:
        os.makedirs(os.path.join(base, folder), exist_ok=True)
        made = export(
            result.path, os.path.join(base, folder), name, format=fmt, quantize=quantize, data_dir=data_dir
        )
        say(f"{record.tag}: exported {made.path}")


def results_rows(base, records):
    """One row per tag, from its record (and the newest SavedModel version under ``base``)."""
    rows = []
    for tag in sorted(records):
        r = records[tag]
        present = versions(os.path.join(base, serving_name(tag)))
        rows.append(
            {
                "tag": tag,
                "architecture": r.architecture,
                "options": json.dumps(r.options, sort_keys=True),
                "dataset": r.dataset,
                "top1": f"{100 * r.top1:.2f}",
                "top5": f"{100 * r.top5:.2f}",
                "top1_mean": f"{100 * r.source['top1_mean']:.2f}",
                "top1_std": "" if r.source.get("top1_std") is None else f"{100 * r.source['top1_std']:.2f}",
                "seeds": len(r.seeds),
                "top1_tta": "" if r.top1_tta is None else f"{100 * r.top1_tta:.2f}",
                "params": r.params,
                "epochs": r.epochs,
                "protocol": r.protocol,
                "sha256": r.sha256,
                "saved_model": f"{serving_name(tag)}/{present[-1]}" if present else "",
                "command": r.command,
            }
        )
    return rows


def companion_rows(base):
    """One Markdown row per published companion (newest version), from its card."""
    rows = []
    for folder, _, _ in COMPANIONS:
        root = os.path.join(base, folder)
        for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            present = versions(os.path.join(root, name))
            if not present:
                continue
            path = os.path.join(root, name, str(present[-1]))
            with open(os.path.join(path, "model_card.json"), encoding="utf-8") as f:
                card = json.load(f)
            file = card["input"]["file"]
            check = card["verification"]
            change = check.get("test_top1_change")
            rows.append(
                f"| `{folder}/{name}/{present[-1]}/{file}` | {card['format']} "
                f"| {card['export'].get('quantization') or 'float32'} "
                f"| {os.path.getsize(os.path.join(path, file)) / 2**20:.2f} MiB "
                f"| {check['runtime']} | {check['top1_agreement']:.2%} | {check['max_abs_diff_probabilities']:.2g} "
                f"| {'-' if change is None else f'{100 * change:+.2f}'} |"
            )
    return rows


def write_tables(base, records):
    """``results.csv`` and ``README.md`` under ``base``, generated from the records and
    the exports' cards (never written by hand)."""
    rows = results_rows(base, records)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(os.path.join(base, "results.csv"), out.getvalue())
    lines = [
        "# saved_models/",
        "",
        "kzoo's pretrained tags, trained and scored here. Each tag's weights ship with the",
        "package (`kzoo/weights/<tag>-<sha256[:8]>.weights.h5`, sha256-checked when loaded) and load by name:",
        "",
        "```python",
        "import kzoo",
        'model = kzoo.create_model("resnet20.fashion_mnist_eraserelu", pretrained=True)',
        'model = kzoo.ResNet20(weights="fashion_mnist", erase="last")  # the same weights',
        "```",
        "",
        "Its SavedModel (TF Serving's layout, `NAME/<version>/` with the model card",
        "`model_card.md`/`model_card.json` and warm-up requests) and ONNX/LiteRT companions are",
        "here. This file and `results.csv` are generated by `kzoo publish` from the records",
        "(`kzoo/weights/pretrained.json`); `tests/test_published.py` re-scores every tag and",
        "every export on the Fashion-MNIST test set.",
        "",
        "top-1 is the shipped seed's weights as loaded (float32, no test-time augmentation);",
        "mean ± std is over the seeds trained (the shipped one is the median); TTA is the",
        "run's own score with its test-time augmentation, when it used one.",
        "",
        "| tag | options | top-1 | top-5 | top-1 mean ± std (seeds) | TTA top-1 | params | epochs | SavedModel |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spread = (
            f"{r['top1_mean']} ± {r['top1_std']} ({r['seeds']})" if r["top1_std"] else f"{r['top1_mean']} (1)"
        )
        lines.append(
            f"| `{r['tag']}` | `{r['options']}` | {r['top1']} | {r['top5']} | {spread} | "
            f"{r['top1_tta'] or '-'} | {r['params']:,} | {r['epochs']} | {r['saved_model'] or '-'} |"
        )
    lines += ["", "Each was trained with:", ""]
    lines += [f"- `{r['tag']}`: `{r['command']}`" for r in rows]
    lines += [
        "",
        "## ONNX and LiteRT companions",
        "",
        "Converted from the tag's SavedModel (the card's `converted_from`) and run by their own",
        "runtimes before publication: top-1 agreement with the Keras model and the largest",
        "probability difference on the first 256 test images, and for int8 the change of top-1",
        "over the whole test set (points), as the cards record them.",
        "",
        "| file | format | weights | size | runtime | top-1 agreement | max prob. diff | test top-1 change |",
        "|---|---|---|---|---|---|---|---|",
        *companion_rows(base),
        "",
        "Serve one with",
        "",
        "```sh",
        'docker run -p 8501:8501 -v "$PWD/saved_models/resnet20_fashion_mnist:'
        '/models/resnet20_fashion_mnist" \\',
        "  -e MODEL_NAME=resnet20_fashion_mnist tensorflow/serving",
        "```",
        "",
    ]
    atomic_write_text(os.path.join(base, "README.md"), "\n".join(lines))
