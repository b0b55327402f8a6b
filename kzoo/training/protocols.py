"""The papers' training recipes as named, inspectable data.

A ``Protocol`` says what to train on and how: optimizer, schedule, length, batch,
weight decay, augmentation, validation carve-out, the fraction of the training data
used (``train_fraction``: the EraseReLU paper's ImageNet-10/20/30%) and model options.
Every field can be overridden (``get_protocol("wrn_cifar", epochs=10)``); nothing else in
kzoo hard-codes a recipe.

Weight decay follows the papers' SGD (Torch/Caffe): the gradient of every weight gets
``weight_decay * w`` added *before* momentum. kzoo obtains exactly that by giving each
trainable variable an L2 regularizer of ``weight_decay / 2`` (the loss gains
``weight_decay / 2 * ||w||^2``), not with keras' decoupled ``weight_decay`` argument,
which bypasses momentum. As in fb.resnet.torch, every weight decays (BN's scale and
offset and FReLU's bias included) unless ``decay_all=False`` (kernels only).

The fast-training tools are fields too, all off by default so the papers' recipes are
unchanged: ``label_smoothing``, an exponential moving average of the weights
(``ema_decay``, updated every ``ema_every`` steps; kzoo.training.ema), random erasing
(``random_erasing``: the probability an image has a rectangle erased), airbench's
alternating flip (``alternating_flip``: each image flipped every other epoch;
kzoo.data.pipeline) and lookahead (``lookahead``: the weights pulled toward a slow copy
every 5 steps; kzoo.training.lookahead), test-time augmentation of the test scores
(``tta``: "flip", "flip_translate" or "multicrop"; kzoo.training.tta) and the one-cycle
schedule (``schedule="onecycle"``).
"""

import dataclasses
import difflib
import math

from kzoo import checks
from kzoo.training.protocol_fields import check_explicit, validate, with_resets
from kzoo.training.schedules import OneCycle, StepSchedule, WarmupCosine


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A training recipe. Length is ``epochs``, or ``steps`` (iterations) when the paper
    counts iterations; ``milestones`` are in ``milestone_unit`` (epochs, steps, or
    fractions of the run), the rate is multiplied by ``gamma`` at each."""

    name: str
    description: str
    source: str
    dataset: str
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    decay_all: bool = True
    schedule: str = "step"
    milestones: tuple = ()
    milestone_unit: str = "epoch"
    gamma: float = 0.1
    warmup_steps: int = 0
    warmup_lr: float | None = None
    augment: bool = True
    validation_size: int | None = None
    train_fraction: float | None = None
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    label_smoothing: float = 0.0
    ema_decay: float | None = None
    ema_every: int = 1
    random_erasing: float = 0.0
    alternating_flip: bool = False
    lookahead: bool = False
    tta: str | None = None

    def __post_init__(self):
        validate(self)
        for field in (
            "lr",
            "momentum",
            "weight_decay",
            "gamma",
            "label_smoothing",
            "random_erasing",
        ):  # keras' SGD wants floats
            object.__setattr__(self, field, float(getattr(self, field)))

    def total_epochs(self, steps_per_epoch):
        """Epochs to run: ``epochs``, or enough epochs to reach ``steps`` iterations."""
        if self.epochs is not None:
            return self.epochs
        return math.ceil(self.steps / steps_per_epoch)

    def milestone_steps(self, steps_per_epoch):
        """The milestones as optimizer iterations."""
        total = self.total_epochs(steps_per_epoch) * steps_per_epoch
        if self.milestone_unit == "step":
            return [int(m) for m in self.milestones]
        if self.milestone_unit == "fraction":
            return [int(round(m * total)) for m in self.milestones]
        return [int(m) * steps_per_epoch for m in self.milestones]

    def learning_rate(self, steps_per_epoch):
        """The keras schedule for this protocol, given the data's steps per epoch."""
        total = self.total_epochs(steps_per_epoch) * steps_per_epoch
        if self.schedule == "cosine":
            return WarmupCosine(self.lr, total, self.warmup_steps)
        if self.schedule == "onecycle":
            return OneCycle(self.lr, total, self.warmup_steps, self.warmup_lr or 0.0)
        boundaries = self.milestone_steps(steps_per_epoch)
        values = [self.lr * self.gamma**i for i in range(len(boundaries) + 1)]
        return StepSchedule(boundaries, values, self.warmup_steps, self.warmup_lr)

    def check_length(self, steps_per_epoch):
        """Refuse a warm-up or an average that this run's length leaves without effect: a
        warm-up that never ends, an average (``ema_every``) that is never updated."""
        total = self.total_epochs(steps_per_epoch) * steps_per_epoch
        run = f"the whole run is {total} steps ({steps_per_epoch} per epoch)"
        if self.warmup_steps >= total:
            raise ValueError(
                f"`warmup_steps`={self.warmup_steps} is not shorter than the run: {run}; "
                "shorten the warm-up or train longer"
            )
        if self.ema_decay is not None and self.ema_every > total:
            raise ValueError(
                f"`ema_every`={self.ema_every} would never update the weight average: {run}; "
                "lower `ema_every` or train longer"
            )

    def to_dict(self):
        return dataclasses.asdict(self)


