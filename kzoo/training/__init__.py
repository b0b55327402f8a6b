"""Training: the papers' protocols, their schedules and a fit-based trainer."""

from kzoo.training.callbacks import NonFiniteLossError  # noqa: F401
from kzoo.training.protocols import Protocol, get_protocol, list_protocols, register_protocol  # noqa: F401
from kzoo.training.schedules import StepSchedule, WarmupCosine  # noqa: F401
from kzoo.training.trainer import TrainResult, apply_weight_decay, train  # noqa: F401
from kzoo.training.evaluate import evaluate  # noqa: F401,E402
