"""Callbacks that make a run safe to interrupt: a NaN stops it with an error (keeping
the backup), checkpoints are written atomically, and the epoch log survives resumes."""

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import time

import keras
import numpy as np

from kzoo import atomic
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


class TestCurve(keras.callbacks.Callback):
    """Evaluate the test set after every epoch and add ``test_<metric>`` to the epoch's
    logs, for the papers' test-error-per-epoch figures. Only recorded: nothing selects
    on it. Place it before the callbacks that should see the scores (``EpochLog``).
    ``scorer``: a compiled model sharing the trained one's weights (a test-time
    augmented view) to evaluate instead of it; ``ema``: a ``WeightEMA`` whose average is
    scored (swapped in around the evaluation, not handed to the scorer's callbacks, which
    would point it at the view). ``test_seconds`` records how long the pass took, so a
    clock of training alone can leave it out."""

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
        start = time.perf_counter()
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            scores = model.evaluate(self.test_ds, return_dict=True, verbose=0, callbacks=self.eval_callbacks)
        logs.update({f"test_{k}": float(v) for k, v in scores.items()})
        logs["test_seconds"] = time.perf_counter() - start  # inside the epoch's seconds


class Checkpoints(keras.callbacks.Callback):
    """``last.keras`` after every epoch and ``best.keras`` when ``monitor`` improves, both
    written atomically. With ``ema`` (a ``WeightEMA``) both hold the averaged weights, the
    model the run scores.

    With ``backup`` (the run's ``Backup``), an epoch's best model is only a candidate,
    ``.best-epoch-NNNN.keras``, until that epoch's backup is written: then it becomes
    ``best.keras``. A run killed before the backup redoes the epoch and drops the
    candidate; one killed after it takes the candidate on resume. So ``best.keras`` is
    always the best of the epochs in the log, as in an uninterrupted run. ``log`` (the
    run's ``EpochLog``, placed before this callback) gives the best score so far on resume.
    """

    def __init__(self, folder, monitor="val_accuracy", log=None, ema=None, backup=None):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.log = log
        self.best = None
        self.ema = ema
        self.staged = backup is not None
        if backup is not None:
            backup.on_saved.append(self.commit)

    def _candidates(self):
        found = {}
        for name in os.listdir(self.folder) if os.path.isdir(self.folder) else ():
            match = _CANDIDATE.fullmatch(name)
            if match:
                found[int(match.group(1))] = os.path.join(self.folder, name)
        return found

    def on_train_begin(self, logs=None):
        first = getattr(self.model, "_initial_epoch", 0) or 0
        for epoch, path in sorted(self._candidates().items()):
            if epoch < first:  # its backup was written, its promotion was not
                os.replace(path, os.path.join(self.folder, run_dir.BEST))
            else:  # an epoch that is done again
                os.remove(path)
        rows = self.log.epochs if self.log is not None else []
        self.best = max((r[self.monitor] for r in rows if r.get(self.monitor) is not None), default=None)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            atomic.save_model(self.model, os.path.join(self.folder, run_dir.LAST))
            score = logs.get(self.monitor)
            if self.monitor and score is not None and (self.best is None or score > self.best):
                self.best = float(score)
                name = f".best-epoch-{epoch:04d}.keras" if self.staged else run_dir.BEST
                atomic.save_model(self.model, os.path.join(self.folder, name))

    def commit(self, epoch):
        """``epoch``'s backup is written: its candidate (if any) becomes ``best.keras``."""
        path = self._candidates().get(epoch)
        if path is not None:
            os.replace(path, os.path.join(self.folder, run_dir.BEST))


