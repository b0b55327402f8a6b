"""`make demo`: train a small erased ResNet on Fashion-MNIST on the CPU, evaluate it on
the test set, export it for TF Serving (``kzoo.export``) and print its metrics.

The model is ResNet-20 with EraseReLU (``erase="last"``) under the
``fashion_mnist_demo`` protocol (see ``kzoo protocols``). Re-running resumes an
interrupted run; a finished run is reported again without retraining (delete
``runs/demo`` to start over).
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kzoo  # noqa: E402
from kzoo.training import train  # noqa: E402


def export_once(run_dir, base, name):
    """The run exported for TF Serving as ``base/name/1`` (kept when already there)."""
    from kzoo.serving import versions

    present = versions(os.path.join(base, name))
    if present:
        return os.path.join(base, name, str(present[-1]))
    return kzoo.export(run_dir, base, name).path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--out", default=os.path.join("runs", "demo"))
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args()

    print(
        f"kzoo {kzoo.__version__}: {len(kzoo.list_models())} models; training {args.model} "
        "with EraseReLU on Fashion-MNIST (protocol fashion_mnist_demo)"
    )
    result = train(
        args.model,
        "fashion_mnist",
        "fashion_mnist_demo",
        epochs=args.epochs,
        model_kwargs={"erase": "last"},
        out=args.out,
        verbose=1,
        command="make demo",
    )
    saved = export_once(
        result.run_dir, os.path.join(result.run_dir, "saved_models"), f"{args.model}_eraserelu_fashion_mnist"
    )
    m = result.metrics
    print(
        json.dumps(
            {
                k: m[k]
                for k in (
                    "model",
                    "model_kwargs",
                    "dataset",
                    "epochs",
                    "test_top1",
                    "test_top5",
                    "params",
                    "train_seconds",
                    "train_images_per_s",
                )
            },
            indent=2,
        )
    )
    print(f"run directory: {result.run_dir}\nSavedModel (TF Serving layout, with its model card): {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
