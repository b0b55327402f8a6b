"""The keras-tuner HyperModel: one placement trial is one ``kzoo.train`` run in its own
run directory, checked in full before any data is read, scored on its last epoch."""

import math
import numbers
import os

import keras_tuner

# keras-tuner does not export its trial checkpoint's class: it is taken from where
# keras-tuner 1.4 (setup.py's range) defines it.
from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

from kzoo import checks
from kzoo.training.run_dir import RunDir
from kzoo.tuning.space import NO_ERASE, SearchSpace, trial_settings, trial_slug

OBJECTIVE = "val_accuracy"  # what a trial is scored (and selected) on: its last epoch's


class PlacementHyperModel(keras_tuner.HyperModel):
    """A keras-tuner HyperModel over a model's placement options: a registered
    architecture's, or those ``kzoo.place`` gives any model (``keras:NAME``, a ``.keras``
    file, a ``keras.Model`` saved as ``out/base.keras``).

    ``build(hp)`` returns the architecture with the trial's ``erase``/``proportion``/
    ``activation``; ``fit(hp, model)`` trains that configuration with ``kzoo.train``
    under ``protocol`` (``epochs``, ``batch_size``, ``validation_size`` and other protocol
    fields override it) into ``out/trials/<slug>``, never evaluating the test set, and
    returns the final epoch's validation scores. ``fit`` turns a NaN loss or an
    out-of-memory error, or a run that gives no validation score, into keras-tuner's
    ``FailedTrialError``. Everything is checked here, before any data is read or file
    written: the arguments, ``out`` (writable), the protocol (a validation split, at least
    one epoch of at least one full batch), ``model_kwargs`` (by building the architecture
    with them alone) and then every location of ``space`` (a slot of the architecture).
    """

    def __init__(
        self,
        model,
        dataset=None,
        protocol="fashion_mnist_demo",
        space=None,
        *,
        out=None,
        seed=0,
        data_dir=None,
        mixed_precision="auto",
        xla=False,
        model_kwargs=None,
        verbose="auto",
        command=None,
        **protocol_overrides,
    ):
        import keras

        from kzoo.models.registry import model_info
        from kzoo.training.model import check_builder_kwargs, check_model_type
        from kzoo.training.run_config import RunConfig

        # Cheapest first; nothing here reads data or writes a file (but a given model's file).
        check_model_type(model)
        protocol = _validation_protocol(protocol, protocol_overrides)
        if isinstance(model, keras.Model):
            out = out or os.path.join("runs", f"tune-{model.name}-{dataset or protocol.dataset}")
            model = _saved_base(model, out)
        self.info = model_info(model)
        self.space = _checked_space(space)
        # The trials' run: each trains it with its own settings, in its own folder, never testing.
        self.run_config = RunConfig(
            self.info.name,
            dataset=dataset,
            protocol=protocol,
            model_kwargs=_checked_model_kwargs(model_kwargs),
            precision=mixed_precision,
            xla=xla,
            seed=seed,
            data_dir=data_dir,
            command=command,
            verbose=verbose,
            test=False,
        )
        self.out = self._checked_out(out)
        self._check_steps()
        origin = (
            f" (protocol {protocol.name!r} sets {protocol.model_kwargs!r})" if protocol.model_kwargs else ""
        )
        check_builder_kwargs(self.info, self.run_config.model_kwargs, self.run_config.dataset_info, origin)
        self._check_locations()
        super().__init__(name=f"{self.info.slug}_placement", tunable=True)

    @property
    def protocol(self):
        return self.run_config.protocol

    @property
    def dataset(self):
        return self.run_config.dataset

    @property
    def model_kwargs(self):
        """The builder keywords every trial starts from (the protocol's included)."""
        return self.run_config.model_kwargs

    def _checked_out(self, out):
        """``out`` (default runs/tune-MODEL-DATASET), absolute and writable."""
        if out is not None:
            checks.path(out, "out")
        default = os.path.join("runs", f"tune-{self.info.slug}-{self.dataset}")
        return checks.writable_dir(out or default, "out")

    def _builder_kwargs(self, extra):
        from kzoo.training.model import for_dataset

        return for_dataset({**self.model_kwargs, **extra}, self.run_config.dataset_info)

    # ----------------------------------------------------------------------- checks before data

    def _check_steps(self):
        """Refuse a protocol whose trials would train on nothing (no full training batch),
        counted by kzoo.data from the dataset's sizes, without reading it. (0 epochs or
        steps the protocol itself refuses.)"""
        from kzoo import data

        p = self.protocol
        p.check_length(data.steps_per_epoch(self.dataset, p.batch_size, p.validation_size, p.train_fraction))

    def _check_locations(self):
        """Build the architecture once per location: a slot it lacks is refused now
        (``model_kwargs`` are known good by then, so the error is the location's)."""
        import keras

        for location in self.space.locations:
            if location == NO_ERASE:
                continue
            try:
                self.info.build(
                    **self._builder_kwargs({"erase": location, "proportion": min(self.space.proportions)})
                )
            except (ValueError, TypeError) as err:
                raise ValueError(f"`locations`: {self.info.name} cannot erase {location!r}: {err}") from None
            finally:
                keras.backend.clear_session()

    # ----------------------------------------------------------------------- keras-tuner's side

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def build(self, hp):
        self.space.declare(hp)
        model_kwargs, _ = trial_settings(hp.values)
        return self.info.build(**self._builder_kwargs(model_kwargs))

    def run_dir(self, values):
        """The kzoo run directory of the trial with hyperparameter ``values``."""
        return os.path.join(self.out, "trials", trial_slug(values))

    def fit(self, hp, model, *args, callbacks=None, epochs=None, **kwargs):
        """Train the trial's configuration with ``kzoo.train``; ``model`` (keras-tuner's
        build) only gives Hyperband's hand-over, which kzoo does not use: every trial
        trains from scratch for its epochs, so its schedule runs to the end."""
        model_kwargs, overrides = trial_settings(hp.values)
        if epochs is not None:
            overrides["epochs"] = _trial_epochs(epochs)
        run_dir = self.run_dir(hp.values)
        _check_trial_files(run_dir)
        checkpoints = [c for c in callbacks or [] if _is_best_epoch_saver(c)]
        others = [c for c in callbacks or [] if not _is_best_epoch_saver(c)]
        result = self._train_trial(run_dir, model_kwargs, overrides, others)
        scores = _last_scores(result, run_dir)
        # keras-tuner's checkpoint of the trial (get_best_models, Hyperband) is the model
        # the trial is scored on: the last epoch's.
        for saver in checkpoints:
            result.model.save_weights(saver.filepath)
        return scores

    def _train_trial(self, run_dir, model_kwargs, overrides, callbacks):
        """One ``kzoo.train`` run without the test set; divergence and out-of-memory fail
        the trial (keras-tuner records it and goes on)."""
        import tensorflow as tf

        from kzoo.training import trainer
        from kzoo.training.callbacks import NonFiniteLossError
        from kzoo.training.protocols import get_protocol

        config = self.run_config.replace(
            protocol=get_protocol(self.protocol, **overrides),
            model_kwargs={**self.model_kwargs, **model_kwargs},
            out=run_dir,
            callbacks=callbacks,
        )
        try:
            return trainer.train_from_config(config)
        except NonFiniteLossError as err:
            raise keras_tuner.errors.FailedTrialError(f"diverged: {err}") from err
        except (tf.errors.ResourceExhaustedError, MemoryError) as err:
            raise keras_tuner.errors.FailedTrialError(f"out of memory: {err}") from err


