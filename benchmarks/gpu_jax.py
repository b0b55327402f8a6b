"""Keras' JAX backend on a GPU: training throughput (images/s) and time to 94% test
top-1 of kzoo's ResNet-20, ResNet-56 and ResNet-110 on Fashion-MNIST, in float32 and
mixed_bfloat16, within one time budget that fits a single device command.

The recipe is kzoo's Fashion-MNIST one as ``applications/time_to_accuracy.py`` runs it
(protocol ``fashion_mnist_cpu``, all 60,000 training images, no validation carve-out):
SGD lr 0.1, momentum 0.9, Nesterov, batch 128, weight decay 5e-4 on every weight as an
L2 penalty of ``wd / 2`` (the papers' SGD: the decay goes through momentum, as
``kzoo.training.compile``), 400 warm-up steps then a cosine to 0 at the end of
``--epochs`` (16, the CPU run's fastest to 94%), pad-2 crop + horizontal flip,
normalised with Fashion-MNIST's mean 72.94 / std 90.02 (0-255 scale); "float32" is
JAX's default precision, which lets XLA run float32 convolutions as TF32 on an H200
(the JSON's machine records it). The test set is scored after every epoch; a run stops
at the target, at ``--max-epochs``, or at its time cap. What differs from kzoo's
TensorFlow pipeline: the augmentation is drawn in numpy (same distribution, other random
numbers), each epoch drops its last partial batch (96 random images of 60,000; one
train-step shape, so XLA compiles once), and the data is fed to ``model.fit`` as numpy
arrays one epoch at a time. The schedule and the decay are kzoo's own
(``kzoo.training.WarmupCosine``, ``apply_weight_decay``: Keras only), the IDX files are
read and checked by ``kzoo.data.idx`` (numpy only); none of them imports TensorFlow, so
this runs where only JAX is.

Clocks: an epoch's ``seconds`` is its wall time (augmentation, ``fit``, test scoring);
``time_to_target_s`` sums them, the first epoch's XLA compilation included, as
time_to_accuracy.py does. ``images_per_s`` is the median over the epochs after the first
of training images / ``fit`` seconds (the first, compile included, is reported apart as
``first_epoch_s``). ``--budget-s`` is shared by the runs in order (each gets at most the
remaining time over the runs left, or ``--run-cap-s``; a run is cut at the first step
begun after its cap -- JAX dispatches steps ahead of the device, so the cut can come up
to an epoch's compute late -- and one is not started with less than 20 s left); the
JSON is rewritten after every epoch, so a command killed at its time limit still leaves
every finished run (and the one in progress, ``"status": "running"``). TensorFlow is
blocked in the process (``block_tensorflow``), so a run here is the run on a JAX machine.

On the device machine (JAX, no TensorFlow; Keras and its pure-Python dependencies
carried in ``.carry/site``, Fashion-MNIST in ``.carry/fashion-mnist``; kzoo's source, a
tracked part of the repository, travels with it and is put on ``sys.path``)::

    bash benchmarks/gpu_jax_prepare.sh          # here, once: fills .carry/
    # device tool: carry [".carry"], timeout_s 600
    PYTHONPATH=$PWD/.carry/site python3 benchmarks/gpu_jax.py \\
        --data-dir .carry/fashion-mnist --out $OUT/gpu_jax.json

``import keras`` (3.15) needs, besides numpy, scipy and ml_dtypes (JAX's own
dependencies): absl-py, packaging, rich and namex (pure Python, copied from this venv),
and optree or dm-tree (compiled: the prepare script downloads optree's wheels for
CPython 3.10-3.13, glibc 2.27+, and unpacks them side by side, so each Python finds its
own build; optree imports typing_extensions, carried too). h5py (saving .h5 files) and
rich's markdown-it/pygments (only for printing) are not needed, nor carried (~46 MB in
all, under the device tool's 64 MiB). Locally, for a smoke run::

    python benchmarks/gpu_jax.py --limit 256 --epochs 2 --models resnet20

``--models resnet56,resnet56:frelu`` times FReLU beside ReLU where XLA fuses the whole step
(on TensorFlow's CPU runtime FReLU's ``+ b`` is an op of its own: benchmarks/frelu_overhead.py).
"""

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = os.path.join(HERE, "results", "gpu_jax.json")