_CANDIDATE = re.compile(r"\.best-epoch-(\d+)\.keras")


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
        atomic.write_text(self.path, buf.getvalue())


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

    def __init__(self, folder, writer=True, keep=2, extra_state=(), restore=True):
        super().__init__()
        self.folder = folder
        self.writer = writer
        self.keep = keep
        self.extra_state = list(extra_state)
        self.restore = restore
        self.on_saved = []  # called with the epoch once its backup is written

    def restorer(self, path=None):
        """A callback that restores this backup when training begins, for a run that
        puts it first and this ``Backup(restore=False)`` last: the epoch's backup is then
        written after everything else of the epoch (its log row, test scores, models),
        so a run killed before it does the epoch again, and one killed after it has the
        whole epoch on record. ``path``: that backup exactly (``latest()``'s), else the
        newest that loads."""
        return _Restore(self, path)

    def latest(self):
        """(folder, epochs done) of the backup a resumed run starts from: the newest whose
        record reads and whose weights file opens; (None, 0) when there is none. Known
        before training begins, so the data can start at that epoch."""
        import h5py

        for name in self._backups():
            path = os.path.join(self.folder, name)
            try:
                with open(os.path.join(path, "state.json")) as f:
                    epochs = json.load(f)["epochs"]
                with h5py.File(os.path.join(path, "model.weights.h5"), "r"):
                    pass
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0:
                return path, epochs
        return None, 0

    def _backups(self):
        if not os.path.isdir(self.folder):
            return []
        names = [n for n in os.listdir(self.folder) if n.startswith("epoch-") and n[6:].isdigit()]
        return sorted(names, key=lambda n: int(n[6:]), reverse=True)

    def on_train_begin(self, logs=None):
        if self.restore:
            self.restore_into(self.model)

    def restore_into(self, model, path=None):
        """Load the newest readable backup (``path``: that one, or a ValueError naming it)
        into ``model``, setting the epoch fit starts at."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if path is not None:
            try:
                self._load(model, path)
            except (OSError, ValueError, KeyError) as err:
                raise ValueError(
                    f"the backup {path!r} does not load ({err}); delete it to resume from the one before"
                ) from None
            return
        for name in self._backups():
            try:
                self._load(model, os.path.join(self.folder, name))
            except (OSError, ValueError, KeyError):
                continue  # unreadable (e.g. the disk lost it): fall back to the older one
            return

    def _load(self, model, path):
        model.load_weights(os.path.join(path, "model.weights.h5"))
        with open(os.path.join(path, "state.json")) as f:
            epochs = json.load(f)["epochs"]
        _restore_random_state(model, os.path.join(path, RANDOM_STATE))
        for state in self.extra_state:
            state.restore(path)
        model._initial_epoch = epochs  # the field keras' own BackupAndRestore sets

    def on_epoch_end(self, epoch, logs=None):
        if not self.writer:
            return
        os.makedirs(self.folder, exist_ok=True)
        tmp = atomic.temporary_dir(self.folder)
        try:
            self.model.save_weights(os.path.join(tmp, "model.weights.h5"))
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"epochs": epoch + 1}, f)
            _save_random_state(self.model, os.path.join(tmp, RANDOM_STATE))
            for state in self.extra_state:
                state.save(tmp)
            target = os.path.join(self.folder, f"epoch-{epoch + 1:04d}")
            shutil.rmtree(target, ignore_errors=True)  # an unreadable one skipped on resume
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in self._backups()[self.keep :]:
            shutil.rmtree(os.path.join(self.folder, old), ignore_errors=True)
        for call in self.on_saved:
            call(epoch)


RANDOM_STATE = "random_state.npz"  # in a backup folder: the model's seed generators


def _random_state(model):
    """The model's variables that its weights file leaves out: the seed generators of
    Dropout, stochastic depth, noise layers. Without them a resumed run would draw other
    dropout masks than an uninterrupted one. In model order (their names are numbered per
    process, so they cannot be matched by name)."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights and "seed_generator" in v.path]


def _save_random_state(model, path):
    np.savez(path, *[keras.ops.convert_to_numpy(v.value) for v in _random_state(model)])


def _restore_random_state(model, path):
    """Put back what ``_save_random_state`` wrote (a backup of an older kzoo has none)."""
    if not os.path.exists(path):
        return
    variables = _random_state(model)
    with np.load(path) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if [a.shape for a in arrays] != [tuple(v.shape) for v in variables]:
        raise ValueError(f"the random state in {path!r} is not this model's")
    for variable, array in zip(variables, arrays):
        variable.assign(array)


class _Restore(keras.callbacks.Callback):
    """``Backup.restorer()``: restores the backup when training begins."""

    def __init__(self, backup, path=None):
        super().__init__()
        self.backup = backup
        self.path = path

    def on_train_begin(self, logs=None):
        self.backup.restore_into(self.model, self.path)