def _saved_base(model, out):
    """A ``keras.Model`` to search over as the file its trials build from, ``out/base.keras``
    (the search's record names it, and a resumed search reads it again); a file there
    already must hold this very model (same architecture and weights)."""
    import keras
    import numpy as np

    from kzoo import atomic
    from kzoo.saving import load_model
    from kzoo.transform.graph import check_model

    check_model(model)
    path = os.path.join(checks.writable_dir(out, "out"), "base.keras")
    if os.path.exists(path):
        saved = load_model(path, compile=False)
        same = saved.to_json() == model.to_json() and all(
            np.array_equal(a, b) for a, b in zip(saved.get_weights(), model.get_weights())
        )
        keras.backend.clear_session()
        if not same:
            raise ValueError(
                f"{path!r} holds another base model than `model` {model.name!r}: this `out` is the "
                "search of another model; give another `out`, or delete it to start over"
            )
        return path
    os.makedirs(out, exist_ok=True)
    atomic.save_model(model, path)
    return path


def _validation_protocol(protocol, overrides):
    """The protocol with ``overrides``; it must hold out a validation split to select on."""
    from kzoo.training.protocols import get_protocol

    proto = get_protocol(protocol, **overrides)
    if proto.validation_size == 0:
        raise ValueError(
            f"tuning selects on a validation split, but protocol {proto.name!r} holds out "
            "none (validation_size=0); give `validation_size` > 0"
        )
    if proto.tta is not None:
        raise ValueError(
            f"`tta`={proto.tta!r} averages test scores over views, and a search's trials are never "
            "scored on the test set: it would do nothing; leave it out"
        )
    return proto