MODELS = ("resnet20", "resnet56", "resnet110")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Fashion-MNIST as kzoo.data's registry describes it: classes, image size, the training
# images' mean and std on the 0-255 scale, the padding of the crop (with black pixels).
CLASSES = 10
IMAGE = (28, 28)
MEAN, STD = 72.9404, 90.0212
PAD = 2
# The recipe (kzoo's fashion_mnist_cpu protocol as time_to_accuracy.py runs it).
RECIPE = {
    "protocol": "fashion_mnist_cpu (applications/time_to_accuracy.py)",
    "optimizer": "SGD",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "decay": "L2 of weight_decay / 2 on every trainable weight (BN's included)",
    "schedule": "linear warm-up over warmup_steps, then cosine to 0 at the end of `epochs`",
    "warmup_steps": 400,
    "batch_size": 128,
    "augmentation": f"pad {PAD} (black) + random {IMAGE[0]}x{IMAGE[1]} crop + horizontal flip (numpy)",
    "normalisation": f"(x - {MEAN}) / {STD} on the 0-255 scale",
    "validation_size": 0,
}
EVAL_BATCH = 1000
MIN_RUN_S = 20.0  # a run is not started with less of the budget left

IDX_FILES = (  # (stem, dimensions): the four files of an IDX dataset
    ("train-images-idx3-ubyte", 3),
    ("train-labels-idx1-ubyte", 1),
    ("t10k-images-idx3-ubyte", 3),
    ("t10k-labels-idx1-ubyte", 1),
)
SUBDIRS = ("fashion-mnist", "fashion_mnist")


# ----------------------------------------------------------------------------- data


def _idx_paths(folder):
    """{stem: path} of the four IDX files in ``folder`` (gzipped or not), None where absent."""
    found = {}
    for stem, _ in IDX_FILES:
        paths = [os.path.join(folder, stem + ext) for ext in (".gz", "")]
        found[stem] = next((p for p in paths if os.path.isfile(p)), None)
    return found


def data_locations(data_dir=None):
    """The (folder, why) pairs searched, in order: ``data_dir`` alone when given, else
    $KZOO_DATA_DIR, /usr/share/datasets/fashion-mnist and the Keras cache; each with its
    fashion-mnist/ and fashion_mnist/ subfolders first (MNIST's files have the same names)."""
    if data_dir is not None:
        bases = [(os.fspath(data_dir), "--data-dir")]
    else:
        keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        bases = [(os.environ["KZOO_DATA_DIR"], "$KZOO_DATA_DIR")] if os.environ.get("KZOO_DATA_DIR") else []
        bases += [
            ("/usr/share/datasets/fashion-mnist", "Debian's dataset-fashion-mnist"),
            (os.path.join(keras_home, "datasets", "fashion-mnist"), "the Keras cache"),
        ]
    return [(os.path.join(base, sub), why) for base, why in bases for sub in SUBDIRS] + bases


def find_data(data_dir=None):
    """The folder holding all four Fashion-MNIST IDX files; a FileNotFoundError naming
    every folder tried otherwise (``data_dir`` itself first when it does not exist)."""
    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"`--data-dir` {os.fspath(data_dir)!r} is not a folder")
    tried = []
    for folder, why in data_locations(data_dir):
        if os.path.isdir(folder) and all(_idx_paths(folder).values()):
            return folder
        tried.append(f"{folder} ({why})")
    names = ", ".join(f"{stem}[.gz]" for stem, _ in IDX_FILES)
    raise FileNotFoundError(
        f"Fashion-MNIST not found: no folder holds all of {names}. Tried:\n  "
        + "\n  ".join(tried)
        + "\nPass the folder holding them as --data-dir (or set $KZOO_DATA_DIR)."
    )


def load_fashion_mnist(data_dir=None, limit=None):
    """((train images, labels), (test images, labels), folder): uint8 [N, 28, 28, 1] and
    int32 [N], the first ``limit`` of each split when given; the files of the folder
    ``find_data`` found, read and checked by kzoo.data.idx (a ValueError naming a file
    that is not Fashion-MNIST's)."""
    from kzoo.data import dataset_info
    from kzoo.data.idx import read_arrays

    folder = find_data(data_dir)
    train, test = read_arrays(dataset_info("fashion_mnist"), folder)
    return (train[0][:limit], train[1][:limit]), (test[0][:limit], test[1][:limit]), folder


def normalise(images):
    return (images.astype(np.float32) - MEAN) / STD


