"""kzoo: a Keras 3 model zoo for where ReLUs belong in a CNN (EraseReLU, the
proportional module, FReLU), with builders shaped like keras.applications."""

__version__ = "0.1.0"

from kzoo import _quiet  # noqa: E402

with _quiet.quiet_import():  # TensorFlow's start-up notices (kzoo._quiet)
    from kzoo import checks, data, layers, placement, rest, training, tuning  # noqa: F401
    from kzoo.models import *  # noqa: F401,F403
    from kzoo.models import (  # noqa: F401
        ModelInfo, create_model, list_models, load_model, model_info, trainable_params)
    from kzoo.placement import activation_layers  # noqa: F401
    from kzoo.training import evaluate, train  # noqa: F401
    from kzoo.exporter import export  # noqa: F401