def _checked_space(space):
    if space is None:
        space = SearchSpace()
    if not isinstance(space, SearchSpace):
        raise TypeError(f"`space` must be a kzoo.tuning.SearchSpace, got {space!r}")
    return space


def _checked_model_kwargs(model_kwargs):
    """The user's builder kwargs (a dict, or None for none), which must leave the searched ones alone."""
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"`model_kwargs` must be a dict, got {model_kwargs!r}")
    searched = sorted({"erase", "proportion", "activation"} & set(model_kwargs or {}))
    if searched:
        raise ValueError(f"`model_kwargs` must not set {', '.join(searched)}: the search space sets them")
    return model_kwargs or {}


def _trial_epochs(epochs):
    """keras-tuner's ``epochs`` for one trial: at least 1, or the search is fatally wrong."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise keras_tuner.errors.FatalValueError(
            f"`epochs` must be an integer at least 1, got {epochs!r}: a trial of no epoch trains nothing"
        )
    return int(epochs)


def _check_trial_files(run_dir):
    """A trial's run directory that kzoo wrote and will read back (to resume it or to
    return it finished) must be readable: a damaged file stops the search with its name
    and the fix, rather than failing this one trial with a JSON error."""
    fix = f"delete the trial's folder {run_dir!r} and re-run the search to train it again"
    run = RunDir(run_dir)
    for path, what in ((run.config, "the trial's run config"), (run.metrics, "the trial's metrics")):
        if os.path.exists(path):
            try:
                checks.read_json(path, what, fix)
            except ValueError as err:
                raise keras_tuner.errors.FatalValueError(str(err)) from None


def _finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _last_scores(result, run_dir):
    """The trial's scores: its last epoch's validation scores. A run with no epoch or no
    finite validation top-1 fails the trial: it is never completed with a made-up score."""
    history = list(getattr(result, "history", None) or [])
    if not history:
        raise keras_tuner.errors.FailedTrialError(f"the trial trained no epoch ({run_dir}); nothing to score")
    last = history[-1]
    if not _finite(last.get("val_accuracy")):
        raise keras_tuner.errors.FailedTrialError(
            f"the trial's last epoch has no validation score (val_accuracy={last.get('val_accuracy')!r}, "
            f"{run_dir}); it cannot be ranked"
        )
    scores = {OBJECTIVE: float(last["val_accuracy"])}
    for key, name in (("val_cross_entropy", "val_loss"), ("val_top5", "val_top5")):
        if _finite(last.get(key)):
            scores[name] = float(last[key])
    seconds = (getattr(result, "metrics", None) or {}).get("train_seconds")
    if _finite(seconds):
        scores["train_seconds"] = float(seconds)
    return scores


def _is_best_epoch_saver(callback):
    """keras-tuner's checkpoint of a trial (the callback its ``Tuner.run_trial`` adds)."""
    return isinstance(callback, SaveBestEpoch)