def padded(images):
    """The normalised images with ``PAD`` black pixels around them (normalised too)."""
    n, h, w, c = images.shape
    out = np.full((n, h + 2 * PAD, w + 2 * PAD, c), (0.0 - MEAN) / STD, np.float32)
    out[:, PAD : PAD + h, PAD : PAD + w] = normalise(images)
    return out


def augmented_epoch(padded_images, labels, batch_size, rng):
    """One epoch of training data: shuffled, each image a random crop of its padded copy
    (offsets uniform in [-PAD, PAD]), mirrored with probability 1/2; the last partial
    batch dropped (one shape for XLA). One gather over a sliding-window view."""
    n = len(labels) // batch_size * batch_size
    order = rng.permutation(len(labels))[:n]
    offsets = rng.integers(0, 2 * PAD + 1, (n, 2))
    flip = rng.random(n) < 0.5
    windows = np.lib.stride_tricks.sliding_window_view(padded_images, IMAGE, axis=(1, 2))
    x = windows[order, offsets[:, 0], offsets[:, 1]]  # [n, C, H, W]
    x[flip] = x[flip][..., ::-1]
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)), labels[order]


# ----------------------------------------------------------------------------- keras


def block_tensorflow():
    """Make ``import tensorflow`` fail as on a machine without it: None in sys.modules is
    Python's own "not importable" (ImportError naming it; importlib.util.find_spec answers
    None), as tests/conftest.py blocks it. Keras' optional uses (``set_random_seed`` seeds
    TF when it is installed) skip; anything that needs it fails at once, naming it."""
    sys.modules["tensorflow"] = None


def import_keras():
    """Keras on its JAX backend (and jax), TensorFlow blocked: KERAS_BACKEND is set here,
    before Keras is imported; a Keras already imported on another backend, or a
    TensorFlow already imported, is refused."""
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != "jax":
        raise SystemExit(
            f"error: keras was already imported with the {loaded.backend.backend()!r} backend; "
            "this benchmark needs JAX: run it in a fresh process (it sets KERAS_BACKEND=jax itself)"
        )
    if sys.modules.get("tensorflow") is not None:
        raise SystemExit("error: tensorflow is already imported; run this benchmark in a fresh process")
    block_tensorflow()
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        print(f"note: KERAS_BACKEND={os.environ['KERAS_BACKEND']} replaced by jax", file=sys.stderr)
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras

    return keras, jax


def machine(keras, jax):
    devices = jax.devices()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "gpus": [d.device_kind for d in devices if d.platform == "gpu"],
        "jax": jax.__version__,
        "jaxlib": getattr(__import__("jaxlib"), "__version__", "?"),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        # None: XLA's default, which may run float32 convolutions as TF32 on Ampere and later GPUs
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
    }


