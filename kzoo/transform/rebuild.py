"""Rebuilding a Keras model's graph with changes, its weights carried: the one engine
behind ``kzoo.place`` and ``kzoo.adapt``.

Every layer is re-created from its config (so the new model shares no variable with the
old one, and training it leaves the original as it was) and called where the original
was, unless a ``Change`` for that layer says otherwise; then each kept layer receives
the original's weights. Nested models are rebuilt the same way, in place.
"""

import contextlib
import dataclasses
import re

import keras

from kzoo.models.deep_graphs import deep_graphs
from kzoo.transform.graph import is_model_with_graph


@dataclasses.dataclass(frozen=True)
class Change:
    """What happens to one layer's call: ``erase`` its activation, put ``activation``
    (a ``kzoo.placement._Activation``, or the layer's own nonlinearity when it must be
    split out of a weighted layer) in its place under ``name``, add an ``ensemble``
    shortcut across it (an ``Add`` named ``ensemble_name``), ``unfuse`` the activation
    of a weighted layer (the layer computes linearly, what follows is a layer), or
    ``drop`` an addition whose activation was erased (kzoo's ensemble modules)."""

    erase: bool = False
    activation: object = None
    name: str | None = None
    ensemble: bool = False
    ensemble_name: str | None = None
    unfuse: bool = False
    drop: bool = False
    fused: bool = False  # the activation is an argument of the layer (Conv2D(activation=...))


@contextlib.contextmanager
def _policy(policy):
    """New layers take the policy of the layer they stand in for (mixed precision)."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def _keras_reason(err):
    """The line of a Keras error that says what is wrong (no colours, no argument dump)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [
        line for line in lines if not line.startswith(("Exception encountered", "Arguments received", "•"))
    ]
    return " ".join(lines) or type(err).__name__


def as_functional(model):
    """A Sequential model as the functional one it is built on (same layers), named as it."""
    if not isinstance(model, keras.Sequential):
        return model
    graph = model._functional
    with deep_graphs():
        return keras.Model(graph.input, graph.output, name=model.name)


def _dtype_policy(operation):
    return getattr(operation, "dtype_policy", None) or keras.config.dtype_policy()


class _Nested:
    """A nested model, rebuilt when the graph reaches it (on inputs of the new shapes)."""

    def __init__(self, model):
        self.model = model


def kind_renamed(name, old_kind, new_kind):
    """``conv2_block1_1_relu`` -> ``conv2_block1_1_frelu``: the old kind's token in a layer
    name becomes the new kind's (kzoo's builders name activations this way); a name
    without it is kept."""
    for token in dict.fromkeys((old_kind, "relu", "re_lu")):
        pattern = rf"(^|_){re.escape(token)}(?=$|_\d+$)"
        if re.search(pattern, name):
            return re.sub(pattern, lambda m: m.group(1) + new_kind, name, count=1)
    return name


def free_name(taken, name):
    """``name``, or ``name_1``, ``name_2`` ... the first that is not in ``taken``."""
    base, n = name, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _input_name(tensor):
    """The name of the input layer that made ``tensor`` (kept in the new model)."""
    history = getattr(tensor, "_keras_history", None)
    return history.operation.name if history is not None and history.operation is not None else tensor.name


