"""kzoo: a Keras 3 model zoo for where ReLUs belong in a CNN (EraseReLU, the
proportional module, FReLU), with builders shaped like keras.applications.

The public API is ``__all__``: every builder and the registry (``kzoo.ResNet164``,
``kzoo.create_model``), the counts papers print (``trainable_params``, ``forward_flops``,
``training_flops``), placement's ``activation_layers``, placement on any Keras model
(``kzoo.place``, ``kzoo.modules``, ``kzoo.adapt``: ``kzoo.transform``) and what happens
inside it (``kzoo.features``, ``kzoo.taps``, ``kzoo.activation_stats``), and one function
per step of the pipeline (``train``, ``evaluate``, ``export``); the subpackages ``data``,
``models``, ``transform``, ``training``, ``serving``, ``tuning`` and ``reproduce`` hold the rest.

The models (builders, layers, placement, the registry, ``load_model``) need Keras only,
so they run on every Keras backend; the pipeline (``data``, ``training``, ``serving``,
``tuning``, ``reproduce`` and ``train``/``evaluate``/``export``) needs TensorFlow and is
imported on first use (PEP 562 ``__getattr__``).
"""

import importlib as _importlib
import sys as _sys

from kzoo import checks, layers, models, placement, transform, whitening
from kzoo._version import __version__
from kzoo.models import (
    DFNMR,
    DFNMR1,
    DFNMR2,
    MLP,
    MLP12,
    AirbenchNet,
    CifarInceptionV2,
    CifarResNet,
    CifarResNeXt,
    ImageNetResNet,
    ImageNetResNeXt,
    ModelInfo,
    PlainNet,
    PlainNet38,
    PlainNet62,
    PlainNet84,
    ResidualStyle31,
    ResNet20,
    ResNet32,
    ResNet44,
    ResNet50,
    ResNet50V2,
    ResNet56,
    ResNet101,
    ResNet101V2,
    ResNet110,
    ResNet152,
    ResNet152V2,
    ResNet164,
    ResNet200,
    ResNet200V2,
    ResNet1001,
    ResNet1202,
    ResNeXt29_8x64d,
    ResNeXt29_16x64d,
    ResNeXt50_32x4d,
    ResNeXt101_32x4d,
    ResNeXt152_32x4d,
    SingleReLUNet,
    SmallNet,
    SmallNetBN,
    VGGStyle31,
    WideResNet,
    WideResNet16_8,
    WideResNet28_10,
    WideResNet40_4,
    WideResNet52_1,
    WideResNet52_10,
    create_model,
    forward_flops,
    list_models,
    model_info,
    trainable_params,
    training_flops,
)
from kzoo.placement import activation_layers
from kzoo.saving import load_model
from kzoo.transform import activation_stats, adapt, features, modules, place, taps

# The parts that need TensorFlow: a subpackage, or a function and the module it comes from.
_TF_SUBPACKAGES = ("data", "training", "serving", "tuning", "reproduce")
_TF_FUNCTIONS = {"train": "kzoo.training", "evaluate": "kzoo.training", "export": "kzoo.serving"}
# What each TensorFlow-side package is installed as.
_PIP_NAMES = {
    "tensorflow": "tensorflow",
    "tensorflow_datasets": "tensorflow-datasets",
    "tf2onnx": "tf2onnx",
    "keras_tuner": "keras-tuner",
    "tensorflow_serving": "tensorflow-serving-api",
}


def _import_tf_part(name, module):
    """Import TensorFlow, then ``module``, for ``kzoo.<name>``: TensorFlow first, so a part
    that imports it only when called (``kzoo.train``) is refused here too. A missing
    TensorFlow (or a package of its family) becomes an ImportError naming the part and the
    ``pip install`` it needs."""
    try:
        if _sys.modules.get("tensorflow") is None:
            _importlib.import_module("tensorflow")
        return _importlib.import_module(module)
    except ImportError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in _PIP_NAMES:
            raise
        raise ImportError(
            f"kzoo.{name} needs {missing}, which is not installed: pip install {_PIP_NAMES[missing]} "
            "(kzoo.models, the builders and kzoo.load_model need Keras only, on any backend)",
            name=missing,
        ) from error


def __getattr__(name):
    if name in _TF_SUBPACKAGES:
        value = _import_tf_part(name, f"kzoo.{name}")
    elif name in _TF_FUNCTIONS:
        value = getattr(_import_tf_part(name, _TF_FUNCTIONS[name]), name)
    else:
        raise AttributeError(f"module 'kzoo' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_TF_SUBPACKAGES))


__all__ = [
    "__version__",
    # subpackages
    "checks",
    "data",
    "layers",
    "models",
    "placement",
    "serving",
    "training",
    "transform",
    "tuning",
    "whitening",
    # builders and the registry (kzoo.models; tests/test_public_api.py checks the two lists agree)
    "AirbenchNet",
    "CifarResNet",
    "ResNet20",
    "ResNet32",
    "ResNet44",
    "ResNet56",
    "ResNet110",
    "ResNet164",
    "ResNet1001",
    "ResNet1202",
    "ImageNetResNet",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "ResNet200",
    "ResNet200V2",
    "CifarInceptionV2",
    "DFNMR",
    "DFNMR1",
    "DFNMR2",
    "MLP",
    "MLP12",
    "PlainNet",
    "PlainNet38",
    "PlainNet62",
    "PlainNet84",
    "ResidualStyle31",
    "SingleReLUNet",
    "SmallNet",
    "SmallNetBN",
    "VGGStyle31",
    "CifarResNeXt",
    "ImageNetResNeXt",
    "ResNeXt29_8x64d",
    "ResNeXt29_16x64d",
    "ResNeXt50_32x4d",
    "ResNeXt101_32x4d",
    "ResNeXt152_32x4d",
    "WideResNet",
    "WideResNet16_8",
    "WideResNet28_10",
    "WideResNet40_4",
    "WideResNet52_1",
    "WideResNet52_10",
    "load_model",
    "trainable_params",
    "training_flops",
    "ModelInfo",
    "create_model",
    "forward_flops",
    "list_models",
    "model_info",
    # placement on any model
    "place",
    "modules",
    "adapt",
    # seeing inside a model: stage outputs, taps at slots, per-slot statistics
    "features",
    "taps",
    "activation_stats",
    # the pipeline
    "activation_layers",
    "train",
    "evaluate",
    "export",
]