_PROTOCOLS = {}


def register_protocol(protocol):
    if protocol.name in _PROTOCOLS:
        raise ValueError(f"A protocol named {protocol.name!r} is already registered")
    _PROTOCOLS[protocol.name] = protocol
    return protocol


def list_protocols():
    return sorted(_PROTOCOLS)


def get_protocol(protocol, **overrides):
    """A registered protocol (by name) or a ``Protocol``, with fields overridden."""
    if isinstance(protocol, Protocol):
        base = protocol
    elif isinstance(protocol, str):
        if protocol not in _PROTOCOLS:
            close = difflib.get_close_matches(protocol, list(_PROTOCOLS), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"Unknown `protocol`={protocol!r}.{hint} Known: {', '.join(list_protocols())}.")
        base = _PROTOCOLS[protocol]
    else:
        raise TypeError(f"`protocol` must be a protocol name or a kzoo Protocol, got {protocol!r}")
    fields = {f.name for f in dataclasses.fields(Protocol)}
    if set(overrides) - fields:
        checks.unknown_keys(sorted(overrides), sorted(fields), "protocol", "protocol field(s)")
    overrides = {
        k: v for k, v in overrides.items() if v is not None or k in ("warmup_lr", "ema_decay", "tta")
    }
    if "epochs" in overrides:
        overrides.setdefault("steps", None)
    elif "steps" in overrides:
        overrides.setdefault("epochs", None)
    overrides = with_resets(base, overrides)
    protocol = dataclasses.replace(base, **overrides)
    check_explicit(protocol, overrides)
    return protocol


