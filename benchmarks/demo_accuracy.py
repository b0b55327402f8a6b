"""Does the demo's recipe reach its target? ResNet-20 + EraseReLU under the
``fashion_mnist_demo`` protocol on the real Fashion-MNIST, on this machine's CPU;
prints JSON (test top-1 against the 90% the demo promises, time, throughput).

    python benchmarks/demo_accuracy.py [--out runs/benchmarks/demo_accuracy]

A finished run directory is reported, not retrained (point ``--out`` at another run of
the same recipe, e.g. ``runs/demo``, to read it).
Not part of ``run_all.py``: it trains for minutes.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TARGET = 0.90


def run(out, data_dir=None):
    import kzoo

    result = kzoo.train(
        "resnet20",
        "fashion_mnist",
        "fashion_mnist_demo",
        model_kwargs={"erase": "last"},
        out=out,
        data_dir=data_dir,
        verbose=0,
        command=f"python benchmarks/demo_accuracy.py --out {out}",
    )
    m = result.metrics
    return {
        "recipe": "resnet20 erase=last, fashion_mnist_demo",
        "run_dir": result.run_dir,
        "test_top1": m["test_top1"],
        "target_top1": TARGET,
        "reached": m["test_top1"] >= TARGET,
        "epochs": m["epochs"],
        "train_seconds": m["train_seconds"],
        "train_images_per_s": m["train_images_per_s"],
        "hardware": m["hardware"],
        "versions": m["versions"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("runs", "benchmarks", "demo_accuracy"))
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    print(json.dumps(run(args.out, args.data_dir), indent=2))


if __name__ == "__main__":
    main()
