"""Callbacks that make a run safe to interrupt: a NaN stops it with an error (keeping
the backup), checkpoints are written atomically, and the epoch log survives resumes."""

import csv
import io
import math
import os
import tempfile
import time

import keras


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise ``NonFiniteLossError`` at the first non-finite batch loss.

    Raising (rather than keras' ``TerminateOnNaN``, which ends ``fit`` normally) skips
    the epoch-end and train-end hooks, so ``BackupAndRestore`` neither saves the broken
    weights nor deletes the last good backup.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"the training loss became {float(loss)} at batch {batch}; the run stops and "
                "keeps its last backup. Lower the learning rate or check the data."
            )


def atomic_save(model, path):
    """Write ``model`` to ``path`` (.keras) through a temporary file in the same folder
    and an atomic rename: a reader sees the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Checkpoints(keras.callbacks.Callback):
    """``last.keras`` after every epoch and ``best.keras`` when ``monitor`` improves,
    both written atomically. The best score so far is read back from the epoch log on
    resume, so a resumed run does not overwrite a better earlier model."""

    def __init__(self, folder, monitor="val_accuracy", best_so_far=None):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.best = best_so_far

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        atomic_save(self.model, os.path.join(self.folder, "last.keras"))
        score = logs.get(self.monitor)
        if self.monitor and score is not None and (self.best is None or score > self.best):
            self.best = float(score)
            atomic_save(self.model, os.path.join(self.folder, "best.keras"))


class EpochLog(keras.callbacks.Callback):
    """One CSV row per completed epoch (epoch, metrics, learning rate, seconds).

    On resume, rows from epochs the backup does not cover are dropped, so the log ends
    with exactly one row per epoch the final model has seen.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._start = None
        self._rows = []

    def rows(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def on_train_begin(self, logs=None):
        first = getattr(self.model, "_initial_epoch", 0) or 0
        self._rows = [r for r in self.rows() if int(r["epoch"]) < first]
        self._write()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()},
               "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "seconds": time.perf_counter() - self._start}
        self._rows.append(row)
        self._write()

    def _write(self):
        rows, keys = self._rows, []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())
