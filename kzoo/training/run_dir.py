"""The run directory: one owner for the names of the files a training run writes, so
the trainer, evaluation, export, tuning and reproduction read the same files.

    config.json   everything the run resolved (model, kwargs, dataset, protocol, seed, ...)
    epochs.csv    one row per completed epoch
    best.keras    the best validation top-1 so far (when there is a validation split)
    last.keras    the model after the last completed epoch
    metrics.json  the finished run's test scores and facts; its presence means "finished"
    curves.png    the training curves
    backup/       Keras' BackupAndRestore state, while the run is unfinished
"""

import dataclasses
import json
import os

from kzoo import atomic, checks

CONFIG = "config.json"
EPOCHS = "epochs.csv"
BEST = "best.keras"
LAST = "last.keras"
METRICS = "metrics.json"
CURVES = "curves.png"
BACKUP = "backup"
# Fields whose change makes an existing run directory a different run.
RUN_IDENTITY = ("model", "model_kwargs", "dataset", "protocol", "seed", "precision")


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (``RunDir(path).metrics`` and so on)."""

    path: str

    def _join(self, name):
        return os.path.join(self.path, name)

    @property
    def config(self):
        return self._join(CONFIG)

    @property
    def epochs(self):
        return self._join(EPOCHS)

    @property
    def best(self):
        return self._join(BEST)

    @property
    def last(self):
        return self._join(LAST)

    @property
    def metrics(self):
        return self._join(METRICS)

    @property
    def curves(self):
        return self._join(CURVES)

    @property
    def backup(self):
        return self._join(BACKUP)

    def is_finished(self):
        """A finished run has its metrics written (the trainer's last step)."""
        return os.path.exists(self.metrics)

    def read_config(self, fix):
        """The run's config, or None when there is none; a damaged one names ``fix``."""
        if not os.path.exists(self.config):
            return None
        return checks.read_json(self.config, "the run's config", fix)

    def check_same_run(self, config):
        """Refuse to resume a run directory that holds a different run than ``config``."""
        old = self.read_config("delete the run directory to start over, or choose another `out`")
        if old is None:
            return
        config = json.loads(json.dumps(config, default=str))  # as it would be read back
        changed = [k for k in RUN_IDENTITY if old.get(k) != config.get(k)]
        # A protocol field given as an override (epochs, lr, ...) changes the run too. Fields
        # only one side knows (added in a later kzoo) and the prose ones do not.
        old_fields, new_fields = old.get("protocol_fields") or {}, config["protocol_fields"]
        changed += [
            k
            for k in sorted(set(old_fields) & set(new_fields) - {"description", "source"})
            if old_fields[k] != new_fields[k]
        ]
        if changed:
            raise ValueError(
                f"run directory {self.path!r} holds a different run (it differs in {', '.join(changed)}); "
                "re-run the same command to resume it, or choose another `out`"
            )

    def remove_stale(self):
        """Remove the temporaries a killed run left here and in its backup folder."""
        atomic.remove_stale(self.path)
        atomic.remove_stale(self.backup)

    def read_metrics(self, fix, what="the finished run's metrics"):
        return checks.read_json(self.metrics, what, fix)

    def write_json(self, path, record):
        """``record`` as indented JSON at ``path`` (one of this run's files), atomically."""
        atomic.write_text(path, json.dumps(record, indent=2, default=str))
