"""kzoo's ResNet-20 against the same network in PyTorch: training-step throughput of
Keras' ``model.fit`` (TensorFlow backend) over PyTorch eager (channels_last), float32
and bfloat16, on Fashion-MNIST-shaped inputs (28x28x1, 10 classes), batch 128, 2 threads.
kzoo's goal: ratio = kzoo img/s / PyTorch img/s >= 1.0 in each precision.

Each framework runs in a process of its own (PyTorch in .venv-torch's Python, Keras in
this one), started once per precision, built and warmed up before any round, then told
to time its steps in turn: kzoo, PyTorch, kzoo, PyTorch ..., so the drift of a shared
machine's speed hits both alike. A process waits on its pipe while the other one runs.

* kzoo: ``kzoo.ResNet20`` built under the ``float32`` or ``mixed_bfloat16`` policy,
  compiled with SGD (momentum 0.9, Nesterov) and sparse categorical cross-entropy (no
  XLA, no metrics), ``model.fit`` on an in-memory ``tf.data`` dataset of random images
  (batched, cached, repeated, prefetched); a round is one ``fit`` call, timed from its
  first step's start to its last step's end (a callback), TensorFlow's intra- and
  inter-op thread pools set to ``threads``.
* PyTorch: ``TorchResNet20`` below (He et al.'s CIFAR ResNet-20 as kzoo builds it:
  option-A shortcuts, no conv biases, BN eps 1e-5, the same trainable parameters),
  model and batches in ``torch.channels_last``, SGD (momentum 0.9, Nesterov),
  cross-entropy, bfloat16 through ``torch.autocast("cpu", dtype=torch.bfloat16)``,
  ``torch.set_num_threads(threads)``.

Without .venv-torch (``make test-torch`` creates it) the result says it was skipped.

    python benchmarks/torch_ratio.py [--rounds 4 --steps 12 --write-results]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PYTHON = os.path.join(ROOT, ".venv-torch", "bin", "python")
INPUT_SHAPE = (28, 28, 1)
CLASSES = 10
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # name: Keras dtype policy
GOAL = 1.0  # kzoo img/s / PyTorch img/s, in each precision
LEARNING_RATE = 0.01
BATCHES = 4  # distinct random batches each side cycles through
MESSAGE = "torch_ratio> "  # a child's answers on stdout start with it; other lines are ignored

sys.path.insert(0, HERE)


# --- the PyTorch network (imports torch: only in .venv-torch's process) --------------


def torch_resnet20(in_channels=1, classes=10):
    """He et al.'s CIFAR ResNet-20 in PyTorch, as kzoo.ResNet20 builds it: a 3x3 stem of
    16 channels + BN + ReLU; three stages of three post-activation basic blocks of 16, 32
    and 64 channels, stride 2 in the first block of stages 2 and 3; option-A shortcuts
    (subsampled, zero channels appended after the input's: no parameters); global
    average pooling and a linear classifier (logits: the loss applies the softmax)."""
    import torch
    from torch import nn

    def conv3x3(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)

    def bn(channels):  # Keras' momentum 0.9 is PyTorch's 0.1
        return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1, self.bn1 = conv3x3(cin, cout, stride), bn(cout)
            self.conv2, self.bn2 = conv3x3(cout, cout), bn(cout)
            self.relu = nn.ReLU(inplace=True)
            self.stride, self.extra = stride, cout - cin

        def shortcut(self, x):
            if self.stride > 1:
                x = x[:, :, :: self.stride, :: self.stride]
            if self.extra:
                n, _, h, w = x.shape
                zeros = x.new_zeros((n, self.extra, h, w)).contiguous(memory_format=torch.channels_last)
                x = torch.cat((x, zeros), dim=1)
            return x

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return self.relu(out)

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [conv3x3(in_channels, 16), bn(16), nn.ReLU(inplace=True)]
            cin = 16
            for stage, width in enumerate((16, 32, 64)):
                for block in range(3):
                    layers.append(Block(cin, width, 2 if stage and not block else 1))
                    cin = width
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(64, classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):  # as Keras' he_normal (not truncated)
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

        def forward(self, x):
            x = self.features(x)
            return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return ResNet20()


# --- the two children ------------------------------------------------------------------


def _send(message):
    print(MESSAGE + json.dumps(message), flush=True)


def _serve(timed_steps, ready):
    """Answer ``ready``, then time ``timed_steps(n)`` for each request until told to stop."""
    _send(ready)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("stop"):
            break
        _send({"seconds": timed_steps(request["steps"]), "steps": request["steps"]})


def keras_child(precision, batch, warmup, threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    import kzoo

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    keras.utils.set_random_seed(0)
    model = kzoo.ResNet20(input_shape=INPUT_SHAPE, classes=CLASSES)
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=0.9, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        jit_compile=False,
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (BATCHES * batch, *INPUT_SHAPE)).astype("float32")
    y = rng.integers(0, CLASSES, BATCHES * batch).astype("int32")
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(batch, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )

    class Clock(keras.callbacks.Callback):
        """From the first step's start to the last step's end: not ``fit``'s set-up."""

        def on_train_batch_begin(self, step, logs=None):
            if step == 0:
                self.start = time.perf_counter()

        def on_train_batch_end(self, step, logs=None):
            self.end = time.perf_counter()

    clock = Clock()

    def timed_steps(steps):
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
        return clock.end - clock.start

    timed_steps(warmup)
    _serve(
        timed_steps,
        {
            "framework": "keras",
            "trainable_params": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
            "policy": model.dtype_policy.name,
            "compute_dtype": model.dtype_policy.compute_dtype,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "tensorflow_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tensorflow_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
    )


def torch_child(precision, batch, warmup, threads):
    import contextlib

    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_resnet20(INPUT_SHAPE[-1], CLASSES).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, nesterov=True)
    shape = (batch, INPUT_SHAPE[-1], *INPUT_SHAPE[:2])
    xs = [torch.rand(shape).contiguous(memory_format=torch.channels_last) for _ in range(BATCHES)]
    ys = [torch.randint(0, CLASSES, (batch,)) for _ in range(BATCHES)]
    bfloat16 = precision == "bfloat16"
    count = [0]

    def precision_scope():
        if bfloat16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        i = count[0] % BATCHES
        count[0] += 1
        optimizer.zero_grad(set_to_none=True)
        with precision_scope():
            loss = torch.nn.functional.cross_entropy(model(xs[i]), ys[i])
        loss.backward()
        optimizer.step()

    def timed_steps(steps):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start

    timed_steps(warmup)
    _serve(
        timed_steps,
        {
            "framework": "torch",
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "autocast": "bfloat16" if bfloat16 else None,
            "memory_format": "channels_last",
            "torch": torch.__version__,
            "num_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": torch.backends.mkldnn.is_available(),
        },
    )


CHILDREN = {"keras": keras_child, "torch": torch_child}


# --- the parent: start both, alternate their rounds ----------------------------------


class Child:
    """One framework's process: started, built and warmed up (``ready`` is its answer),
    then asked for ``steps`` timed steps at a time."""

    def __init__(self, framework, python, precision, batch, warmup, threads):
        self.framework = framework
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        if framework == "keras":
            env["KERAS_BACKEND"] = "tensorflow"
        argv = [python, os.path.abspath(__file__), "--child", framework, "--precision", precision]
        argv += ["--batch", str(batch), "--warmup", str(warmup), "--threads", str(threads)]
        self.stderr = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            cwd=ROOT,
            env=env,
        )
        try:
            self.ready = self._answer()
        except BaseException:
            self.close()
            raise

    def _answer(self):
        for line in self.process.stdout:
            if line.startswith(MESSAGE):
                return json.loads(line[len(MESSAGE) :])
        status = self.process.wait()
        self.stderr.seek(0)
        tail = "\n".join(self.stderr.read().strip().splitlines()[-8:])
        raise RuntimeError(f"the {self.framework} process failed with exit status {status}:\n{tail}")

    def images_per_s(self, steps, batch):
        self.process.stdin.write(json.dumps({"steps": steps}) + "\n")
        self.process.stdin.flush()
        return batch * steps / self._answer()["seconds"]

    def close(self):
        try:
            if self.process.poll() is None:
                self.process.stdin.write(json.dumps({"stop": True}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            self.stderr.close()


def measure(precision, batch, rounds, steps, warmup, threads, torch_python):
    """Both frameworks' images/s in one precision, ``rounds`` alternating rounds."""
    children = {}
    try:
        # one after the other: a process's start and warm-up never overlaps the other's timing
        children["kzoo"] = Child("keras", sys.executable, precision, batch, warmup, threads)
        children["torch"] = Child("torch", torch_python, precision, batch, warmup, threads)
        samples = {label: [] for label in children}
        for _ in range(rounds):
            for label, child in children.items():  # kzoo, torch, kzoo, torch ...
                samples[label].append(child.images_per_s(steps, batch))
    finally:
        for child in children.values():
            child.close()
    timings = {
        label: {
            "images_per_s": round(statistics.median(v), 2),
            "rounds": [round(s, 2) for s in v],
            **{key: value for key, value in children[label].ready.items() if key != "framework"},
        }
        for label, v in samples.items()
    }
    ratio = timings["kzoo"]["images_per_s"] / timings["torch"]["images_per_s"]
    paired = sorted(k / t for k, t in zip(samples["kzoo"], samples["torch"]))
    return {
        **timings,
        "ratio": round(ratio, 3),
        "paired_ratio": {
            "median": round(statistics.median(paired), 3),
            "min": round(paired[0], 3),
            "max": round(paired[-1], 3),
        },
        "meets_goal": ratio >= GOAL,
    }


def run(
    batch=128,
    rounds=4,
    steps=12,
    warmup=6,
    threads=2,
    precisions="float32,bfloat16",
    torch_python=TORCH_PYTHON,
):
    from timing import machine  # TensorFlow: the parent's (and the Keras child's) only

    names = [p.strip() for p in precisions.split(",") if p.strip()]
    unknown = [p for p in names if p not in PRECISIONS]
    if unknown or not names:
        raise ValueError(f"precisions={precisions!r}: expected some of {', '.join(PRECISIONS)}")
    settings = {
        "benchmark": "torch_ratio",
        "model": "resnet20",
        "input_shape": list(INPUT_SHAPE),
        "classes": CLASSES,
        "batch": batch,
        "threads": threads,
        "goal": f"kzoo img/s / PyTorch img/s >= {GOAL} in each precision",
    }
    if not os.access(torch_python, os.X_OK):
        return {
            **settings,
            "skipped": f"no PyTorch environment: {torch_python} is missing (`make test-torch` creates it)",
            "machine": machine(),
        }
    start = time.perf_counter()
    results = {p: measure(p, batch, rounds, steps, warmup, threads, torch_python) for p in names}
    first = results[names[0]]
    return {
        **settings,
        "rounds": rounds,
        "steps_per_round": steps,
        "warmup_steps": warmup,
        "trainable_params": {
            "kzoo": first["kzoo"]["trainable_params"],
            "torch": first["torch"]["trainable_params"],
        },
        "results": results,
        "meets_goal": all(r["meets_goal"] for r in results.values()),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": {**machine(), "torch": first["torch"]["torch"]},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per precision")
    parser.add_argument("--steps", type=int, default=12, help="training steps timed per round and side")
    parser.add_argument("--warmup", type=int, default=6, help="untimed steps before the rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--torch-python", default=TORCH_PYTHON, help="a Python with PyTorch")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="also replace the torch_ratio part of benchmarks/results/latest.json and regenerate SUMMARY.md",
    )
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)  # a framework's process
    parser.add_argument("--precision", choices=PRECISIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        CHILDREN[args.child](args.precision, args.batch, args.warmup, args.threads)
        return
    result = run(
        args.batch, args.rounds, args.steps, args.warmup, args.threads, args.precisions, args.torch_python
    )
    if args.write_results:
        import summary

        summary.update("torch_ratio", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
