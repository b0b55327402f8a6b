"""Train and publish kzoo's Fashion-MNIST models: a CIFAR-style ResNet-20, the same with
EraseReLU, and with FReLU, each exported to ``saved_models/NAME/<version>/`` for TF
Serving with its model card, plus ``saved_models/results.csv``; and its companions,
converted from that SavedModel and verified by their runtimes on the test set:
``saved_models/onnx/NAME/`` (ONNX), ``saved_models/litert/NAME/`` (LiteRT float32) and
``saved_models/litert_int8/NAME/`` (LiteRT, full-integer int8, its top-1 change measured).

    python applications/publish_fashion_mnist.py [--protocol fashion_mnist_demo] [--out saved_models]

Runs go to ``runs/publish/NAME`` (re-running resumes or reuses them). A model that is
already published is not trained or exported again (its missing companions are made);
``results.csv`` is rewritten from the cards of the newest version of every model under
``--out``.
"""

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import kzoo  # noqa: E402
from kzoo.serving import versions  # noqa: E402

MODELS = {
    "resnet20_fashion_mnist": {},
    "resnet20_eraserelu_fashion_mnist": {"erase": "last"},
    "resnet20_frelu_fashion_mnist": {"activation": "frelu"},
}
# (folder under --out, format, quantize)
COMPANIONS = (("onnx", "onnx", None), ("litert", "litert", None), ("litert_int8", "litert", "int8"))
COLUMNS = (
    "model",
    "architecture",
    "dataset",
    "top1",
    "top5",
    "params",
    "image_size",
    "placement",
    "protocol",
    "epochs",
    "train_seconds",
    "version",
)


def results_table(base):
    """One row per published model (its newest version), from the model cards."""
    rows = []
    for name in sorted(os.listdir(base)):
        present = versions(os.path.join(base, name))
        if not present:
            continue
        with open(os.path.join(base, name, str(present[-1]), "model_card.json")) as f:
            card = json.load(f)
        height, width, channels = card["input"]["shape"][1:]
        rows.append(
            {
                "model": name,
                "architecture": card["model"],
                "dataset": card["dataset"],
                "top1": f"{100 * card['test_top1']:.2f}",
                "top5": f"{100 * card['test_top5']:.2f}",
                "params": card["params"],
                "image_size": f"{height}x{width}x{channels}",
                "placement": json.dumps(card.get("model_kwargs") or {}, sort_keys=True),
                "protocol": card.get("protocol", ""),
                "epochs": card.get("epochs", ""),
                "train_seconds": round(card.get("train_seconds") or 0),
                "version": present[-1],
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="fashion_mnist_demo")
    parser.add_argument("--out", default="saved_models")
    parser.add_argument("--runs", default=os.path.join("runs", "publish"))
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    for name, kwargs in MODELS.items():
        if versions(os.path.join(args.out, name)):
            print(f"{name}: already published, not trained or exported again")
            continue
        command = (
            f"kzoo train resnet20 --dataset fashion_mnist --protocol {args.protocol} "
            + " ".join(f"--{k} {v}" for k, v in kwargs.items())
            + f" --out {os.path.join(args.runs, name)}"
        ).replace("  ", " ")
        run = kzoo.train(
            "resnet20",
            "fashion_mnist",
            args.protocol,
            model_kwargs=kwargs,
            out=os.path.join(args.runs, name),
            data_dir=args.data_dir,
            verbose=2,
            command=command,
        )
        print(f"{name}: test top-1 {run.metrics['test_top1']:.4f}", flush=True)
        result = kzoo.export(run.run_dir, args.out, name)
        print(f"{name}: exported {result.path}", flush=True)
    for name in MODELS:
        publish_companions(args.out, name, args.data_dir)
    rows = results_table(args.out)
    path = os.path.join(args.out, "results.csv")
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(path + ".tmp", path)
    write_readme(args.out, rows, args.protocol)
    print(open(path).read())


def publish_companions(base, name, data_dir):
    """The ONNX / LiteRT versions of ``name``'s newest SavedModel, where not yet published."""
    source = os.path.join(base, name, str(versions(os.path.join(base, name))[-1]))
    for folder, fmt, quantize in COMPANIONS:
        if versions(os.path.join(base, folder, name)):
            continue
        os.makedirs(os.path.join(base, folder), exist_ok=True)
        result = kzoo.export(
            source, os.path.join(base, folder), name, format=fmt, quantize=quantize, data_dir=data_dir
        )
        print(f"{name}: exported {result.path}", flush=True)


def companion_rows(base):
    """One row per published companion (newest version), from its card."""
    rows = []
    for folder, _, _ in COMPANIONS:
        root = os.path.join(base, folder)
        for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            present = versions(os.path.join(root, name))
            if not present:
                continue
            path = os.path.join(root, name, str(present[-1]))
            with open(os.path.join(path, "model_card.json")) as f:
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


def write_readme(base, rows, protocol):
    """saved_models/README.md, generated from the cards (never written by hand)."""
    lines = [
        "# saved_models/",
        "",
        "Models kzoo trained and evaluated itself, in TF Serving's layout (`NAME/<version>/`:",
        "`saved_model.pb`, `variables/`, `assets.extra/tf_serving_warmup_requests`, and the",
        "model card `model_card.md`/`model_card.json`). `results.csv` has one row per model.",
        "This file is generated by `python applications/publish_fashion_mnist.py`, which",
        f"trained them (protocol `{protocol}`) and exported them; `tests/test_published.py`",
        "re-evaluates every one on the Fashion-MNIST test set and checks its card.",
        "",
        "| model | architecture | placement | top-1 | top-5 | params | epochs | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['architecture']} | `{r['placement']}` | {r['top1']} | "
            f"{r['top5']} | {r['params']:,} | {r['epochs']} | {r['train_seconds']} |"
        )
    lines += [
        "",
        "## ONNX and LiteRT companions",
        "",
        "Converted from the model's SavedModel (the card's `converted_from`; `kzoo export",
        "saved_models/NAME/<n> --format ...`)",
        "and run by their own runtimes before publication: top-1 agreement with the Keras model and the",
        "largest probability difference on the first 256 test images, and for int8 the change of",
        "top-1 over the whole test set (points), as the cards record them.",
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
    with open(os.path.join(base, "README.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
