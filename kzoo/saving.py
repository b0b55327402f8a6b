"""Loading a ``.keras`` file that kzoo wrote: its models' layers and, in a run's file,
its training's schedule and loss in the compile config. Above both ``kzoo.models`` and
``kzoo.training`` (whose ``schedules`` and ``losses`` need Keras only), so that the
models never depend on training."""

import os
import re
import zipfile

import keras

from kzoo import checks
from kzoo.models.deep_graphs import deep_graphs


def load_model(filepath, **kwargs):
    """``keras.models.load_model`` with kzoo's layers registered and room for very deep
    graphs (a ResNet-1202 ``.keras`` file exceeds Python's recursion limit otherwise).
    A missing file or one that is not a ``.keras`` archive (a zip) is refused naming it,
    rather than with keras' "File not found" for a file that exists."""
    # A run's file names kzoo's schedule and loss: registered by importing their modules,
    # here rather than at ``import kzoo`` (they need Keras only, on any backend).
    from kzoo.training import losses, schedules  # noqa: F401

    path = checks.path(filepath, "filepath")
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if path.endswith(".keras") and (not os.path.isfile(path) or not zipfile.is_zipfile(path)):
        raise ValueError(
            f"model file {path!r} is not a Keras archive (a .keras file is a zip); it is "
            "damaged or of another kind: re-create it (re-run the training that wrote it)"
        )
    with deep_graphs():
        try:
            return keras.models.load_model(path, **kwargs)
        except (OSError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(
                f"model file {path!r} could not be read ({type(err).__name__}: {err}); it "
                "is damaged: re-create it (re-run the training that wrote it)"
            ) from None
        except TypeError as err:
            # Keras names a backend's own optimizer class (torch's SGD is
            # keras.src.backend.torch.optimizers.torch_sgd.SGD) in the compile config,
            # which no other backend can import; the model itself moves.
            other = re.search(r"keras\.src\.backend\.(\w+)\.optimizers", str(err))
            if other is None or other.group(1) == keras.backend.backend():
                raise
            raise ValueError(
                f"model file {path!r} was compiled under Keras' {other.group(1)} backend, whose "
                f"optimizer class does not exist under this one ({keras.backend.backend()}): "
                "load it with kzoo.load_model(filepath, compile=False) (the architecture and "
                "weights move between backends) and compile it again"
            ) from None
