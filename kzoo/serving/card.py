"""The model card of an exported version (``model_card.json``, ``model_card.md``): what a
user of the export needs to know, from the run that trained it.

The run directory the model came from is recorded as a path that still means something
on another machine: relative to the repository (working tree) holding the export when the
run lies in it too, else relative to the exported version's folder.
"""

import datetime
import json
import os

from kzoo.models.common import compute_dtype
from kzoo.serving import card_stats
from kzoo.serving.classifier import SOFTMAX_APPLIED, SOFTMAX_IN_MODEL
from kzoo.serving.convert import LITERT_FILE, ONNX_FILE
from kzoo.serving.signatures import BYTES_SIGNATURE, FIXED_SIGNATURE, IMAGE_BYTES, IMAGES

CARD_KEYS = (
    "model",
    "model_kwargs",
    "dataset",
    "protocol",
    "epochs",
    "test_top1",
    "test_top5",
    "test_loss",
    "params",
    "train_seconds",
    "train_images_per_s",
    "precision",
    "tta",
    "hardware",
    "versions",
    "command",
    "seed",
    "pretrained_tag",
)
CARD_JSON = "model_card.json"
CARD_MARKDOWN = "model_card.md"


def _input(fmt, shape):
    """How the export is called, per format."""
    if fmt == "saved_model":
        return {
            "signature": "serving_default",
            "name": IMAGES,
            "dtype": "uint8",
            "shape": [None, *shape],
            "bytes_signature": BYTES_SIGNATURE,
            "bytes_input": IMAGE_BYTES,
            "fixed_size_signature": FIXED_SIGNATURE,
        }
    return {
        "file": ONNX_FILE if fmt == "onnx" else LITERT_FILE,
        "name": IMAGES,
        "dtype": "uint8",
        "shape": [None, *shape],
    }


def model_card(
    model,
    record,
    info,
    shape,
    name,
    version,
    top_k,
    classifier=SOFTMAX_IN_MODEL,
    folder=None,
    fmt="saved_model",
):
    """What a user of the export needs to know, from the run that trained it; ``folder``
    is where the card is published (default: the current directory), which the run
    directory's path is made relative to."""
    import keras

    import kzoo
    from kzoo import data
    from kzoo.models.common import trainable_params

    card = {key: record[key] for key in CARD_KEYS if key in record}
    card.setdefault("model", model.name)
    card.setdefault("params", trainable_params(model))
    card.setdefault("dataset", info.name)
    card.update(
        {
            "name": name,
            "version": version,
            "format": fmt,
            "input": _input(fmt, shape),
            "outputs": {
                "probabilities": f"float32 [batch, {model.outputs[0].shape[-1]}]"
                + (f", {SOFTMAX_APPLIED}" if classifier == SOFTMAX_APPLIED else ""),
                "classes": f"int32 [batch, {top_k}]",
                "scores": f"float32 [batch, {top_k}]",
            },
            "classifier": classifier,
            "preprocessing": data.preprocessing_text(info.name, shape[:2], resize=fmt == "saved_model"),
            "compute_dtype": compute_dtype(model),
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "exported_with": {"kzoo": kzoo.__version__, "keras": keras.__version__},
        }
    )
    where = os.getcwd() if folder is None else folder
    if "source" in record:
        card["run_dir"] = portable_path(record["source"], where)
    elif "run_dir" in record:  # read back from another version's card, already portable
        card["run_dir"] = record["run_dir"]
    if "converted_from" in record:
        card["converted_from"] = portable_path(record["converted_from"], where)
    return card