class Rebuilder:
    """Rebuilds models with ``changes`` (id of an original layer -> ``Change``);
    ``weights_fn(old_layer, new_layer, weights)`` may transform the weights a kept layer
    receives and ``config_fn(old_layer, config)`` the config it is re-created from
    (input-channel adaptation)."""

    def __init__(self, changes=None, weights_fn=None, config_fn=None):
        self.changes = changes or {}
        self.weights_fn = weights_fn
        self.config_fn = config_fn

    def rebuild(self, model, input_shapes=None, prefix=None):
        """The rebuilt model; ``input_shapes``: new batch shapes of its inputs;
        ``prefix(input) -> tensor``: layers put between each input and the network."""
        model = as_functional(model)
        names = {layer.name for layer in model.layers}
        originals, pairs = {}, []

        def clone(layer):
            if is_model_with_graph(layer):
                return _Nested(layer)
            change = self.changes.get(id(layer))
            config = layer.get_config()
            if change is not None and (change.erase or change.unfuse) and "activation" in config:
                config["activation"] = "linear"
            if self.config_fn is not None:
                config = self.config_fn(layer, config)
            try:
                new = layer.__class__.from_config(config)
            except Exception as err:
                raise ValueError(
                    f"layer {layer.name!r} ({type(layer).__name__}) of {model.name!r} cannot be "
                    f"re-created from its config ({type(err).__name__}: {err}); kzoo rebuilds every "
                    "layer so the new model shares no weights with the old one"
                ) from err
            originals[id(new)] = layer
            pairs.append((layer, new))
            return new

        def unique(name, own=None):
            """``name`` for a new layer (a layer that takes the place of ``own``, no longer
            called, may take its name)."""
            if name == own:
                return name
            name = free_name(names, name)
            names.add(name)
            return name

        starts, nested = {}, {}

        def call(op, *args, **kwargs):
            if starts:
                args, kwargs = keras.tree.map_structure(lambda t: starts.get(id(t), t), (args, kwargs))
            if isinstance(op, _Nested):  # rebuilt once per input shape (a shared backbone stays shared)
                shapes = [tuple(t.shape) for t in keras.tree.flatten(args)]
                key = (id(op.model), str(shapes))
                if key not in nested:
                    nested[key] = self.rebuild(op.model, shapes)
                return nested[key](*args, **kwargs)
            old = originals.get(id(op))
            change = self.changes.get(id(old)) if old is not None else None
            if change is None:
                return op(*args, **kwargs)
            if change.drop:
                return keras.tree.flatten(args)[0]
            fused = change.fused
            x = op(*args, **kwargs) if fused else args[0]
            if change.erase:
                return x
            if change.activation is not None:
                with _policy(_dtype_policy(old)):
                    y = change.activation(x, unique(change.name, None if fused else old.name))
            else:
                y = op(*args, **kwargs) if not fused else x
            if change.ensemble:
                with _policy(_dtype_policy(old)):
                    y = keras.layers.Add(name=unique(change.ensemble_name))([x, y])
            return y

        given = input_shapes
        if input_shapes is None:
            input_shapes = [tuple(t.shape) for t in model.inputs]
        inputs = [
            keras.Input(batch_shape=shape, dtype=t.dtype, name=_input_name(t))
            for shape, t in zip(input_shapes, model.inputs)
        ]
        if prefix is not None:
            starts.update((id(t), prefix(t)) for t in inputs)
        inputs = keras.tree.pack_sequence_as(model._inputs_struct, inputs)
        try:
            with deep_graphs():
                new_model = keras.models.clone_model(
                    model, input_tensors=inputs, clone_function=clone, call_function=call
                )
        except ValueError as err:
            if given is None or "kzoo" in str(err):
                raise
            raise ValueError(
                f"{model.name!r} cannot take inputs of shape {[tuple(s[1:]) for s in given]} (too small "
                f"for its downsampling, or not what a layer was built for): {_keras_reason(err)}"
            ) from None
        for old, new in pairs:
            if not getattr(new, "built", False) or not getattr(old, "weights", None):
                continue
            weights = old.get_weights()
            if self.weights_fn is not None:
                weights = self.weights_fn(old, new, weights)
            try:
                new.set_weights(weights)
            except ValueError as err:
                raise ValueError(
                    f"the weights of layer {old.name!r} of {model.name!r} do not fit it in the new "
                    f"model ({err}); a layer whose weights depend on the input size (a Dense after "
                    "Flatten) keeps the size it was built for"
                ) from None
        return new_model
