"""Models kzoo did not build, by name (registered with ``kzoo.models.registry`` as this
module is imported, by ``import kzoo``): a ``keras.applications`` architecture
(``"keras:MobileNetV2"``) or a saved model file (``"path/to/model.keras"``), built as
kzoo's own are, so ``kzoo.create_model``, ``kzoo.train``, ``kzoo.tune`` and ``kzoo
summary`` take them too.

Their builder takes the placement options (``kzoo.place``: ``activation``, ``erase``,
``proportion``, ``ensemble``) and the fine-tuning ones (``kzoo.adapt``: ``classes``, a
new classifier head; ``input_shape``, whose channel count adapts the first convolution;
``resize``, images resized inside the model), so a run names the dataset's classes and
image shape as it does for a registered model.
"""

import dataclasses
import inspect
import os

import keras

from kzoo import checks
from kzoo.models import common
from kzoo.models.deep_graphs import deep_graphs
from kzoo.models.registry import ModelInfo, add_resolver
from kzoo.saving import load_model
from kzoo.transform.adapt import adapt, check_resize
from kzoo.transform.place import place
from kzoo.transform.rebuild import Rebuilder

PREFIX = "keras:"
SUFFIXES = (".keras",)


def is_spec(name):
    """Whether ``name`` names a keras.applications architecture or a model file."""
    return isinstance(name, str) and (name.lower().startswith(PREFIX) or name.lower().endswith(SUFFIXES))


def slug(name):
    """A name for run directories: ``keras:MobileNetV2`` -> ``keras-mobilenetv2``,
    ``models/base.keras`` -> ``base``."""
    if name.lower().startswith(PREFIX):
        return "keras-" + name[len(PREFIX) :].lower()
    return os.path.splitext(os.path.basename(name))[0]


@dataclasses.dataclass(frozen=True)
class ExternalInfo(ModelInfo):
    """A ``ModelInfo`` whose ``weights`` are the architecture's own ("imagenet", a file)."""

    def build(self, **kwargs):
        return self.builder(**{**self.kwargs, **kwargs})

    @property
    def slug(self):
        return slug(self.name)


def _check_options(resize, classes, classifier_activation, include_top, pooling):
    """The builder's own arguments, before the model to start from is built or loaded."""
    check_resize(resize)
    common.check_common_args(
        include_top, None, pooling, 1 if classes is None else classes, classifier_activation, "model"
    )


def _finish(base, placement, include_top, input_shape, pooling, classes, classifier_activation, resize):
    """Place (``placement``: the keywords of ``kzoo.place``), then adapt the head and the
    input, then pool a headless model."""
    model = base
    if placement["ensemble"] or any(placement[k] is not None for k in ("activation", "erase", "proportion")):
        model = place(model, **placement)
    shape = None
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if input_shape != tuple(model.input_shape[1:]) or resize is not None:
            shape = input_shape
    head = classes if include_top else None
    if include_top and classes is not None and _classes(model) == classes and shape is None:
        head = None
    if head is not None or shape is not None:
        model = adapt(
            model, classes=head, input_shape=shape, resize=resize, classifier_activation=classifier_activation
        )
    if not include_top and pooling is not None and len(model.output_shape) == 4:
        layer = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        with deep_graphs():
            model = keras.Model(model.input, layer(name=f"{pooling}_pool")(model.output), name=model.name)
    return model


def _classes(model):
    return model.output_shape[-1] if len(model.output_shape) == 2 else None


def _application(name):
    """The keras.applications builder called ``name`` (case as keras spells it)."""
    builders = {n.lower(): n for n in dir(keras.applications) if n[:1].isupper()}
    key = name.lower()
    if key not in builders:
        import difflib

        close = difflib.get_close_matches(key, list(builders), n=3)
        hint = f" Did you mean {', '.join(PREFIX + builders[c] for c in close)}?" if close else ""
        raise ValueError(f"Unknown keras.applications architecture {name!r}.{hint}")
    return getattr(keras.applications, builders[key])


def _placed_builder(base, classes_default, doc):
    """A builder of ``base(weights, architecture)`` (the model to start from) placed by
    ``kzoo.place`` and given a head and input by ``kzoo.adapt``, with kzoo's builder
    arguments; ``doc`` its docstring."""

    def build(
        activation=None,
        erase=None,
        proportion=None,
        ensemble=False,
        include_top=True,
        weights=None,
        input_shape=None,
        pooling=None,
        classes=classes_default,
        classifier_activation="softmax",
        resize=None,
        **architecture,
    ):
        _check_options(resize, classes, classifier_activation, include_top, pooling)
        model = base(weights, architecture)
        placement = {"activation": activation, "erase": erase, "proportion": proportion, "ensemble": ensemble}
        return _finish(
            model, placement, include_top, input_shape, pooling, classes, classifier_activation, resize
        )

    build.__doc__ = doc
    return build


