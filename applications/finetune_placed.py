"""EraseReLU on a network kzoo did not build, end to end: a keras.applications ResNet-50
saved to a file stands for "the pretrained one" (ImageNet weights cannot be downloaded on
kzoo's machines; with them, save ``keras.applications.ResNet50(weights="imagenet")``
instead), then ``kzoo train FILE`` places EraseReLU on half its blocks, gives it a
10-class head and a grayscale stem (its first kernel summed over the colours), resizes
Fashion-MNIST's 28x28 images to 32x32 inside the model, trains it on the real
Fashion-MNIST, and ``kzoo export`` writes it for TF Serving, ONNX Runtime and LiteRT, each
verified by its runtime. Every step is a shell command, recorded with its output in
``--out`` (``results/placed_finetune``): ``record.json`` and ``README.md``.

    python applications/finetune_placed.py            # ~15-25 min on 2 CPU cores
    python applications/finetune_placed.py --epochs 1 --out /tmp/check

Re-running resumes: the saved base is kept, the run resumes or is reported finished, and
an export that is already there is not made again.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time

OUT = os.path.join("results", "placed_finetune")
ARCHITECTURE = "ResNet50"
PLACEMENT = ["--erase", "last", "--proportion", "0.5"]
FORMATS = ("saved_model", "onnx", "litert")


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor()
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []
    )
    extra = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} ({os.cpu_count()} cores{', ' + ', '.join(extra) if extra else ''})"


def _run(args, log):
    """Run ``kzoo ARGS`` (this Python's), appending the command and its output to ``log``."""
    command = [sys.executable, "-m", "kzoo_command", *args]
    shown = "kzoo " + shlex.join(args)
    print(f"$ {shown}", flush=True)
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {shown}\n")
        f.flush()
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        f.write(proc.stdout)
    print(proc.stdout[-2000:], flush=True)
    if proc.returncode:
        raise SystemExit(f"`{shown}` failed (exit {proc.returncode}); its output is in {log}")
    return shown, proc.stdout, time.perf_counter() - start


def save_base(path):
    """The stand-in for a pretrained model: keras' ResNet-50 as keras builds it."""
    if os.path.exists(path):
        return
    import keras

    from kzoo import atomic

    atomic.save_model(getattr(keras.applications, ARCHITECTURE)(weights=None), path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", help="where Fashion-MNIST is (default: found as kzoo finds it)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, "commands.log")
    base = os.path.join("runs", "placed_finetune", f"{ARCHITECTURE.lower()}_pretrained.keras")
    os.makedirs(os.path.dirname(base), exist_ok=True)
    save_base(base)
    run_dir = os.path.join(args.out, "run")
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    steps = {}
    steps["modules"] = _run(["summary", base, "--modules", *PLACEMENT], log)
    train = [
        "train",
        base,
        "--dataset",
        "fashion_mnist",
        "--protocol",
        "fashion_mnist_demo",
        "--epochs",
        str(args.epochs),
        *PLACEMENT,
        "--resize",
        "32,32",
        "--out",
        run_dir,
        "--quiet",
        *data,
    ]
    steps["train"] = _run(train, log)
    exports = {}
    for fmt in FORMATS:
        target = os.path.join(args.out, "exports")
        name = f"resnet50_eraserelu_fashion_mnist_{fmt}"
        folder = os.path.join(target, name)
        done = os.path.isdir(folder) and any(v.isdigit() for v in os.listdir(folder))
        export = ["export", run_dir, "--base", target, "--name", name, "--format", fmt, *data]
        if done:
            print(f"{name}: exported already")
            steps[f"export_{fmt}"] = ("kzoo " + shlex.join(export), "", 0.0)
        else:
            steps[f"export_{fmt}"] = _run(export, log)
        versions = sorted((v for v in os.listdir(folder) if v.isdigit()), key=int)
        with open(os.path.join(folder, versions[-1], "model_card.json")) as f:
            exports[fmt] = json.load(f)["verification"]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    record = {
        "what": "keras.applications.ResNet50 saved to a file (the stand-in for a pretrained model), "
        "placed with EraseReLU (erase='last', proportion=0.5), a new 10-class head, its stem "
        "adapted to grayscale, images resized to 32x32, trained on the real Fashion-MNIST",
        "machine": _cpu(),
        "commands": [steps[k][0] for k in steps],
        "metrics": {
            k: metrics[k]
            for k in (
                "epochs",
                "test_top1",
                "test_top5",
                "best_val_top1",
                "params",
                "train_seconds",
                "train_images_per_s",
                "precision",
            )
        },
        "exports": exports,
    }
    from kzoo import atomic

    atomic.write_text(os.path.join(args.out, "record.json"), json.dumps(record, indent=2))
    _write_readme(args.out, record, steps["modules"][1])
    print(json.dumps(record["metrics"], indent=2))


def _write_readme(out, record, modules):
    m = record["metrics"]
    rows = "\n".join(
        f"| {fmt} | {v['runtime']} | {v['top1_agreement']:.4f} | "
        f"{v['max_abs_diff_probabilities']:.1e} | {v['images']} |"
        for fmt, v in record["exports"].items()
    )
    lines = modules.strip().splitlines()
    text = f"""# EraseReLU on a keras.applications ResNet-50, fine-tuned on Fashion-MNIST

{record["what"]}. Made by `python applications/finetune_placed.py` on {record["machine"]}
(precision {m["precision"]}); every command below is in `commands.log` with its output.

| | |
|---|---|
| test top-1 / top-5 | {100 * m["test_top1"]:.2f}% / {100 * m["test_top5"]:.2f}% |
| best validation top-1 | {100 * m["best_val_top1"]:.2f}% |
| epochs | {m["epochs"]} (protocol fashion_mnist_demo, shortened) |
| trainable parameters | {m["params"]:,} |
| training time | {m["train_seconds"] / 60:.1f} min ({m["train_images_per_s"]:.0f} images/s) |

The weights the run started from are random (keras' initialisation), not ImageNet's:
this records that the path works end to end and what it costs, not what ImageNet
pretraining brings.

## Commands

```
{chr(10).join(record["commands"])}
```

## The placement (`kzoo summary FILE --modules --erase last --proportion 0.5`, first lines)

```
{chr(10).join(lines[:6])}
...
{lines[-1]}
```

## Exports, each run by its own runtime against the Keras model

| format | runtime | top-1 agreement | max abs diff | images |
|---|---|---|---|---|
{rows}
"""
    from kzoo import atomic

    atomic.write_text(os.path.join(out, "README.md"), text)


if __name__ == "__main__":
    main()
