"""Where data lives on disk: the default caches of TFDS and keras.datasets, and the
check that a location the user named exists. Such a location is authoritative -- the
only place read -- so when it is not right the error says so (and what it was for)
instead of another copy being used."""

import os

from kzoo import checks


def existing_dir(folder, arg, missing_hint=""):
    """checks.existing_dir, with ``missing_hint`` added when nothing is there."""
    try:
        return checks.existing_dir(folder, arg)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}{missing_hint}") from None


def keras_cache_dir():
    """Where ``keras.datasets`` keeps its downloads (``$KERAS_HOME/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def tfds_data_dir(data_dir):
    """The folder TFDS reads: ``data_dir``, else ``$TFDS_DATA_DIR``, else its default."""
    if data_dir is not None:
        return os.fspath(data_dir)
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