def _keras_info(spec):
    app = _application(spec[len(PREFIX) :])
    named = {"name": app.__name__.lower()} if "name" in inspect.signature(app).parameters else {}

    def base(weights, architecture):
        reserved = {"input_tensor", "name"} & set(architecture)
        if reserved:
            raise ValueError(f"{PREFIX}{app.__name__} does not take {', '.join(sorted(reserved))}")
        if weights is not None and weights != "imagenet":
            weights = os.fspath(checks.path(weights, "weights"))
            if not os.path.isfile(weights):
                looks_like_a_file = os.sep in weights or weights.endswith((".h5", ".keras"))
                raise (FileNotFoundError if looks_like_a_file else ValueError)(
                    f"`weights`={weights!r} for {PREFIX}{app.__name__}: "
                    + (
                        "no such file"
                        if looks_like_a_file
                        else "must be None, 'imagenet' or a weights file of keras.applications' "
                        f"{app.__name__} (kzoo's published tags are for kzoo's own models; "
                        "kzoo list --pretrained lists them)"
                    )
                )
        try:
            if weights is None:
                return app(weights=None, include_top=False, **named, **architecture)
            return app(weights=weights, **named, **architecture)
        except (ValueError, TypeError) as err:
            given = "".join(f", {k}={v!r}" for k, v in architecture.items())
            raise type(err)(f"keras.applications.{app.__name__}(weights={weights!r}{given}): {err}") from None

    doc = f"""keras.applications.{app.__name__}, placed (``kzoo.place``) and adapted (``kzoo.adapt``)
    to ``classes`` and ``input_shape``. ``weights``: None, "imagenet" or a weights file of the
    architecture as keras builds it by default (its ImageNet head included). Other keywords
    go to keras' builder (MobileNetV2's ``alpha``)."""
    return ExternalInfo(
        name=PREFIX + app.__name__,
        builder=_placed_builder(base, 1000, doc),
        family="keras.applications",
        paper=f"keras.applications.{app.__name__}",
        published_params=None,
        input_shape=(224, 224, 3),
        classes=1000,
        dataset="ImageNet-2012",
        params_note="placed and adapted by kzoo.place / kzoo.adapt",
    )


def _file_info(path):
    checks.require_file(path, "the model file")
    saved = load_model(path, compile=False)
    if len(saved.inputs) != 1 or len(saved.outputs) != 1:
        raise ValueError(
            f"model file {path!r} holds a model with {len(saved.inputs)} inputs and {len(saved.outputs)} "
            "outputs; kzoo trains one image input and one class output"
        )

    def base(weights, architecture):
        if weights is not None or architecture:
            given = ", ".join(sorted(["weights"] * (weights is not None) + list(architecture)))
            raise TypeError(
                f"model file {path!r} is built as it was saved, its own weights in it; it takes no {given}"
            )
        return _under_policy(load_model(path, compile=False))

    doc = f"""The model saved in {path} (its weights: the pretrained ones), placed (``kzoo.place``)
    and adapted (``kzoo.adapt``) to ``classes`` and ``input_shape``; under a mixed-precision
    policy its layers compute in that precision, its classifier in float32."""
    return ExternalInfo(
        name=path,
        builder=_placed_builder(base, _classes(saved), doc),
        family="file",
        paper=f"model file {path}",
        published_params=None,
        input_shape=tuple(saved.input_shape[1:]),
        classes=_classes(saved),
        dataset="",
        params_note="placed and adapted by kzoo.place / kzoo.adapt",
    )


def _under_policy(model):
    """A loaded model's layers keep the precision they were saved in; under another global
    mixed-precision policy (a run's) they take it, all but the last layer (float32 outputs)."""
    policy = keras.config.dtype_policy().name
    if policy == "float32":
        return model
    last = model.outputs[0]._keras_history.operation

    def config_fn(layer, config):
        if layer is not last and "dtype" in config:
            config["dtype"] = policy
        return config

    return Rebuilder(config_fn=config_fn).rebuild(model)


_FILES = {}  # path -> (size, mtime, ExternalInfo): a file is read once while it is unchanged


def resolve(name):
    """The ``ExternalInfo`` of a spec, or None for a name that is not one."""
    if not is_spec(name):
        return None
    if name.lower().startswith(PREFIX):
        return _keras_info(name)
    path = os.fspath(name)
    stamp = (os.path.getsize(path), os.path.getmtime(path)) if os.path.isfile(path) else None
    cached = _FILES.get(path)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    info = _file_info(path)
    _FILES[path] = (stamp, info)
    return info


add_resolver(resolve)
