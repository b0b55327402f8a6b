"""Callbacks that make a run safe to interrupt: a NaN stops it with an error (keeping
the backup), checkpoints are written atomically, and the epoch log survives resumes."""

import contextlib
import csv
import io
import json
import math
import os
import shutil
import tempfile
import time

import keras

from kzoo.training import run_dir


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


def _temporary_beside(path, suffix=""):
    """A new temporary file in ``path``'s folder (so the rename onto ``path`` is atomic),
    with the mode a plain ``open`` would give it: mkstemp's 0600 would otherwise end up
    on the renamed file, unreadable to the other users of a shared run or model folder."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


def atomic_save(model, path):
    """Write ``model`` to ``path`` (.keras) through a temporary file in the same folder
    and an atomic rename: a reader sees the old file or the new one, never half of one."""
    fd, tmp = _temporary_beside(path, suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` as ``atomic_save`` writes a model: all or nothing."""
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class TestCurve(keras.callbacks.Callback):
    """Evaluate the test set after every epoch and add ``test_<metric>`` to the epoch's
    logs, for the papers' test-error-per-epoch figures. Only recorded: nothing selects
    on it. Place it before the callbacks that should see the scores (``EpochLog``).
    ``scorer``: a compiled model sharing the trained one's weights (a test-time
    augmented view) to evaluate instead of it; ``ema``: a ``WeightEMA`` whose average is
    scored (swapped in around the evaluation, not handed to the scorer's callbacks, which
    would point it at the view)."""

    def __init__(self, test_ds, callbacks=(), scorer=None, ema=None):
        super().__init__()
        self.test_ds = test_ds
        self.eval_callbacks = list(callbacks)
        self.scorer = scorer
        self.ema = ema

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        model = self.scorer or self.model
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            scores = model.evaluate(self.test_ds, return_dict=True, verbose=0, callbacks=self.eval_callbacks)
        logs.update({f"test_{k}": float(v) for k, v in scores.items()})


class Checkpoints(keras.callbacks.Callback):
    """``last.keras`` after every epoch and ``best.keras`` when ``monitor`` improves,
    both written atomically. The best score so far is read back from the epoch log on
    resume, so a resumed run does not overwrite a better earlier model. With ``ema``
    (a ``WeightEMA``) both hold the averaged weights, the model the run scores."""

    def __init__(self, folder, monitor="val_accuracy", best_so_far=None, ema=None):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.best = best_so_far
        self.ema = ema

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            atomic_save(self.model, os.path.join(self.folder, run_dir.LAST))
            score = logs.get(self.monitor)
            if self.monitor and score is not None and (self.best is None or score > self.best):
                self.best = float(score)
                atomic_save(self.model, os.path.join(self.folder, run_dir.BEST))


class EpochLog(keras.callbacks.Callback):
    """One CSV row per completed epoch (epoch, metrics, learning rate, seconds).

    On resume, rows from epochs the backup does not cover are dropped, so the log ends
    with exactly one row per epoch the final model has seen. ``epochs`` holds the rows
    in memory (numbers, not strings); with ``write=False`` (a multi-worker run's other
    workers) nothing is written.
    """

    def __init__(self, path, write=True):
        super().__init__()
        self.path = path
        self.write = write
        self._start = None
        self._rows = []

    def read(self):
        """The rows on disk, as numbers."""
        if not os.path.exists(self.path):
            return []
        try:
            with open(self.path, newline="") as f:
                rows = [
                    {k: int(v) if k == "epoch" else float(v) if v else None for k, v in r.items()}
                    for r in csv.DictReader(f)
                ]
        except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as err:
            raise ValueError(
                f"the epoch log {self.path!r} is damaged ({err}); delete the run directory to start over"
            ) from None
        if any(None in r or "epoch" not in r or r["epoch"] is None for r in rows):
            raise ValueError(
                f"the epoch log {self.path!r} is damaged (rows do not match its header); "
                "delete the run directory to start over"
            )
        return rows

    @property
    def epochs(self):
        return list(self._rows)

    def on_train_begin(self, logs=None):
        first = getattr(self.model, "_initial_epoch", 0) or 0
        self._rows = [r for r in self.read() if r["epoch"] < first]
        self._write()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {
            "epoch": epoch,
            **{k: float(v) for k, v in (logs or {}).items()},
            "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": time.perf_counter() - self._start,
        }
        self._rows.append(row)
        self._write()

    def _write(self):
        if not self.write:
            return
        rows, keys = self._rows, []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())


class Backup(keras.callbacks.Callback):
    """Resume state (weights, optimizer state, epochs done) saved after every epoch, and
    restored when training begins, so a re-run continues after the last completed epoch.

    Unlike keras' ``BackupAndRestore``, which writes the weights and then the epoch
    number as two files (a kill between them resumes the wrong epoch), each backup is a
    folder ``epoch-NNNN`` written under a temporary name and renamed into place, the two
    newest kept. Only ``writer`` processes save (the chief of a multi-worker run); every
    process restores from the same folder. ``extra_state``: objects whose ``save(folder)``
    and ``restore(folder)`` keep more of the run in each backup (a ``WeightEMA``).
    """

    def __init__(self, folder, writer=True, keep=2, extra_state=()):
        super().__init__()
        self.folder = folder
        self.writer = writer
        self.keep = keep
        self.extra_state = list(extra_state)

    def _backups(self):
        if not os.path.isdir(self.folder):
            return []
        names = [n for n in os.listdir(self.folder) if n.startswith("epoch-") and n[6:].isdigit()]
        return sorted(names, key=lambda n: int(n[6:]), reverse=True)

    def on_train_begin(self, logs=None):
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        for name in self._backups():
            path = os.path.join(self.folder, name)
            try:
                self.model.load_weights(os.path.join(path, "model.weights.h5"))
                with open(os.path.join(path, "state.json")) as f:
                    epochs = json.load(f)["epochs"]
                for state in self.extra_state:
                    state.restore(path)
            except (OSError, ValueError, KeyError):
                continue  # unreadable (e.g. the disk lost it): fall back to the older one
            self.model._initial_epoch = epochs  # the field keras' own BackupAndRestore sets
            return

    def on_epoch_end(self, epoch, logs=None):
        if not self.writer:
            return
        os.makedirs(self.folder, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.folder)
        try:
            self.model.save_weights(os.path.join(tmp, "model.weights.h5"))
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"epochs": epoch + 1}, f)
            for state in self.extra_state:
                state.save(tmp)
            target = os.path.join(self.folder, f"epoch-{epoch + 1:04d}")
            shutil.rmtree(target, ignore_errors=True)  # an unreadable one skipped on resume
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in self._backups()[self.keep :]:
            shutil.rmtree(os.path.join(self.folder, old), ignore_errors=True)
