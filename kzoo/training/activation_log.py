"""The activation log of a run (``kzoo.train(activation_log=N)``, ``kzoo train
--activation-log [N]``; off by default): after every epoch, each activation slot's zero
fraction and each FReLU layer's bias, measured (``kzoo.activation_stats``) on the same
``N`` images, as rows of ``activations.csv`` in the run directory, drawn per module depth
in ``activations.png``.

The images are the first ``N`` of the validation split, or of the training split without
augmentation when the run holds none out, preprocessed as for evaluation. The weights
measured are those being trained (with ``ema_decay``, not their average). Like the epoch
log, a resumed run drops the rows of the epochs it does again, so the file ends with the
rows an uninterrupted run writes; both files are written atomically, before the epoch's
backup.
"""

import csv
import io
import json
import math
import os

import keras

from kzoo import atomic, checks

FILE = "activations.csv"
PLOT = "activations.png"
DEFAULT_IMAGES = 256
COLUMNS = (
    "epoch",
    "images",
    "module",
    "slot",
    "layer",
    "kind",
    "erased",
    "zero_fraction",
    "dead_fraction",
    "frelu_bias",
)
_FIX = "delete it (and the run directory's backup/) to start the run over"


def check(activation_log):
    """The number of images logged (None: off) from ``train``'s ``activation_log``:
    False/None (off), True (``DEFAULT_IMAGES``) or a positive integer."""
    if activation_log is None or activation_log is False:
        return None
    if activation_log is True:
        return DEFAULT_IMAGES
    return checks.integer(activation_log, "activation_log", minimum=1)


def _read(path):
    """The rows on disk, as the strings they were written (a resume rewrites them as they were)."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = tuple(reader.fieldnames or ())
        for r in rows:
            int(r["epoch"]), int(r["images"])
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"the activation log {path!r} is damaged ({err}); {_FIX}") from None
    if rows and (header != COLUMNS or any(None in r for r in rows)):
        raise ValueError(f"the activation log {path!r} is damaged (not the columns kzoo writes); {_FIX}")
    return rows


def check_resume(run, images):
    """Refuse to resume ``run`` (a RunDir) with another activation log than it started
    with: its rows would mix samples, or stop or start half-way."""
    logged = {int(r["images"]) for r in _read(os.path.join(run.path, FILE))}
    if logged and images not in logged:
        asked = "without `activation_log`" if images is None else f"with `activation_log`={images}"
        raise ValueError(
            f"the run in {run.path!r} logged activations on {min(logged)} images per epoch ({FILE}); "
            f"resuming it {asked} would change its record: give `activation_log`={min(logged)} "
            f"(--activation-log {min(logged)})"
        )
    if images is not None and not logged and os.path.isfile(run.epochs) and os.path.getsize(run.epochs):
        raise ValueError(
            f"`activation_log`={images}: the run in {run.path!r} started without it, so its first epochs "
            "have no activation record; log a new run (another `out`), or resume this one without it"
        )


def _sample(dataset, data_dir, validation_size, images):
    """The first ``images`` validation images (training ones when none are held out),
    preprocessed for evaluation, as one array."""
    import numpy as np

    from kzoo import data
    from kzoo.data.splits import checked_validation_size

    val = checked_validation_size(data.dataset_info(dataset), validation_size)
    split = "validation" if val else "train"
    examples = data.load(dataset, split, data_dir=data_dir, validation_size=val).take(images)
    batches = data.pipeline(examples, dataset, training=False, batch_size=min(images, 256))
    return np.concatenate([x for x, _ in batches.as_numpy_iterator()])


class ActivationLog(keras.callbacks.Callback):
    """The run's activation log (see the module): ``sample()`` gives the images (read
    when training begins), ``original`` the network before erasure (its erased slots
    get rows too), ``write=False`` (a multi-worker run's other workers) measures nothing."""

    def __init__(self, folder, sample, original=None, write=True):
        super().__init__()
        self.path, self.plot_path = os.path.join(folder, FILE), os.path.join(folder, PLOT)
        self.sample, self.original, self.write = sample, original, write
        self.rows, self._images, self._probe = [], None, None

    def on_train_begin(self, logs=None):
        if not self.write:
            return
        from kzoo.transform.stats import ActivationProbe

        first = getattr(self.model, "_initial_epoch", 0) or 0
        self.rows = [r for r in _read(self.path) if int(r["epoch"]) < first]
        self._save()
        self._images = self.sample()
        self._probe = ActivationProbe(
            self.model, self.original() if callable(self.original) else self.original
        )

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        n = len(self._images)
        batches = (self._images[i : i + 256] for i in range(0, n, 256))
        table = self._probe.measure(batches, math.ceil(n / 256))
        for r in table.rows:
            self.rows.append(
                {
                    "epoch": str(epoch),
                    "images": str(table.images),
                    **{c: _text(r[c]) for c in COLUMNS[2:]},
                }
            )
        self._save()

    def _save(self):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic.write_text(self.path, out.getvalue())
        if self.rows:
            plot(self.rows, self.plot_path)
        elif os.path.exists(self.plot_path):  # every epoch it drew is done again
            os.remove(self.plot_path)


def _text(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return json.dumps(value) if isinstance(value, list) else str(value)


def _mean(text):
    if not text:
        return math.nan
    value = json.loads(text)
    return sum(value) / len(value) if isinstance(value, list) else float(value)


def plot(rows, path):
    """Each slot's zero fraction per epoch, one line per module coloured by its depth, and
    FReLU's bias (the layer's mean) alike when the model has FReLU; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["module"].isdigit()]
    depth = max((int(r["module"]) for r in rows), default=1)
    lines = list(dict.fromkeys((int(r["module"]), r["slot"]) for r in rows))
    slots = list(dict.fromkeys(s for _, s in lines))
    panels = [("zero_fraction", "zero fraction")]
    if any(r["frelu_bias"] for r in rows):
        panels.append(("frelu_bias", "FReLU bias (mean per layer)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, (key, label) in zip(axes[0], panels):
        for module, slot in lines:
            points = [
                (int(r["epoch"]) + 1, _mean(r[key]))
                for r in rows
                if int(r["module"]) == module and r["slot"] == slot and r[key]
            ]
            if points:
                xs, ys = zip(*points)
                style = ("-", "--", ":", "-.")[slots.index(slot) % 4]
                ax.plot(xs, ys, style, marker=".", color=cmap(module / max(depth, 1)))
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.grid(alpha=0.3)
    key = ", ".join(f"{s}: {('solid', 'dashed', 'dotted', 'dash-dot')[i % 4]}" for i, s in enumerate(slots))
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(1, depth)), ax=axes[0].tolist())
    bar.set_label("module (depth)")
    fig.suptitle(f"activations per epoch ({key})", fontsize="medium")
    try:
        atomic.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90), suffix=".png")
    finally:
        plt.close(fig)


def for_run(activation_log, run, proto, dataset, data_dir, model, model_kwargs, info, writer):
    """``train``'s activation log as its callbacks (none when off), checked against the
    run it resumes; nothing read or written yet."""
    images = check(activation_log)
    check_resume(run, images)
    if images is None:
        return []
    from kzoo.training.model import build_original

    return [
        ActivationLog(
            run.path,
            lambda: _sample(dataset, data_dir, proto.validation_size, images),
            original=lambda: build_original(model, model_kwargs, info),
            write=writer,
        )
    ]
