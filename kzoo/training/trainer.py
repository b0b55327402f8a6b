"""``kzoo.train``: one ``model.fit`` run under a protocol, written to a run directory
that a re-run of the same command resumes.

The run directory holds ``config.json`` (everything resolved), ``epochs.csv`` (one row
per completed epoch), ``best.keras`` (best validation accuracy, when there is a
validation split) and ``last.keras``, ``metrics.json`` (test top-1/top-5, test cross-entropy, parameters,
time, images/s, hardware, versions, command) and ``curves.png``; ``backup/`` exists
while the run is unfinished. Every file is written atomically.
"""

import dataclasses
import json
import os
import shlex
import sys
import time

import keras

from kzoo import checks
from kzoo.models import common
from kzoo.training import callbacks as cb
from kzoo.training import distribute
from kzoo.training.protocols import get_protocol
from kzoo.training.report import hardware, plot_curves, versions

PRECISIONS = {
    "auto": "auto", None: "float32", False: "float32", "off": "float32", "float32": "float32",
    "float16": "mixed_float16", "mixed_float16": "mixed_float16", True: "mixed_float16",
    "bfloat16": "mixed_bfloat16", "mixed_bfloat16": "mixed_bfloat16",
}
# Fields whose change makes an existing run directory a different run.
RUN_IDENTITY = ("model", "model_kwargs", "dataset", "protocol", "seed", "precision")


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the trained model, one dict per epoch, the final metrics
    and the run directory."""

    model: object
    history: list
    metrics: dict
    run_dir: str


def resolve_precision(mixed_precision):
    """The dtype policy name for ``mixed_precision`` ("auto": mixed_float16 on GPU)."""
    try:
        policy = PRECISIONS[mixed_precision]
    except (KeyError, TypeError):
        raise ValueError(
            f"`mixed_precision` must be one of 'auto', 'float16', 'bfloat16', 'float32' "
            f"(or True/False), got {mixed_precision!r}"
        ) from None
    if policy == "auto":
        policy = "mixed_float16" if distribute.gpus() else "float32"
    return policy


def apply_weight_decay(model, weight_decay, decay_all=True):
    """Give the trainable variables an L2 regularizer of ``weight_decay / 2``: the
    gradient gains ``weight_decay * w`` before momentum, as in the papers' SGD."""
    if not weight_decay:
        return 0
    count = 0
    for variable in model.trainable_variables:
        if decay_all or variable.path.endswith("kernel"):
            variable.regularizer = keras.regularizers.L2(weight_decay / 2)
            count += 1
    return count


def check_model_fits(model, info, arg="model"):
    """Refuse a model that cannot be trained or scored on dataset ``info``: unbuilt, not
    one image input and one ``[batch, classes]`` output, or of another class count or
    image shape. Needs no data, so it runs before any is read."""
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError(f"`{arg}` is not built: build it (call it on a batch, or use a functional "
                         "model) before training or evaluating it")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"`{arg}` must have one image input and one output of class scores, it has "
                         f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)")
    if len(model.output_shape) != 2:
        raise ValueError(f"`{arg}` must output [batch, classes], its output has shape {model.output_shape} "
                         "(a per-pixel or unpooled output? build it with include_top=True)")
    classes = model.output_shape[-1]
    if classes != info.classes:
        raise ValueError(
            f"`{arg}`: the model predicts {classes} classes but dataset {info.name!r} has {info.classes}; "
            f"build it with classes={info.classes}"
        )
    expected = tuple(model.input_shape[1:])
    if len(expected) != 3 or any(e is not None and e != d for e, d in zip(expected, info.image_shape)):
        raise ValueError(
            f"`{arg}`: the model takes inputs of shape {expected} but dataset {info.name!r} has images of "
            f"shape {info.image_shape}"
        )


