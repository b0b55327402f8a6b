"""``kzoo.train``: one ``model.fit`` run under a protocol, written to a run directory
that a re-run of the same command resumes.

The run directory holds ``config.json`` (everything resolved), ``epochs.csv`` (one row
per completed epoch), ``best.keras`` (best validation accuracy, when there is a
validation split) and ``last.keras``, ``metrics.json`` (test top-1/top-5, test cross-entropy, parameters,
time, images/s, hardware, versions, command) and ``curves.png``; ``backup/`` exists
while the run is unfinished. Every file is written atomically.
"""

import contextlib
import dataclasses
import math
import os
import shutil
import time

import keras

from kzoo import checks, whitening
from kzoo.models import common
from kzoo.saving import load_model
from kzoo.training import callbacks as cb
from kzoo.training import distribute
from kzoo.training.compile import compile_for_protocol, compile_for_scoring
from kzoo.training.ema import WeightEMA
from kzoo.training.lookahead import Lookahead
from kzoo.training.machine import hardware, versions
from kzoo.training.model import build_model
from kzoo.training.precision import dtype_policy
from kzoo.training.report import plot_curves
from kzoo.training.run_config import RunConfig
from kzoo.training.run_plan import plan_run
from kzoo.training.tta import tta_model


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the trained model, one dict per epoch, the final metrics
    and the run directory."""

    model: object
    history: list
    metrics: dict
    run_dir: str


def train(
    model,
    dataset=None,
    protocol="fashion_mnist_demo",
    *,
    epochs=None,
    batch_size=None,
    out=None,
    model_kwargs=None,
    mixed_precision="auto",
    xla=False,
    seed=0,
    data_dir=None,
    validation_size=None,
    verbose="auto",
    command=None,
    callbacks=None,
    test=True,
    test_curve=False,
    activation_log=False,
    **overrides,
):
    """Train ``model`` (a registered name or a built keras.Model) on ``dataset`` under
    ``protocol`` (a name or a ``Protocol``) with ``model.fit``, and write the run
    directory ``out`` (default ``runs/{model}-{dataset}-{protocol}``).

    ``epochs``, ``batch_size``, ``validation_size`` and any other protocol field passed
    as a keyword override the protocol. ``model_kwargs`` go to the builder (e.g.
    ``{"erase": "last"}``) on top of the protocol's. ``mixed_precision``: "auto"
    (mixed_float16 on a GPU, mixed_bfloat16 on a CPU with AMX or AVX512_BF16, else float32), "float16",
    "bfloat16" or "float32"; it
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
    ``activation_log=N`` (True: 256) measures each activation slot's zero fraction and
    FReLU's biases on ``N`` validation images after every epoch, into ``activations.csv``
    and ``activations.png`` (``kzoo.training.activation_log``).

    The protocol's training tools apply as its fields say: ``label_smoothing``,
    ``random_erasing``, ``alternating_flip``, ``schedule="onecycle"``; ``lookahead`` pulls the
    weights toward a slow copy every 5 steps and ends on it; with ``ema_decay`` the run keeps an
    average of the weights and their BN statistics, which validation, the test curve,
    the test scores and the saved models use (the backup keeps both, so a resumed run
    continues the average); with ``tta`` the test scores (curve and final) average the
    class probabilities over flipped (and shifted) views, recorded as ``tta`` in
    ``metrics.json``.

    The arguments become a ``RunConfig`` (each checked once; ``config.json`` is its
    ``get_config()``), which ``train_from_config`` trains.
    """
    return train_from_config(
        RunConfig.create(
            model,
            dataset,
            protocol,
            epochs=epochs,
            batch_size=batch_size,
            validation_size=validation_size,
            model_kwargs=model_kwargs,
            mixed_precision=mixed_precision,
            xla=xla,
            seed=seed,
            data_dir=data_dir,
            command=command,
            out=out,
            verbose=verbose,
            test=test,
            test_curve=test_curve,
            activation_log=activation_log,
            callbacks=callbacks,
            **overrides,
        )
    )


def train_from_config(config):
    """``train`` for a ``RunConfig`` (what a search's trials, ``kzoo train`` and a study's
    jobs build): checked against its dataset, model and run directory, then trained."""
    plan = plan_run(config)
    if plan.run.is_finished():
        return _finished(plan.run, config.verbose)
    strategy = distribute.get_strategy()  # first: a multi-worker cluster starts before other TF work
    keras.utils.set_random_seed(config.seed)
    with _policy(plan), strategy.scope():  # the model before the data: a bad builder argument
        net = build_model(config.model, config.model_kwargs, plan.info)  # is refused before any is read
    # The backup a resumed run starts from is known before the data: the training data
    # then starts at that epoch, as it was in the run that was interrupted.
    backup = cb.Backup(plan.run.backup, writer=plan.writer, restore=False)
    start = backup.latest()
    train_ds, val_ds, test_ds, steps_per_epoch = _datasets(plan, start[1])
    with _policy(plan), strategy.scope():
        compile_for_protocol(net, plan.proto, steps_per_epoch, config.xla)
    rows, scores, eval_seconds = _fit(net, plan, backup, start[0], train_ds, val_ds, test_ds, steps_per_epoch)
    metrics = _metrics(net, plan, rows, scores, eval_seconds, steps_per_epoch)
    if plan.writer:
        _publish(plan, rows, metrics)
    return TrainResult(net, rows, metrics, plan.run.path)


def _policy(plan):
    """The run's dtype policy while a model built by name is built and compiled (a model
    passed in was built in its own)."""
    return dtype_policy(plan.config.precision) if plan.config.by_name else contextlib.nullcontext()


def _datasets(plan, first_epoch):
    """The train/validation/test pipelines and the batches per epoch (sharded by data
    across workers in a multi-worker run); the training one's next epoch is
    ``first_epoch``, shuffled and augmented as in a run that was not interrupted."""
    from kzoo import data

    proto = plan.proto
    train_ds, val_ds, test_ds, _ = data.make_datasets(
        plan.config.dataset,
        batch_size=proto.batch_size,
        data_dir=plan.config.data_dir,
        validation_size=proto.validation_size,
        seed=plan.config.seed,
        augment=proto.augment,
        train_fraction=proto.train_fraction,
        random_erasing=proto.random_erasing,
        alternating_flip=proto.alternating_flip,
    )
    steps_per_epoch = _batches(train_ds, plan.expected_steps)
    train_ds = data.from_epoch(train_ds, first_epoch)  # endless: fit takes steps_per_epoch
    if plan.workers > 1:
        train_ds, test_ds = distribute.shard_by_data(train_ds), distribute.shard_by_data(test_ds)
        val_ds = val_ds and distribute.shard_by_data(val_ds)
    return train_ds, val_ds, test_ds, steps_per_epoch


def _whitening_images(plan):
    """The first ``WHITENING_IMAGES`` images of the run's training split (its
    ``train_fraction`` of it), as evaluation sees them: normalised, not augmented."""
    from kzoo import data

    ds = data.load(
        plan.config.dataset,
        "train",
        data_dir=plan.config.data_dir,
        validation_size=plan.proto.validation_size,
    )
    n = whitening.WHITENING_IMAGES
    if plan.proto.train_fraction is not None and int(ds.cardinality()) > 0:
        n = min(n, max(1, math.ceil(plan.proto.train_fraction * int(ds.cardinality()))))
    return next(iter(data.pipeline(ds.take(n), plan.config.dataset, training=False, batch_size=n)))[0].numpy()


def _fit(net, plan, backup, start, train_ds, val_ds, test_ds, steps_per_epoch):
    """``model.fit`` with the run directory's callbacks (resuming from its backup), then
    the test scores: ``(epoch rows, test scores, seconds of the separate test pass)``."""
    run = plan.run
    if plan.writer:
        os.makedirs(run.path, exist_ok=True)
        run.remove_stale()  # what a killed run left half-written
        run.write_json(run.config, plan.config.get_config())
    log = cb.EpochLog(run.epochs, write=plan.writer)
    sync = distribute.SyncMovingStatistics()
    ema = WeightEMA(plan.proto.ema_decay, plan.proto.ema_every) if plan.proto.ema_decay else None
    averaged = [ema] if ema else []  # swaps the average in for every evaluation
    total_steps = plan.proto.total_epochs(steps_per_epoch) * steps_per_epoch
    pulled = [Lookahead(total_steps)] if plan.proto.lookahead else []  # before the average sees the weights
    scorer = _scorer(net, plan.proto.tta)
    # The backup is restored first (the one the data starts after: ``start``) and written
    # last: everything an epoch records (test scores, log row, models) is on disk before
    # the backup that marks the epoch done.
    backup.extra_state = pulled + averaged
    monitor = "val_accuracy" if val_ds is not None else None
    callbacks = [
        cb.StopOnNonFiniteLoss(),
        backup.restorer(start),
        *(
            [whitening.AdaptWhitening(lambda: _whitening_images(plan))]
            if whitening.whitening_layers(net)
            else []
        ),
        *pulled,
        sync,  # before anything evaluates or saves
        *averaged,
        *(
            [cb.TestCurve(test_ds, callbacks=[sync], scorer=scorer, ema=ema)]
            if plan.config.test_curve
            else []
        ),
        log,
        *([cb.Checkpoints(run.path, monitor, log=log, ema=ema, backup=backup)] if plan.writer else []),
        *plan.callbacks,
        backup,
    ]
    verbose = plan.config.verbose if plan.writer else 0  # the chief reports progress for the cluster
    with distribute.distributed_fit_fixes(net):
        # tf.data pipelines shuffle themselves (seeded); fit's own shuffle would only warn.
        net.fit(
            train_ds,
            validation_data=val_ds,
            epochs=plan.proto.total_epochs(steps_per_epoch),
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
        scores, eval_seconds = {}, None  # eval_seconds: the separate test pass, if one is made
        rows = log.epochs
        if plan.config.test and plan.config.test_curve and rows and rows[-1].get("test_accuracy") is not None:
            # The last epoch's test scores are this very model's: no second pass (its time
            # is in the epochs' seconds).
            scores = {
                k[len("test_") :]: v
                for k, v in rows[-1].items()
                if k.startswith("test_") and k != "test_seconds"
            }
        elif plan.config.test:
            start = time.perf_counter()  # the average is the model now (WeightEMA.on_train_end)
            scores = (scorer or net).evaluate(
                test_ds, return_dict=True, verbose=0 if verbose == 0 else 2, callbacks=[sync]
            )
            eval_seconds = time.perf_counter() - start
        if val_ds is not None and rows:
            # The final model scored on validation as the test is (TTA included): what
            # candidates are compared on without touching the test set. Without TTA that
            # is the last epoch's validation pass, of this very model: no second pass.
            if scorer is None:
                scores["val_accuracy"] = rows[-1]["val_accuracy"]
            else:
                scored = scorer.evaluate(val_ds, return_dict=True, verbose=0, callbacks=[sync])
                scores["val_accuracy"] = scored["accuracy"]
    if not rows:  # never publish a run that trained on nothing
        raise RuntimeError(f"the run in {run.path!r} completed no epoch; nothing was published")
    if plan.config.test and "accuracy" not in scores:
        raise RuntimeError(f"the test set of {plan.config.dataset!r} gave no scores; nothing was published")
    return rows, scores, eval_seconds


def _metrics(net, plan, rows, scores, eval_seconds, steps_per_epoch):
    """The finished run's record (``metrics.json``)."""
    seconds = sum(float(r["seconds"]) for r in rows)
    images = steps_per_epoch * plan.proto.batch_size * len(rows)
    return {
        "model": plan.config.model_name,
        "model_kwargs": plan.config.model_kwargs,
        "dataset": plan.config.dataset,
        "protocol": plan.proto.name,
        "epochs": len(rows),
        "test_top1": _score(scores, "accuracy"),
        "test_top5": _score(scores, "top5"),
        "test_loss": _score(scores, "cross_entropy"),
        "best_val_top1": _best_val(rows),
        "val_top1": _score(scores, "val_accuracy"),
        "whitening_seconds": sum(r.get("whitening_seconds") or 0.0 for r in rows) or None,
        "params": common.trainable_params(net),
        "total_params": int(net.count_params()),
        "train_seconds": seconds,
        "eval_seconds": eval_seconds,
        "train_images_per_s": images / seconds if seconds else None,
        "precision": plan.config.precision,
        "tta": plan.proto.tta,
        "ema_decay": plan.proto.ema_decay,
        "xla": plan.config.xla,
        "seed": plan.config.seed,
        "hardware": hardware(),
        "versions": versions(),
        "command": plan.config.command,
        "workers": plan.workers,
    }


