"""A training run planned: its ``RunConfig`` (each option checked alone) checked against
its dataset, its model, the cluster and its run directory, before any model is built,
data read or file written."""

import dataclasses
import os

from kzoo import checks
from kzoo.models.registry import model_info
from kzoo.training import activation_log as actlog
from kzoo.training import distribute
from kzoo.training.model import check_model_before_data
from kzoo.training.run_config import RunConfig
from kzoo.training.run_dir import RunDir
from kzoo.training.tta import check_tta


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run with everything checked and resolved; nothing built, read or written yet."""

    config: RunConfig
    info: object  # the dataset's
    run: RunDir
    callbacks: tuple  # the caller's, then the activation log's
    expected_steps: int
    workers: int
    writer: bool  # only the chief writes the run directory

    @property
    def proto(self):
        return self.config.protocol


def plan_run(config):
    """Check ``config`` against everything but the data (no data read, nothing written)."""
    from kzoo import data
    from kzoo.data.pipelines import check_alternating_flip
    from kzoo.data.splits import checked_validation_size

    if not isinstance(config, RunConfig):
        raise TypeError(f"`config` must be a kzoo.training.RunConfig, got {config!r}")
    proto, dataset, info = config.protocol, config.dataset, config.dataset_info
    check_model_before_data(config.model, config.model_kwargs, info)
    check_tta(proto.tta, info)
    if (
        proto.tta is not None
        and not config.test
        and checked_validation_size(info, proto.validation_size) == 0
    ):
        raise ValueError(
            f"`tta`={proto.tta!r} averages the test and final validation scores over views; with "
            "`test`=False and validation_size=0 there are none"
        )
    # At least one full batch per epoch, from the dataset's sizes (no data read yet).
    expected_steps = data.steps_per_epoch(
        dataset, proto.batch_size, proto.validation_size, proto.train_fraction
    )
    proto.check_length(expected_steps)
    check_alternating_flip(proto.alternating_flip, proto.augment, info)
    workers, task = distribute.cluster()
    if workers > 1 and proto.alternating_flip:
        raise ValueError(
            "`alternating_flip` counts epochs in this process's input pipeline; a multi-worker "
            "run shards that pipeline: train without it, or on one worker"
        )
    if workers > 1 and not config.by_name:
        raise ValueError(
            "multi-worker training (TF_CONFIG) builds the model itself: pass `model` "
            "as a registered name, not a built keras.Model"
        )
    slug = model_info(config.model).slug if config.by_name else config.model_name
    run = RunDir(
        checks.writable_dir(config.out or os.path.join("runs", f"{slug}-{dataset}-{proto.name}"), "out")
    )
    run.check_same_run(config.get_config())
    activations = actlog.for_run(
        config.activation_log,
        run,
        proto,
        dataset,
        config.data_dir,
        config.model,
        config.model_kwargs,
        info,
        task == 0,
    )
    return RunPlan(
        config=config,
        info=info,
        run=run,
        callbacks=(*config.callbacks, *activations),
        expected_steps=expected_steps,
        workers=workers,
        writer=task == 0,
    )