def _check_model_before_data(model, model_kwargs, info):
    """Everything about the model that can be refused before data is read (the builder's
    own arguments are checked by building it, also before any data)."""
    from kzoo.models.registry import model_info

    if isinstance(model, keras.Model):
        if model_kwargs:
            raise ValueError("`model_kwargs` only applies when `model` is a registered name")
        check_model_fits(model, info)
        return
    if not isinstance(model, str):
        raise TypeError(f"`model` must be a registered model name or a keras.Model, got {model!r}")
    model_info(model)
    if "classes" in model_kwargs and model_kwargs["classes"] != info.classes:
        raise ValueError(
            f"`model_kwargs`: classes={model_kwargs['classes']!r} disagrees with dataset {info.name!r}, "
            f"which has {info.classes} classes"
        )


def _build(model, model_kwargs, info):
    """The model to train; a registered one built with the dataset's classes and image
    shape, an error in ``model_kwargs`` reported as theirs."""
    from kzoo.models.registry import model_info

    if isinstance(model, keras.Model):
        return model
    kwargs = dict(model_kwargs)
    kwargs.setdefault("classes", info.classes)
    kwargs.setdefault("input_shape", info.image_shape)
    try:
        net = model_info(model).build(**kwargs)
    except (TypeError, ValueError) as err:
        if not model_kwargs:
            raise
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"`model_kwargs`={model_kwargs!r} for {model}: {err}") from None
    check_model_fits(net, info, "model_kwargs")
    return net


def _check_run_dir(run_dir, config):
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return
    old = checks.read_json(path, "the run's config", "delete the run directory to start over, "
                           "or choose another `out`")
    config = json.loads(json.dumps(config, default=str))  # as it would be read back
    changed = [k for k in RUN_IDENTITY if old.get(k) != config.get(k)]
    # A protocol field given as an override (epochs, lr, ...) changes the run too. Fields
    # only one side knows (added in a later kzoo) and the prose ones do not.
    old_fields, new_fields = old.get("protocol_fields") or {}, config["protocol_fields"]
    changed += [k for k in sorted(set(old_fields) & set(new_fields) - {"description", "source"})
                if old_fields[k] != new_fields[k]]
    if changed:
        raise ValueError(
            f"run directory {run_dir!r} holds a different run (it differs in {', '.join(changed)}); "
            "re-run the same command to resume it, or choose another `out`"
        )


