"""Training: the papers' protocols, their schedules and a fit-based trainer."""

from kzoo.training.callbacks import NonFiniteLossError
from kzoo.training.compile import apply_weight_decay
from kzoo.training.evaluate import evaluate
from kzoo.training.protocols import Protocol, get_protocol, list_protocols, register_protocol
from kzoo.training.run_dir import RunDir
from kzoo.training.schedules import StepSchedule, WarmupCosine
from kzoo.training.trainer import TrainResult, train

__all__ = [
    "NonFiniteLossError",
    "Protocol",
    "RunDir",
    "StepSchedule",
    "TrainResult",
    "WarmupCosine",
    "apply_weight_decay",
    "evaluate",
    "get_protocol",
    "list_protocols",
    "register_protocol",
    "train",
]
