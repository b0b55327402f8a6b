"""The tables ``kzoo publish`` generates under ``saved_models/`` from the records
(``pretrained.json``) and the exports' model cards: ``results.csv`` and ``README.md``,
never written by hand."""

import csv
import io
import json
import os

from kzoo import atomic, checks
from kzoo.serving.card import CARD_JSON
from kzoo.serving.versions_dir import versions

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
_CARD_FIX = "export the companion again (kzoo publish --tag TAG), or remove its version folder"


def serving_name(tag):
    """The TF Serving model name of a tag: resnet20.fashion_mnist -> resnet20_fashion_mnist."""
    return tag.replace(".", "_")


def newest(model_dir, staged=None):
    """(version, its folder) of the newest version in ``model_dir``, counting the one
    ``staged`` holds for it (``{model dir: staged version folder}``); None when none."""
    found = [(v, os.path.join(model_dir, str(v))) for v in versions(model_dir)]
    if staged and model_dir in staged:
        found.append((int(os.path.basename(staged[model_dir])), staged[model_dir]))
    return max(found) if found else None


def results_rows(base, records, staged=None):
    """One row per tag, from its record (and the newest SavedModel version under ``base``)."""
    rows = []
    for tag in sorted(records):
        r = records[tag]
        present = newest(os.path.join(base, serving_name(tag)), staged)
        rows.append(
            {
                "tag": tag,
                "architecture": r.architecture,
                "options": json.dumps(r.options, sort_keys=True),
                "dataset": r.dataset,
                "top1": f"{100 * r.top1:.2f}",
                "top5": f"{100 * r.top5:.2f}",
                "top1_mean": f"{100 * r.source.get('top1_mean', r.top1):.2f}",
                "top1_std": "" if r.source.get("top1_std") is None else f"{100 * r.source['top1_std']:.2f}",
                "seeds": len(r.seeds),
                "top1_tta": "" if r.top1_tta is None else f"{100 * r.top1_tta:.2f}",
                "params": r.params,
                "epochs": r.epochs,
                "protocol": r.protocol,
                "sha256": r.sha256,
                "saved_model": f"{serving_name(tag)}/{present[0]}" if present else "",
                "command": r.command,
            }
        )
    return rows


def companion_rows(base, staged=None):
    """One Markdown row per published companion (newest version), from its card."""
    rows = []
    for folder, _, _ in COMPANIONS:
        root = os.path.join(base, folder)
        names = set(os.listdir(root)) if os.path.isdir(root) else set()
        names |= {os.path.basename(d) for d in staged or {} if os.path.dirname(d) == root}
        for name in sorted(names):
            present = newest(os.path.join(root, name), staged)
            if present is None:
                continue
            version, path = present
            card_path = os.path.join(path, CARD_JSON)
            card = checks.read_json(card_path, "the companion's model card", _CARD_FIX)
            try:
                rows.append(_companion_row(f"{folder}/{name}/{version}", path, card))
            except (KeyError, TypeError, ValueError, OSError) as err:
                raise ValueError(
                    f"the companion's model card {card_path!r} does not describe its file "
                    f"({type(err).__name__}: {err}); {_CARD_FIX}"
                ) from None
    return rows


def _companion_row(where, path, card):
    file = card["input"]["file"]
    check = card["verification"]
    change = check.get("test_top1_change")
    return (
        f"| `{where}/{file}` | {card['format']} "
        f"| {card['export'].get('quantization') or 'float32'} "
        f"| {os.path.getsize(os.path.join(path, file)) / 2**20:.2f} MiB "
        f"| {check['runtime']} | {check['top1_agreement']:.2%} | {check['max_abs_diff_probabilities']:.2g} "
        f"| {'-' if change is None else f'{100 * change:+.2f}'} |"
    )


def write_tables(base, records):
    """``results.csv`` and ``README.md`` under ``base``, generated from the records and
    the exports' cards (never written by hand)."""
    for name, text in tables(base, records).items():
        atomic.write_text(os.path.join(base, name), text)


def tables(base, records, staged=None):
    """{file name: text} of ``results.csv`` and ``README.md`` under ``base``, with the
    versions ``staged`` for it counted in (``newest``): computed before a publication is
    moved in, so a table that cannot be made stops it before anything changes."""
    rows = results_rows(base, records, staged)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
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
        *companion_rows(base, staged),
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
    return {"results.csv": out.getvalue(), "README.md": "\n".join(lines)}