def train(model, dataset=None, protocol="fashion_mnist_demo", *, epochs=None, batch_size=None,
          out=None, model_kwargs=None, mixed_precision="auto", xla=False, seed=0, data_dir=None,
          validation_size=None, verbose="auto", command=None, callbacks=None, test=True,
          test_curve=False, **overrides):
    """Train ``model`` (a registered name or a built keras.Model) on ``dataset`` under
    ``protocol`` (a name or a ``Protocol``) with ``model.fit``, and write the run
    directory ``out`` (default ``runs/{model}-{dataset}-{protocol}``).

    ``epochs``, ``batch_size``, ``validation_size`` and any other protocol field passed
    as a keyword override the protocol. ``model_kwargs`` go to the builder (e.g.
    ``{"erase": "last"}``) on top of the protocol's. ``mixed_precision``: "auto"
    (mixed_float16 on a GPU, float32 on CPU), "float16", "bfloat16" or "float32"; it
    applies to models built by name. ``xla`` compiles the step with XLA. All visible
    GPUs are used (MirroredStrategy); when ``TF_CONFIG`` describes several workers,
    each runs this same call and they train together (MultiWorkerMirroredStrategy,
    ``batch_size`` is the global batch, only the chief writes ``out``; see
    ``kzoo.training.distribute``). Re-running the same call resumes an interrupted
    run from its last completed epoch, optimizer state included; a finished run is
    returned as it is. Raises ``NonFiniteLossError`` when the loss becomes NaN/Inf.
    ``test=False`` leaves the test set alone (a search's trials); ``test_curve=True``
    also evaluates it after every epoch into ``epochs.csv`` (``test_accuracy``,
    ``test_cross_entropy``, ...) for per-epoch test curves; it is never used to select.
    """
    from kzoo import data

    proto = get_protocol(protocol, epochs=epochs, batch_size=batch_size,
                         validation_size=validation_size, **overrides)
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
        raise ValueError("`test_curve`=True evaluates the test set every epoch; it cannot be "
                         "combined with `test`=False")
    extra_callbacks = _check_callbacks(callbacks)
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"`model_kwargs` must be a dict, got {model_kwargs!r}")
    model_kwargs = {**proto.model_kwargs, **(model_kwargs or {})}
    precision = resolve_precision(mixed_precision)
    if isinstance(model, keras.Model):  # built already: it keeps its own policy
        precision = model.dtype_policy.name
    _check_model_before_data(model, model_kwargs, info)
    # At least one full batch per epoch, from the dataset's sizes (no data read yet).
    expected_steps = data.steps_per_epoch(dataset, proto.batch_size, proto.validation_size,
                                          proto.train_fraction)
    workers, task = distribute.cluster()
    multi_worker, writer = workers > 1, task == 0  # only the chief writes the run directory
    if multi_worker and not isinstance(model, str):
        raise ValueError("multi-worker training (TF_CONFIG) builds the model itself: pass `model` "
                         "as a registered name, not a built keras.Model")
    name = model if isinstance(model, str) else getattr(model, "name", "model")
    if out is not None:
        checks.path(out, "out")
    run_dir = checks.writable_dir(out or os.path.join("runs", f"{name}-{dataset}-{proto.name}"), "out")
    config = {
        "model": name, "model_kwargs": model_kwargs, "dataset": dataset, "protocol": proto.name,
        "protocol_fields": proto.to_dict(), "seed": seed, "precision": precision, "xla": xla,
        "data_dir": data_dir, "command": command or " ".join(shlex.quote(a) for a in sys.argv),
    }
    _check_run_dir(run_dir, config)
    metrics_path = os.path.join(run_dir, "metrics.json")
    if os.path.exists(metrics_path):
        return _finished(run_dir, metrics_path, verbose)

    strategy = distribute.get_strategy()  # first: a multi-worker cluster starts before other TF work
    keras.utils.set_random_seed(seed)
    previous_policy = keras.config.dtype_policy()
    try:  # the model before the data: a bad builder argument is refused before any is read
        if isinstance(model, str):
            keras.config.set_dtype_policy(precision)
        with strategy.scope():
            net = _build(model, model_kwargs, info)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    train_ds, val_ds, test_ds, info = data.make_datasets(
        dataset, batch_size=proto.batch_size, data_dir=data_dir,
        validation_size=proto.validation_size, seed=seed, augment=proto.augment,
        train_fraction=proto.train_fraction,
    )
    steps_per_epoch = _batches(train_ds, expected_steps)
    total_epochs = proto.total_epochs(steps_per_epoch)
    if multi_worker:
        train_ds, test_ds = distribute.shard_by_data(train_ds), distribute.shard_by_data(test_ds)
        val_ds = val_ds and distribute.shard_by_data(val_ds)

    try:
        if isinstance(model, str):
            keras.config.set_dtype_policy(precision)
        with strategy.scope():
            apply_weight_decay(net, proto.weight_decay, proto.decay_all)
            optimizer = keras.optimizers.SGD(
                learning_rate=proto.learning_rate(steps_per_epoch), momentum=proto.momentum,
                nesterov=proto.nesterov,
            )
            net.compile(
                optimizer=optimizer,
                loss=keras.losses.SparseCategoricalCrossentropy(),
                # "loss" includes the weight-decay penalty; "cross_entropy" is the data term
                # alone, what a saved model (which has no regularizers) evaluates to.
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                         keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
                         keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")],
                jit_compile=xla,
            )
    finally:
        keras.config.set_dtype_policy(previous_policy)

    if writer:
        os.makedirs(run_dir, exist_ok=True)
        cb.atomic_write_text(os.path.join(run_dir, "config.json"), json.dumps(config, indent=2, default=str))

    log = cb.EpochLog(os.path.join(run_dir, "epochs.csv"), write=writer)
    best_so_far = _best_val(log.read())
    sync = distribute.SyncMovingStatistics()
    callbacks = [
        cb.StopOnNonFiniteLoss(),
        sync,  # before anything evaluates or saves
        cb.Backup(os.path.join(run_dir, "backup"), writer=writer),
        *([cb.TestCurve(test_ds, callbacks=[sync])] if test_curve else []),
        log,
        *extra_callbacks,
    ]
    if writer:
        callbacks.append(cb.Checkpoints(run_dir, "val_accuracy" if val_ds is not None else None,
                                        best_so_far))
    else:
        verbose = 0  # the chief reports progress for the whole cluster
    with distribute.distributed_fit_fixes(net):
        # tf.data pipelines shuffle themselves (seeded); fit's own shuffle would only warn.
        net.fit(train_ds, validation_data=val_ds, epochs=total_epochs, callbacks=callbacks,
                verbose=verbose, shuffle=False)
        scores, eval_seconds = {}, None  # eval_seconds: the separate test pass, if one is made
        rows = log.epochs
        if test and test_curve and rows and rows[-1].get("test_accuracy") is not None:
            # The last epoch's test scores are this very model's: no second pass (its time
            # is in the epochs' seconds).
            scores = {k[len("test_"):]: v for k, v in rows[-1].items() if k.startswith("test_")}
        elif test:
            start = time.perf_counter()
            scores = net.evaluate(test_ds, return_dict=True, verbose=0 if verbose == 0 else 2,
                                  callbacks=[sync])
            eval_seconds = time.perf_counter() - start
    if not rows:  # never publish a run that trained on nothing
        raise RuntimeError(f"the run in {run_dir!r} completed no epoch; nothing was published")
    if test and "accuracy" not in scores:
        raise RuntimeError(f"the test set of {dataset!r} gave no scores; nothing was published")
    seconds = sum(float(r["seconds"]) for r in rows)
    images = steps_per_epoch * proto.batch_size * len(rows)
    metrics = {
        "model": name, "model_kwargs": model_kwargs, "dataset": dataset, "protocol": proto.name,
        "epochs": len(rows), "test_top1": _score(scores, "accuracy"), "test_top5": _score(scores, "top5"),
        "test_loss": _score(scores, "cross_entropy"),
        "best_val_top1": _best_val(rows),
        "params": common.trainable_params(net), "total_params": int(net.count_params()),
        "train_seconds": seconds, "eval_seconds": eval_seconds,
        "train_images_per_s": images / seconds if seconds else None,
        "precision": precision, "xla": xla, "seed": seed, "hardware": hardware(),
        "versions": versions(), "command": config["command"],
        "workers": workers,
    }
    if writer:
        plot_curves(rows, os.path.join(run_dir, "curves.png"), f"{name} on {dataset} ({proto.name})")
        cb.atomic_write_text(metrics_path, json.dumps(metrics, indent=2))
        _remove_backup(run_dir)
    return TrainResult(net, rows, metrics, run_dir)


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a list of keras.callbacks.Callback, got {callbacks!r}")
    bad = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if bad:
        raise TypeError(f"`callbacks` must hold keras.callbacks.Callback instances, got {bad[0]!r}")
    return list(callbacks)


def _score(scores, key):
    """A test score as a float, None when the test set was not evaluated."""
    return float(scores[key]) if key in scores else None


def _batches(ds, fallback):
    """Batches per epoch of a pipeline (its cardinality; ``fallback`` when unknown, as for
    a dataset read from files of unknown length)."""
    n = int(ds.cardinality())
    return n if n > 0 else fallback


def _remove_backup(run_dir):
    import shutil

    shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)


def _best_val(rows):
    """The best validation top-1 in the epoch log, or None without a validation split."""
    return max((r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None)


def _finished(run_dir, metrics_path, verbose):
    """A finished run as it stands: its last model and records, with no data read."""
    fix = "delete the run directory to train it again"
    metrics = checks.read_json(metrics_path, "the finished run's metrics", fix)
    last = checks.require_file(os.path.join(run_dir, "last.keras"), "the finished run's model")
    if verbose:
        print(f"kzoo: {run_dir} is complete; not training again (delete it to start over)")
    net = common.load_model(last)
    rows = cb.EpochLog(os.path.join(run_dir, "epochs.csv")).read()
    return TrainResult(net, rows, metrics, run_dir)
