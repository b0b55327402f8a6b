"""Learning-rate schedules the papers use (and the one-cycle of fast schedules), as
serializable keras schedules driven by the optimizer's iteration count, so a resumed run
continues the schedule exactly.

Why not keras' own: each differs from its nearest keras schedule by what the papers' code
does, stated in its docstring (``StepSchedule`` against ``PiecewiseConstantDecay``,
``WarmupCosine`` against ``CosineDecay(warmup_steps=...)``); keras has no one-cycle.
tests/test_protocols.py checks where they agree with keras' and where they do not."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant rate: ``values[i]`` until step ``boundaries[i]`` (exclusive),
    ``values[-1]`` after; the first ``warmup_steps`` steps use ``warmup_rate`` (He et
    al.'s 0.01 for ResNet-110/1202).

    keras' ``PiecewiseConstantDecay(boundaries, values)`` keeps ``values[i]`` up to and
    *including* step ``boundaries[i]``; here the new rate starts *at* the boundary, as
    torch's ``MultiStepLR`` (the papers' code) decays at the start of the milestone epoch.
    keras has no constant warm-up rate."""

    def __init__(self, boundaries, values, warmup_steps=0, warmup_rate=None):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"`values` needs one more entry than `boundaries`, got {values} and {boundaries}"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"`boundaries` must increase, got {boundaries}")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]
        self.warmup_steps = int(warmup_steps)
        self.warmup_rate = None if warmup_rate is None else float(warmup_rate)

    def __call__(self, step):
        step = ops.cast(step, "int64")
        rate = ops.convert_to_tensor(self.values[-1], "float32")
        for boundary, value in reversed(list(zip(self.boundaries, self.values))):
            rate = ops.where(step < boundary, value, rate)
        if self.warmup_steps:
            rate = ops.where(step < self.warmup_steps, self.warmup_rate, rate)
        return rate

    def get_config(self):
        return {
            "boundaries": self.boundaries,
            "values": self.values,
            "warmup_steps": self.warmup_steps,
            "warmup_rate": self.warmup_rate,
        }


@keras.saving.register_keras_serializable(package="kzoo")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 over ``warmup_steps``, then cosine decay to 0 at
    ``total_steps``: kzoo's short CPU protocols, where step decays waste epochs.

    Without a warm-up it gives keras' ``CosineDecay(peak_rate, total_steps)``'s rates.
    keras' warm-up (``CosineDecay(0.0, total_steps - warmup_steps, warmup_target=peak_rate,
    warmup_steps=warmup_steps)``) starts at rate 0, a step that trains nothing; here step
    ``t`` of the warm-up uses ``peak_rate * (t + 1) / warmup_steps``, so the first step
    trains and the last one reaches the peak; the cosine that follows is keras'."""

    def __init__(self, peak_rate, total_steps, warmup_steps=0):
        self.peak_rate = float(peak_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = max(self.warmup_steps, 1)
        decay = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay, 0.0, 1.0)
        cosine = 0.5 * self.peak_rate * (1.0 + ops.cos(math.pi * progress))
        if not self.warmup_steps:
            return cosine
        return ops.where(step < self.warmup_steps, self.peak_rate * (step + 1.0) / warm, cosine)

    def get_config(self):
        return {
            "peak_rate": self.peak_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="kzoo")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Triangular one-cycle rate (Smith & Topin 2017; airbench's schedule): linear from
    ``start_rate`` to ``peak_rate`` over ``warmup_steps``, then linear to 0 at
    ``total_steps``. A short run spends no steps at a rate that has already decayed."""

    def __init__(self, peak_rate, total_steps, warmup_steps=0, start_rate=0.0):
        self.peak_rate = float(peak_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.start_rate = float(start_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = max(self.warmup_steps, 1)
        decay = max(self.total_steps - self.warmup_steps, 1)
        up = self.start_rate + (self.peak_rate - self.start_rate) * (step + 1.0) / warm
        down = self.peak_rate * ops.clip(1.0 - (step - self.warmup_steps) / decay, 0.0, 1.0)
        if not self.warmup_steps:
            return down
        return ops.where(step < self.warmup_steps, ops.minimum(up, self.peak_rate), down)

    def get_config(self):
        return {
            "peak_rate": self.peak_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "start_rate": self.start_rate,
        }