def _publish(plan, rows, metrics):
    """Curves, then ``metrics.json`` (which marks the run finished), then the backup goes."""
    run = plan.run
    plot_curves(rows, run.curves, f"{plan.config.model_name} on {plan.config.dataset} ({plan.proto.name})")
    run.write_json(run.metrics, metrics)
    shutil.rmtree(run.backup, ignore_errors=True)


def _scorer(net, tta):
    """The model the test scores come from when ``tta`` is set: ``net`` seen through the
    test-time augmentation (same weights), compiled with the run's metrics."""
    if tta is None:
        return None
    with net.distribute_strategy.scope():
        return compile_for_scoring(tta_model(net, tta))


def _score(scores, key):
    """A test score as a float, None when the test set was not evaluated."""
    return float(scores[key]) if key in scores else None


def _batches(ds, fallback):
    """Batches per epoch of a pipeline (its cardinality; ``fallback`` when unknown, as for
    a dataset read from files of unknown length)."""
    n = int(ds.cardinality())
    return n if n > 0 else fallback


def _best_val(rows):
    """The best validation top-1 in the epoch log, or None without a validation split."""
    return max((r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None)


def _finished(run, verbose):
    """A finished run as it stands: its last model and records, with no data read."""
    metrics = run.read_metrics("delete the run directory to train it again")
    last = checks.require_file(run.last, "the finished run's model")
    if verbose:
        print(f"kzoo: {run.path} is complete; not training again (delete it to start over)")
    net = load_model(last)
    rows = cb.EpochLog(run.epochs).read()
    return TrainResult(net, rows, metrics, run.path)