def build(keras, name, precision, steps_per_epoch, args):
    """kzoo's ``name`` under ``precision``'s dtype policy, compiled with the recipe; a name
    ``model:activation`` (``resnet56:frelu``) builds ``model`` with that activation."""
    import kzoo.models
    from kzoo.training import WarmupCosine, apply_weight_decay

    name, _, activation = name.partition(":")
    options = {"activation": activation} if activation else {}

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(args.seed)
        model = kzoo.models.create_model(name, input_shape=IMAGE + (1,), classes=CLASSES, **options)
        apply_weight_decay(model, RECIPE["weight_decay"])  # L2 of wd / 2 on every trainable weight
        rate = WarmupCosine(RECIPE["lr"], args.epochs * steps_per_epoch, RECIPE["warmup_steps"])
        model.compile(
            optimizer=keras.optimizers.SGD(rate, momentum=RECIPE["momentum"], nesterov=RECIPE["nesterov"]),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
    finally:
        keras.config.set_dtype_policy(previous)
    return model


def stopper_class(keras):
    class StopAt(keras.callbacks.Callback):
        """Counts the steps begun and ends ``fit`` after the step running at ``deadline``
        (perf_counter seconds). Only a batch-begin hook: an end hook would make Keras
        bring every step's logs to the host, a sync per step."""

        def __init__(self, deadline):
            super().__init__()
            self.deadline, self.steps = deadline, 0

        def on_train_batch_begin(self, batch, logs=None):
            self.steps += 1
            if time.perf_counter() >= self.deadline:
                self.model.stop_training = True

    return StopAt


# ----------------------------------------------------------------------------- runs


def _median(values):
    return round(statistics.median(values), 3) if values else None


def summarise(run, target):
    """The run's figures from its epochs: steady throughput and epoch time (the epochs
    after the first; cut epochs only when no whole one is there), time to ``target``."""
    rows = run["epochs"]
    later = rows[1:]
    whole = [r for r in later if not r["cut"]]
    run["epochs_run"] = len(rows)
    run["images_per_s"] = _median([r["images_per_s"] for r in (whole or later)])
    run["seconds_per_epoch"] = _median([r["seconds"] for r in whole])
    run["first_epoch_s"] = rows[0]["seconds"] if rows else None
    run["first_epoch_images_per_s"] = rows[0]["images_per_s"] if rows else None
    full_fit = [r["train_s"] for r in whole]
    run["compile_s_estimate"] = (
        round(rows[0]["train_s"] - statistics.median(full_fit), 3) if rows and full_fit else None
    )
    run["test_accuracy"] = [r["test_accuracy"] for r in rows]
    clock, run["time_to_target_s"], run["epochs_to_target"] = 0.0, None, None
    for count, r in enumerate(rows, 1):
        clock += r["seconds"]
        if r["test_accuracy"] >= target:
            run["time_to_target_s"], run["epochs_to_target"] = round(clock, 3), count
            break
    run["epoch_seconds_total"] = round(sum(r["seconds"] for r in rows), 3)
    run["final_test_accuracy"] = rows[-1]["test_accuracy"] if rows else None
    run["best_test_accuracy"] = max(run["test_accuracy"], default=None)
    return run


def train_run(keras, jax, name, precision, data, args, deadline, on_epoch):
    """One model x precision: epochs until the target, ``--max-epochs`` or ``deadline``."""
    (padded_train, y_train), (x_test, y_test) = data
    steps = len(y_train) // args.batch_size
    start = time.perf_counter()
    model = build(keras, name, precision, steps, args)
    run = {
        "model": name,
        "precision": precision,
        "status": "running",
        "params": int(model.count_params()),
        "steps_per_epoch": steps,
        "build_s": round(time.perf_counter() - start, 3),
        "cap_s": round(deadline - start, 1),
        "epochs": [],
    }
    rng = np.random.default_rng(args.seed)
    stopper = stopper_class(keras)(deadline)
    stop_reason = f"max epochs ({args.max_epochs})"
    for epoch in range(args.max_epochs):
        if time.perf_counter() >= deadline:
            stop_reason = "time cap"
            break
        t0 = time.perf_counter()
        x, y = augmented_epoch(padded_train, y_train, args.batch_size, rng)
        t1 = time.perf_counter()
        stopper.steps = 0
        history = model.fit(
            x, y, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[stopper]
        )
        jax.block_until_ready([v.value for v in model.trainable_variables])
        t2 = time.perf_counter()
        scores = model.evaluate(
            x_test, y_test, batch_size=min(EVAL_BATCH, len(y_test)), verbose=0, return_dict=True
        )
        t3 = time.perf_counter()
        row = {
            "epoch": epoch + 1,
            "steps": stopper.steps,
            "cut": stopper.steps < steps,
            "seconds": round(t3 - t0, 3),
            "augment_s": round(t1 - t0, 3),
            "train_s": round(t2 - t1, 3),
            "test_s": round(t3 - t2, 3),
            "images_per_s": round(stopper.steps * args.batch_size / (t2 - t1), 1),
            "train_loss": float(history.history["loss"][-1]),
            "train_accuracy": float(history.history["accuracy"][-1]),
            "test_accuracy": float(scores["accuracy"]),
        }
        run["epochs"].append(row)
        on_epoch(summarise(run, args.target))
        print(
            f"{name} {precision} epoch {row['epoch']}: {row['seconds']:.1f} s, "
            f"{row['images_per_s']:.0f} img/s, test top-1 {row['test_accuracy']:.4f}",
            flush=True,
        )
        if row["test_accuracy"] >= args.target:
            stop_reason = f"reached {args.target}"
            break
        if row["cut"]:
            stop_reason = "time cap"
            break
    run["status"], run["stop_reason"] = "done", stop_reason
    del model
    keras.backend.clear_session()
    gc.collect()
    return summarise(run, args.target)


def write_json(result, path):
    """Atomically (kzoo.atomic): a reader, or a command killed mid-write, never sees half a file."""
    from kzoo import atomic

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.write_text(path, json.dumps(result, indent=2) + "\n")


def _names(text, known, flag, activations=()):
    """The comma-separated entries of ``text``, each one of ``known`` or, with
    ``activations``, ``known:activation``."""
    names = [n.strip() for n in text.split(",") if n.strip()]

    def allowed(entry):
        name, colon, activation = entry.partition(":")
        return name in known and (not colon or activation in activations)

    if not names or not all(allowed(n) for n in names):
        also = f" (each may be followed by :{'|'.join(activations)})" if activations else ""
        raise SystemExit(f"error: `{flag}` must list some of {', '.join(known)}{also}; got {text!r}")
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated kzoo model names; name:activation (resnet56:frelu) swaps the activation",
    )
    parser.add_argument(
        "--precisions", default="float32,mixed_bfloat16", help=f"comma-separated: {PRECISIONS}"
    )
    parser.add_argument(
        "--epochs", type=int, default=16, help="the schedule's length (cosine to 0 at its end)"
    )
    parser.add_argument("--max-epochs", type=int, help="epochs a run may train (default: --epochs)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="seconds for all the runs together")
    parser.add_argument(
        "--run-cap-s", type=float, help="seconds per run (default: the budget left / runs left)"
    )
    parser.add_argument("--target", type=float, default=0.94, help="test top-1 a run stops at")
    parser.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    parser.add_argument(
        "--limit", type=int, help="use only the first N training and test images (smoke tests)"
    )
    parser.add_argument("--data-dir", help="the folder of the four IDX .gz files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=OUT, help=f"the JSON written after every epoch (default {OUT})")
    args = parser.parse_args(argv)
    args.max_epochs = args.epochs if args.max_epochs is None else args.max_epochs
    for flag in ("epochs", "max_epochs", "batch_size", "limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    for flag in ("budget_s", "run_cap_s"):
        value = getattr(args, flag)
        if value is not None and not (math.isfinite(value) and value > 0):
            parser.error(f"--{flag.replace('_', '-')} must be a positive number of seconds, got {value}")
    if not 0 < args.target <= 1:
        parser.error(f"--target must be a test top-1 in (0, 1], got {args.target}")
    if args.limit is not None and args.limit < args.batch_size:
        parser.error(f"--limit ({args.limit}) must be at least --batch-size ({args.batch_size}): one step")
    return args


def main(argv=None):
    args = parse_args(argv)
    clock = time.perf_counter()
    deadline = clock + args.budget_s
    keras, jax = import_keras()
    if REPO not in sys.path:
        sys.path.insert(0, REPO)  # kzoo's source, when it is not installed (the device machine)
    import kzoo.models
    from kzoo.placement import ACTIVATION_NAMES

    models = _names(args.models, kzoo.models.list_models(), "--models", ACTIVATION_NAMES)
    precisions = _names(args.precisions, PRECISIONS, "--precisions")
    (x_train, y_train), (x_test, y_test), folder = load_fashion_mnist(args.data_dir, args.limit)
    data = ((padded(x_train), y_train), (normalise(x_test), y_test))
    result = {
        "benchmark": "gpu_jax",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python benchmarks/gpu_jax.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(keras, jax),
        "settings": {
            **RECIPE,
            "batch_size": args.batch_size,
            "models": models,
            "precisions": precisions,
            "epochs": args.epochs,
            "max_epochs": args.max_epochs,
            "budget_s": args.budget_s,
            "run_cap_s": args.run_cap_s,
            "target": args.target,
            "limit": args.limit,
            "train_images": int(len(y_train)),
            "test_images": int(len(y_test)),
            "eval_batch": min(EVAL_BATCH, len(y_test)),
            "seed": args.seed,
            "data_dir": folder,
            "setup_s": round(time.perf_counter() - clock, 3),
        },
        "results": {name: {} for name in models},
    }
    write_json(result, args.out)
    configs = [(m, p) for m in models for p in precisions]
    for i, (name, precision) in enumerate(configs):
        now = time.perf_counter()
        left = deadline - now
        if left < MIN_RUN_S:
            result["results"][name][precision] = {
                "model": name,
                "precision": precision,
                "status": "skipped",
                "stop_reason": f"budget spent ({left:.0f} s of --budget-s {args.budget_s:.0f} left)",
            }
            write_json(result, args.out)
            continue
        share = left / (len(configs) - i)
        cap = share if args.run_cap_s is None else min(args.run_cap_s, left)

        def on_epoch(run, name=name, precision=precision):
            result["results"][name][precision] = run
            result["total_s"] = round(time.perf_counter() - clock, 3)
            write_json(result, args.out)

        on_epoch(train_run(keras, jax, name, precision, data, args, now + cap, on_epoch))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