HE = "He et al. 2016, Deep Residual Learning (Sec. 4.2)"
FB = "fb.resnet.torch (He et al. 2016b; FReLU and the proportional module trained this way)"
for _p in (
    Protocol(
        "he_cifar",
        "He et al.'s CIFAR recipe: 64k iterations, /10 at 32k and 48k, 45k/5k split",
        HE,
        "cifar10",
        steps=64000,
        milestones=(32000, 48000),
        milestone_unit="step",
        validation_size=5000,
    ),
    Protocol(
        "he_cifar_warmup",
        "he_cifar with 400 warm-up iterations at 0.01 (ResNet-110/1202)",
        HE,
        "cifar10",
        steps=64000,
        milestones=(32000, 48000),
        milestone_unit="step",
        warmup_steps=400,
        warmup_lr=0.01,
        validation_size=5000,
    ),
    Protocol(
        "fb_resnet_cifar",
        "fb.resnet.torch CIFAR: 164 epochs, /10 at 81 and 122, Nesterov",
        FB,
        "cifar10",
        epochs=164,
        milestones=(81, 122),
        nesterov=True,
        validation_size=0,
    ),
    Protocol(
        "wrn_cifar",
        "WRN CIFAR: 200 epochs, x0.2 at 60/120/160, wd 5e-4, Nesterov",
        "Zagoruyko & Komodakis 2016",
        "cifar10",
        epochs=200,
        milestones=(60, 120, 160),
        gamma=0.2,
        weight_decay=5e-4,
        nesterov=True,
        validation_size=0,
    ),
    Protocol(
        "wrn_svhn",
        "WRN SVHN: train+extra, 160 epochs, lr 0.01 x0.1 at 80/120, dropout 0.4, no augmentation",
        "Zagoruyko & Komodakis 2016",
        "svhn_extra",
        epochs=160,
        lr=0.01,
        milestones=(80, 120),
        weight_decay=5e-4,
        nesterov=True,
        augment=False,
        validation_size=0,
        model_kwargs={"dropout_rate": 0.4},
    ),
    Protocol(
        "resnext_cifar",
        "ResNeXt CIFAR: 300 epochs, /10 at 150 and 225, wd 5e-4",
        "Xie et al. 2017",
        "cifar10",
        epochs=300,
        milestones=(150, 225),
        weight_decay=5e-4,
        validation_size=0,
    ),
    Protocol(
        "dfn_mr_cifar",
        "DFN-MR: 400 epochs, batch 64, Nesterov, /10 at 1/2, 3/4, 7/8",
        "Zhao et al. 2016 (zlmzju/fusenet)",
        "cifar100",
        epochs=400,
        batch_size=64,
        milestones=(0.5, 0.75, 0.875),
        milestone_unit="fraction",
        nesterov=True,
        validation_size=0,
    ),
    Protocol(
        "smallnet_frelu",
        "FReLU SmallNet without BN: fb.resnet.torch schedule, base rate 0.01",
        "Qiu & Cai 2018 (fb.resnet.torch defaults)",
        "cifar100",
        epochs=164,
        lr=0.01,
        milestones=(81, 122),
        nesterov=True,
        validation_size=0,
    ),
    Protocol(
        "smallnet_frelu_bn",
        "FReLU SmallNet with BN: fb.resnet.torch schedule, base rate 0.1",
        "Qiu & Cai 2018 (fb.resnet.torch defaults)",
        "cifar100",
        epochs=164,
        milestones=(81, 122),
        nesterov=True,
        validation_size=0,
    ),
    Protocol(
        "stochastic_depth_cifar",
        "Stochastic depth: 500 epochs, /10 at 250 and 375, p_L 0.5",
        "Huang et al. 2016 (EraseReLU trains ER+SDR this way)",
        "cifar10",
        epochs=500,
        milestones=(250, 375),
        nesterov=True,
        validation_size=0,
        model_kwargs={"stochastic_depth": 0.5},
    ),
    Protocol(
        "imagenet",
        "ImageNet (EraseReLU): 120 epochs, lr 0.1 /10 every 30, batch 256",
        "Dong et al. 2018 / He et al. 2016",
        "imagenet2012",
        epochs=120,
        batch_size=256,
        milestones=(30, 60, 90),
        validation_size=0,
    ),
    Protocol(
        "fashion_mnist_demo",
        "CPU demo: 4 epochs, warm-up + cosine, Nesterov",
        "kzoo",
        "fashion_mnist",
        epochs=4,
        lr=0.1,
        schedule="cosine",
        warmup_steps=200,
        nesterov=True,
        weight_decay=5e-4,
        validation_size=5000,
    ),
    Protocol(
        "fashion_mnist_cpu",
        "CPU reproduction runs: 15 epochs, warm-up + cosine, Nesterov",
        "kzoo",
        "fashion_mnist",
        epochs=15,
        lr=0.1,
        schedule="cosine",
        warmup_steps=400,
        nesterov=True,
        weight_decay=5e-4,
        validation_size=5000,
    ),
):
    register_protocol(_p)
