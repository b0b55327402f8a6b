"""A training run planned: every argument of ``kzoo.train`` checked and resolved (the
protocol with its overrides, the dataset, the precision, the run directory and its
config), before any model is built, data read or file written."""

import dataclasses
import os
import shlex
import sys

import keras

from kzoo import checks
from kzoo.models import common
from kzoo.models.registry import model_info
from kzoo.training import activation_log as actlog
from kzoo.training import distribute
from kzoo.training.model import check_model_before_data
from kzoo.training.precision import resolve_precision
from kzoo.training.protocols import get_protocol
from kzoo.training.run_dir import RunDir
from kzoo.training.tta import check_tta


@dataclasses.dataclass
class RunPlan:
    """A run with every argument checked and resolved; nothing built, read or written yet."""

    proto: object
    dataset: str
    info: object
    name: str
    model_kwargs: dict
    precision: str
    by_name: bool  # the model is built here (the dtype policy applies to it)
    run: RunDir
    config: dict
    data_dir: str
    xla: bool
    seed: int
    test: bool
    test_curve: bool
    verbose: object
    callbacks: list
    expected_steps: int
    workers: int
    writer: bool  # only the chief writes the run directory


def plan_run(
    model,
    dataset,
    protocol,
    *,
    epochs,
    batch_size,
    out,
    model_kwargs,
    mixed_precision,
    xla,
    seed,
    data_dir,
    validation_size,
    verbose,
    command,
    callbacks,
    test,
    test_curve,
    activation_log,
    overrides,
):
    """Check and resolve every argument of ``train`` (no data read, nothing written)."""
    from kzoo import data
    from kzoo.data.pipelines import check_alternating_flip
    from kzoo.data.splits import checked_validation_size

    proto = get_protocol(
        protocol, epochs=epochs, batch_size=batch_size, validation_size=validation_size, **overrides
    )
    dataset = dataset or proto.dataset
    info = data.dataset_info(dataset)
    common.check_bool(xla, "xla")
    checks.seed(seed)
    common.check_bool(test, "test")
    common.check_bool(test_curve, "test_curve")
    verbose = checks.verbose(verbose)
    if data_dir is not None:  # a location the user names must be there (kzoo.data reads it alone)
        data_dir = checks.existing_dir(data_dir, "data_dir")
    if command is not None and not isinstance(command, str):
        raise TypeError(f"`command` must be a string or None, got {command!r}")
    if test_curve and not test:
        raise ValueError(
            "`test_curve`=True evaluates the test set every epoch; it cannot be combined with `test`=False"
        )
    extra_callbacks = check_callbacks(callbacks)
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"`model_kwargs` must be a dict, got {model_kwargs!r}")
    model_kwargs = {**proto.model_kwargs, **(model_kwargs or {})}
    precision = resolve_precision(mixed_precision)
    if isinstance(model, keras.Model):  # built already: it computes as its layers do
        precision = model_precision(model, mixed_precision, precision)
    check_model_before_data(model, model_kwargs, info)
    check_tta(proto.tta, info)
    if proto.tta is not None and not test and checked_validation_size(info, proto.validation_size) == 0:
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
    if workers > 1 and not isinstance(model, str):
        raise ValueError(
            "multi-worker training (TF_CONFIG) builds the model itself: pass `model` "
            "as a registered name, not a built keras.Model"
        )
    name = model if isinstance(model, str) else getattr(model, "name", "model")
    slug = model_info(model).slug if isinstance(model, str) else name
    if out is not None:
        checks.path(out, "out")
    run = RunDir(checks.writable_dir(out or os.path.join("runs", f"{slug}-{dataset}-{proto.name}"), "out"))
    config = {
        "model": name,
        "model_kwargs": model_kwargs,
        "dataset": dataset,
        "protocol": proto.name,
        "protocol_fields": proto.to_dict(),
        "seed": seed,
        "precision": precision,
        "xla": xla,
        "data_dir": data_dir,
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
    }
    run.check_same_run(config)
    extra_callbacks += actlog.for_run(
        activation_log, run, proto, dataset, data_dir, model, model_kwargs, info, task == 0
    )
    return RunPlan(
        proto=proto,
        dataset=dataset,
        info=info,
        name=name,
        model_kwargs=model_kwargs,
        precision=precision,
        by_name=isinstance(model, str),
        run=run,
        config=config,
        data_dir=data_dir,
        xla=xla,
        seed=seed,
        test=test,
        test_curve=test_curve,
        verbose=verbose,
        callbacks=extra_callbacks,
        expected_steps=expected_steps,
        workers=workers,
        writer=task == 0,
    )


def model_precision(model, asked, resolved):
    """A built model's precision, read from its layers (a loaded mixed-precision model's
    own policy says float32). A precision asked for that it does not have would do nothing."""
    dtype = common.compute_dtype(model)
    own = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}.get(dtype, "float32")
    if asked != "auto" and resolved != own:
        raise ValueError(
            f"`mixed_precision`={asked!r} does nothing for a built model, which computes in {dtype} "
            f"({own}): build it under keras.config.set_dtype_policy({resolved!r}), or leave "
            "`mixed_precision` at 'auto'"
        )
    return own


def check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a list of keras.callbacks.Callback, got {callbacks!r}")
    bad = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if bad:
        raise TypeError(f"`callbacks` must hold keras.callbacks.Callback instances, got {bad[0]!r}")
    return list(callbacks)