def portable_path(path, folder):
    """``path`` relative to the repository holding ``folder`` (its nearest ancestor with a
    ``.git``) when ``path`` lies in that repository too, else relative to ``folder``; in
    '/'-separated form. Never the absolute path of the machine that exported, except
    where no relative path exists (another drive on Windows)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    root = _repository(folder)
    start = root if root is not None and os.path.commonpath([path, root]) == root else folder
    try:
        relative = os.path.relpath(path, start)
    except ValueError:
        return path
    return relative.replace(os.sep, "/")


def _repository(folder):
    """The nearest of ``folder`` and its ancestors that holds ``.git`` (a directory, or
    the file of a worktree or submodule), or None."""
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def write_card(folder, card):
    """``card`` as ``model_card.json`` and ``model_card.md`` in ``folder``."""
    with open(os.path.join(folder, CARD_JSON), "w") as f:
        json.dump(card, f, indent=2, default=str)
    with open(os.path.join(folder, CARD_MARKDOWN), "w") as f:
        f.write(card_markdown(card))


def card_markdown(card):
    """The card as the Markdown page beside the SavedModel."""

    def fmt(value, spec=".4f"):
        return "-" if value is None else format(value, spec)

    if "model_kwargs" in card:
        options = (
            ", ".join(f"{k}={v!r}" for k, v in card["model_kwargs"].items()) or "none (the original network)"
        )
    else:
        options = "not recorded"
    if card.get("protocol"):
        headline = f"{card['model']} trained on {card['dataset']} under the `{card['protocol']}` protocol."
    else:
        headline = f"{card['model']} with {card['dataset']}'s preprocessing; no training record."
    seconds = card.get("train_seconds")
    # A run scored with test-time augmentation: the export answers single views.
    tta = (
        f" (test-time `{card['tta']}` views averaged; this export scores one view)" if card.get("tta") else ""
    )
    lines = [
        f"# {card['name']} (version {card['version']})",
        "",
        headline,
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{card['model']}` |",
        f"| placement options | {options} |",
        f"| test top-1{tta} | {fmt(card.get('test_top1'))} |",
        f"| test top-5{tta} | {fmt(card.get('test_top5'))} |",
        f"| test cross-entropy{tta} | {fmt(card.get('test_loss'))} |",
        f"| trainable parameters | {card['params']:,} |",
        f"| epochs | {card.get('epochs', '-')} |",
        f"| training time | {'-' if seconds is None else f'{seconds:.0f} s'} |",
        f"| precision | {card.get('precision', card['compute_dtype'])} |",
        f"| hardware | {json.dumps(card.get('hardware', '-'))} |",
        f"| versions | {json.dumps(card.get('versions', card['exported_with']))} |",
        "",
        "## Serving",
        "",
        _serving_text(card),
        "",
        *_verification_lines(card),
        *card_stats.markdown_lines(card.get(card_stats.KEY)),
        "## Reproduce",
        "",
        "```sh",
        card.get("command", "(not recorded: the model was not trained by kzoo.train)"),
        "```",
        "",
    ]
    return "\n".join(lines)


def _serving_text(card):
    fmt, given = card.get("format", "saved_model"), card["input"]
    if fmt == "saved_model":
        calls = (
            f"`serving_default` takes `{IMAGES}`: uint8 `[batch, height, width, {given['shape'][-1]}]` "
            f"(resized when not the model's size); `{BYTES_SIGNATURE}` takes `{IMAGE_BYTES}`: "
            "a string batch of encoded images; "
            f"`{FIXED_SIGNATURE}` takes `{IMAGES}`: uint8 `{given['shape']}`"
            " at the model's size (for converters)."
        )
    else:
        calls = f"`{given['file']}` takes `{IMAGES}`: uint8 `{given['shape']}`."
    export = card.get("export", {})
    made = ", ".join(f"{k} {v}" for k, v in export.items() if v is not None and k != "signatures")
    return (
        f"Format: {fmt}" + (f" ({made})" if made else "") + f". {calls} "
        f"Preprocessing is {card['preprocessing']}. Classifier: {card.get('classifier', '-')}. Outputs: "
        + ", ".join(f"`{k}` {v}" for k, v in card["outputs"].items())
        + "."
    )


def _verification_lines(card):
    check = card.get("verification")
    if not check:
        return ["Not verified at export (`verify=False`).", ""]
    lines = [
        "## Verification",
        "",
        f"Run by {check['runtime']} on {check['images']} against the Keras model: max probability "
        f"difference {check['max_abs_diff_probabilities']:.3g}, top-1 agreement {check['top1_agreement']:.2%}.",
    ]
    if check.get("test_top1_change") is not None:
        lines.append(
            f"Top-1 on {check['test_images']}: Keras {check['test_top1_keras']:.4f}, this export "
            f"{check['test_top1_export']:.4f} (change {100 * check['test_top1_change']:+.2f} points)."
        )
    elif "test_top1_change_note" in check:
        lines.append(f"Top-1 change on the test set: {check['test_top1_change_note']}.")
    return [*lines, ""]
