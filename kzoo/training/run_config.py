"""One training run's options, each checked once: the object ``kzoo.train``, a search's
trials (``kzoo.tuning``), the ``kzoo train`` command and a study's jobs
(``kzoo.reproduce``) build and hand to the trainer, so that every option has one place
that says what it may be and one message when it is not.

``get_config()`` is the run directory's ``config.json``, what identifies the run;
``RunConfig.from_config(config)`` rebuilds the run a record describes (keras'
convention). How one call trains it (``out``, ``verbose``, ``test``, ``test_curve``,
``activation_log``, ``callbacks``) is held too, but is not part of that record.
"""

import dataclasses
import shlex
import sys

import keras

from kzoo import checks
from kzoo.training import activation_log as actlog
from kzoo.training.model import check_model_type, model_precision
from kzoo.training.precision import resolve_precision
from kzoo.training.protocols import Protocol, get_protocol

# config.json's keys, in the order it is written.
RECORD = (
    "model",
    "model_kwargs",
    "dataset",
    "protocol",
    "protocol_fields",
    "seed",
    "precision",
    "xla",
    "data_dir",
    "command",
)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A training run's options, checked and resolved when it is made (and again by
    ``replace``): ``protocol`` a ``Protocol`` (a name is looked up), ``dataset`` the
    protocol's when None, ``model_kwargs`` the protocol's with these on top,
    ``precision`` the dtype policy (a ``mixed_precision`` value such as "auto" is
    resolved for this machine, and for a built model read from its layers),
    ``command`` this process's command line when None. Nothing is read or written."""

    model: object
    _: dataclasses.KW_ONLY  # every other option by keyword
    dataset: str | None = None
    protocol: object = "fashion_mnist_demo"
    model_kwargs: dict | None = None
    precision: object = "auto"
    xla: bool = False
    seed: int = 0
    data_dir: str | None = None
    command: str | None = None
    # How this call trains it: not part of the run's record.
    out: str | None = None
    verbose: object = "auto"
    test: bool = True
    test_curve: bool = False
    activation_log: object = False
    callbacks: tuple = ()

    def __post_init__(self):
        def resolved(field, value):
            object.__setattr__(self, field, value)

        from kzoo import data

        resolved("protocol", get_protocol(self.protocol))
        resolved("dataset", self.dataset or self.protocol.dataset)
        data.dataset_info(self.dataset)
        checks.boolean(self.xla, "xla")
        resolved("seed", checks.seed(self.seed))
        checks.boolean(self.test, "test")
        checks.boolean(self.test_curve, "test_curve")
        resolved("verbose", checks.verbose(self.verbose))
        resolved("data_dir", checked_data_dir(self.data_dir))
        resolved("command", checked_command(self.command) or " ".join(shlex.quote(a) for a in sys.argv))
        if self.test_curve and not self.test:
            raise ValueError(
                "`test_curve`=True evaluates the test set every epoch; it cannot be combined with `test`=False"
            )
        resolved("callbacks", checked_callbacks(self.callbacks))
        resolved("activation_log", actlog.check(self.activation_log))
        if self.model_kwargs is not None and not isinstance(self.model_kwargs, dict):
            raise TypeError(f"`model_kwargs` must be a dict, got {self.model_kwargs!r}")
        resolved("model_kwargs", {**self.protocol.model_kwargs, **(self.model_kwargs or {})})
        check_model_type(self.model)
        precision = resolve_precision(self.precision)
        if isinstance(self.model, keras.Model):  # built already: it computes as its layers do
            precision = model_precision(self.model, self.precision, precision)
        resolved("precision", precision)
        resolved("out", checks.path(self.out, "out", optional=True))

    @classmethod
    def create(
        cls,
        model,
        dataset=None,
        protocol="fashion_mnist_demo",
        *,
        epochs=None,
        batch_size=None,
        validation_size=None,
        model_kwargs=None,
        mixed_precision="auto",
        xla=False,
        seed=0,
        data_dir=None,
        command=None,
        out=None,
        verbose="auto",
        test=True,
        test_curve=False,
        activation_log=False,
        callbacks=None,
        **overrides,
    ):
        """``kzoo.train``'s arguments as a RunConfig: ``protocol`` with ``epochs``,
        ``batch_size``, ``validation_size`` and the other protocol fields in
        ``overrides`` set."""
        protocol = get_protocol(
            protocol, epochs=epochs, batch_size=batch_size, validation_size=validation_size, **overrides
        )
        return cls(
            model,
            dataset=dataset,
            protocol=protocol,
            model_kwargs=model_kwargs,
            precision=mixed_precision,
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
        )

    @property
    def model_name(self):
        """The model as the run records it: its name (a built model's own)."""
        return self.model if isinstance(self.model, str) else getattr(self.model, "name", "model")

    @property
    def by_name(self):
        """Whether the run builds the model itself (the dtype policy then applies to it)."""
        return isinstance(self.model, str)

    @property
    def dataset_info(self):
        from kzoo import data

        return data.dataset_info(self.dataset)

    def replace(self, **changes):
        """This configuration with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)

    def get_config(self):
        """The run's record, as ``config.json`` holds it."""
        return {
            "model": self.model_name,
            "model_kwargs": dict(self.model_kwargs),
            "dataset": self.dataset,
            "protocol": self.protocol.name,
            "protocol_fields": self.protocol.to_dict(),
            "seed": self.seed,
            "precision": self.precision,
            "xla": self.xla,
            "data_dir": self.data_dir,
            "command": self.command,
        }

    @classmethod
    def from_config(cls, config, **options):
        """The run ``config`` records (a ``get_config()``, or a run directory's
        ``config.json`` read back), trained with this call's ``options`` (``out``,
        ``verbose``, ``test``, ...)."""
        if not isinstance(config, dict):
            raise TypeError(f"`config` must be a dict (a run's config.json), got {config!r}")
        checks.unknown_keys(config, RECORD, "config", "run config field(s)")
        missing = [k for k in RECORD if k not in config]
        if missing:
            raise ValueError(f"`config` lacks {', '.join(missing)}: it is not a kzoo run's config.json")
        fields = config["protocol_fields"]
        if not isinstance(fields, dict):
            raise TypeError(f"`config`'s protocol_fields must be a dict, got {fields!r}")
        if isinstance(fields.get("milestones"), list):  # a tuple, read back from JSON
            fields = {**fields, "milestones": tuple(fields["milestones"])}
        return cls(
            config["model"],
            dataset=config["dataset"],
            protocol=Protocol(**fields),
            model_kwargs=config["model_kwargs"],
            precision=config["precision"],
            xla=config["xla"],
            seed=config["seed"],
            data_dir=config["data_dir"],
            command=config["command"],
            **options,
        )


def checked_data_dir(data_dir):
    """``data_dir`` as given (None: kzoo's default place): a location the user names must
    be there, since kzoo.data reads it without creating it."""
    if checks.path(data_dir, "data_dir", optional=True) is None:
        return None
    return checks.existing_dir(data_dir, "data_dir")


def checked_command(command):
    """The command line a run records, or None (this process's)."""
    if command is not None and not isinstance(command, str):
        raise TypeError(f"`command` must be a string or None, got {command!r}")
    return command


def checked_callbacks(callbacks):
    """``callbacks`` (a list or tuple of keras callbacks, or None) as a tuple."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, keras.callbacks.Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a list of keras.callbacks.Callback, got {callbacks!r}")
    bad = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if bad:
        raise TypeError(f"`callbacks` must hold keras.callbacks.Callback instances, got {bad[0]!r}")
    return tuple(callbacks)
