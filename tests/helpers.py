"""Helpers shared by test modules (tests/ is on sys.path under pytest's default import mode)."""

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
