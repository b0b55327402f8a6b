"""Helpers shared by test modules (tests/ is on sys.path under pytest's default import mode)."""

import dataclasses
import importlib.util
import os

import keras


class CutAtEpoch(keras.callbacks.Callback):
    """Raise KeyboardInterrupt as epoch ``epoch`` (0-based) begins: a run cut short by
    Ctrl-C, to test what it leaves and how it resumes."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def load_script(path):
    """The module of an applications/ script (they are files, not a package)."""
    spec = importlib.util.spec_from_file_location("recipe_" + os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def changed_spec(spec, *, source=None, augmentation=None, **fields):
    """A kzoo.data.DatasetSpec with ``fields`` changed, and the fields of its source and
    augmentation records named in the ``source`` / ``augmentation`` dicts (every record
    checks itself again as it is made)."""
    if source is not None:
        fields["source"] = dataclasses.replace(spec.source, **source)
    if augmentation is not None:
        fields["augmentation"] = dataclasses.replace(spec.augmentation, **augmentation)
    return dataclasses.replace(spec, **fields)
