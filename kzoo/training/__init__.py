"""Training: the papers' protocols, their schedules and a fit-based trainer.

Names load on first use (PEP 562), so that the Keras-only parts import without
TensorFlow: ``schedules`` and ``losses`` (what a run's ``.keras`` file names:
``kzoo.load_model`` registers them on any backend), ``compile``'s
``apply_weight_decay`` (benchmarks/gpu_jax.py trains with them on a JAX machine) and
``report``'s ``markdown_table`` (the tables of results that applications/ write).
"""

import importlib as _importlib

_WHERE = {
    "NonFiniteLossError": "callbacks",
    "apply_weight_decay": "compile",
    "evaluate": "evaluation",
    "Protocol": "protocols",
    "get_protocol": "protocols",
    "list_protocols": "protocols",
    "register_protocol": "protocols",
    "RunConfig": "run_config",
    "RunDir": "run_dir",
    "markdown_table": "report",
    "OneCycle": "schedules",
    "StepSchedule": "schedules",
    "WarmupCosine": "schedules",
    "SparseLabelSmoothingCrossentropy": "losses",
    "TrainResult": "trainer",
    "train": "trainer",
    "train_from_config": "trainer",
}


_KERAS_ONLY = ("schedules", "losses", "compile", "report")


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'kzoo.training' has no attribute {name!r}")
    module = f"kzoo.training.{_WHERE[name]}"
    if _WHERE[name] in _KERAS_ONLY:
        value = getattr(_importlib.import_module(module), name)
    else:  # TensorFlow first, refused with kzoo's pip hint when it is missing
        from kzoo import _import_tf_part

        value = getattr(_import_tf_part("training", module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = sorted(_WHERE)
