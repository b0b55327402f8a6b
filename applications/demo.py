"""`make demo`: train a small erased ResNet on Fashion-MNIST on the CPU, evaluate it on
the test set, export it as a SavedModel and print its metrics.

The model is ResNet-20 with EraseReLU (``erase="last"``) under the
``fashion_mnist_demo`` protocol (see ``kzoo protocols``). Re-running resumes an
interrupted run; a finished run is reported again without retraining (delete
``runs/demo`` to start over).
"""

import argparse
import json
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kzoo  # noqa: E402
from kzoo.training import train  # noqa: E402


def export_saved_model(model, base):
    """``base/1`` in TF Serving's layout, written to a temporary folder then renamed."""
    target = os.path.join(base, "1")
    if os.path.exists(target):
        return target
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=base)
    try:
        model.export(os.path.join(tmp, "1"), format="tf_saved_model", verbose=False)
        os.replace(os.path.join(tmp, "1"), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--out", default=os.path.join("runs", "demo"))
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args()

    print(f"kzoo {kzoo.__version__}: {len(kzoo.list_models())} models; training {args.model} "
          "with EraseReLU on Fashion-MNIST (protocol fashion_mnist_demo)")
    result = train(args.model, "fashion_mnist", "fashion_mnist_demo", epochs=args.epochs,
                   model_kwargs={"erase": "last"}, out=args.out, verbose=1,
                   command="make demo")
    saved = export_saved_model(result.model, os.path.join(result.run_dir, "saved_model"))
    m = result.metrics
    print(json.dumps({k: m[k] for k in ("model", "model_kwargs", "dataset", "epochs", "test_top1",
                                        "test_top5", "params", "train_seconds", "train_images_per_s")},
                     indent=2))
    print(f"run directory: {result.run_dir}\nSavedModel: {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
