"""A Keras model read as a graph of layer calls: what ``kzoo.place`` and ``kzoo.modules``
look at.

Functional models (and built Sequential ones) are read from their nodes; a nested
functional or Sequential model (a backbone inside a classifier) is walked into, so the
graph is flat and a layer is named by its path (``resnet50/conv1_relu``). Each call of a
layer is one ``Call``; what a call *is* for placement (an activation, fused into its layer
or not, a merge of branches, a layer that passes values through unchanged) is decided
here, once.
"""

import dataclasses

import keras
from keras.src.models.functional import Functional

from kzoo.layers import FReLU, StochasticDepth

# Nonlinearities that decide or scale, rather than rectify: never activation slots.
GATES = frozenset(
    {
        "linear",
        "sigmoid",
        "hard_sigmoid",
        "tanh",
        "hard_tanh",
        "softmax",
        "log_softmax",
        "softsign",
        "sparsemax",
    }
)
# Layers that join branches: a residual merge (sum, average) or a concatenation.
MERGE_TYPES = (
    keras.layers.Add,
    keras.layers.Average,
    keras.layers.Subtract,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
    StochasticDepth,
)
# Weight-free layers that leave a value where it is (a merge's "last" activation may sit
# behind them).
PASS_THROUGH_TYPES = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
    keras.layers.ActivityRegularization,
)


# Activations and merges written as operations (``inputs + x``, ``keras.ops.relu(x)``)
# rather than layers: keras.ops classes by name.
_OP_ACTIVATIONS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "LeakyRelu": "leaky_relu",
    "Elu": "elu",
    "Selu": "selu",
    "Celu": "celu",
    "Gelu": "gelu",
    "Silu": "silu",
    "HardSilu": "hard_silu",
    "Softplus": "softplus",
    "Mish": "mish",
}
_OP_MERGES = ("Add", "Subtract", "Maximum", "Minimum", "Concatenate")


def _is_op(operation, module):
    return not isinstance(operation, keras.layers.Layer) and type(operation).__module__ == module


@dataclasses.dataclass(eq=False)
class Call:
    """One call of a layer in the flattened graph."""

    index: int  # position in topological order
    layer: object  # the keras layer (None for a model input)
    path: tuple  # names of the models it sits in, outermost first
    inputs: list  # indices of the calls whose outputs it takes
    activation: str | None = None  # the kind of nonlinearity it applies (a slot), else None
    fused: bool = False  # the activation is an argument of a weighted layer (Conv2D(activation=...))
    merge: bool = False
    pass_through: bool = False
    hidden: int = 0  # activations inside the layer, which the graph does not show (a subclassed block)
    outputs: list = dataclasses.field(default_factory=list)  # indices of the calls that take its output

    @property
    def name(self):
        """The layer's name, with the nested models it sits in (``resnet50/conv1_relu``)."""
        if self.layer is None:
            return "/".join(self.path) or "input"
        return "/".join((*self.path[1:], self.layer.name))

    @property
    def is_input(self):
        return self.layer is None


def _function_name(fn):
    if fn is None:
        return "linear"
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return {"swish": "silu", "hard_swish": "hard_silu"}.get(name, name).lower()


def activation_kind(layer):
    """``(kind, fused)`` of the nonlinearity ``layer`` applies as an activation slot, or
    ``(None, False)`` for a layer that applies none (or only a gate: sigmoid, softmax, ...)."""
    if _is_op(layer, "keras.src.ops.nn"):
        return _OP_ACTIVATIONS.get(type(layer).__name__), False
    if isinstance(layer, FReLU):
        return "frelu", False
    if isinstance(layer, keras.layers.PReLU):
        return "prelu", False
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu", False
    if isinstance(layer, keras.layers.ELU):
        return "elu", False
    if isinstance(layer, keras.layers.ReLU):
        if layer.negative_slope:
            return "leaky_relu", False
        if layer.max_value is not None:
            return ("relu6" if float(layer.max_value) == 6.0 else "clipped_relu"), False
        return "relu", False
    if isinstance(layer, keras.layers.Softmax):
        return None, False
    if isinstance(layer, keras.layers.Activation):
        kind = _function_name(layer.activation)
        return (None if kind in GATES else kind), False
    fn = getattr(layer, "activation", None)
    if callable(fn) and not isinstance(fn, keras.layers.Layer) and "activation" in _config(layer):
        kind = _function_name(fn)
        return (None if kind in GATES else kind), True
    return None, False


def _config(layer):
    try:
        return layer.get_config()
    except Exception:  # a layer without a config cannot be rebuilt; it is only read
        return {}


def hidden_activations(layer):
    """How many activation layers ``layer`` holds inside (a block written as a Layer
    subclass: keras-hub's MobileNet blocks), none of which its graph shows."""
    inner = getattr(layer, "_flatten_layers", None)
    if inner is None or not isinstance(layer, keras.layers.Layer):
        return 0
    return sum(1 for sub in inner(include_self=False) if activation_kind(sub)[0] is not None)


def hidden_layers(calls):
    """``{layer: activations inside}`` of the layers whose inside the graph ``calls`` does not show."""
    return {c.name: c.hidden for c in calls if c.hidden}


def is_model_with_graph(layer):
    """A functional model, or a built Sequential one (whose graph is a functional one)."""
    if isinstance(layer, keras.Sequential):
        return getattr(layer, "_functional", None) is not None
    return isinstance(layer, Functional)


def check_model(model, arg="model"):
    """Refuse what has no graph to read: not a model, a subclassed model, an unbuilt
    Sequential one."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`{arg}` must be a keras.Model (functional or Sequential), got {type(model).__name__}"
        )
    if isinstance(model, keras.Sequential) and not is_model_with_graph(model):
        raise ValueError(
            f"`{arg}` {model.name!r} is a Sequential model that is not built: give it an input "
            "(keras.Input(shape) as its first layer, or call build(input_shape)) first"
        )
    if not is_model_with_graph(model):
        raise ValueError(
            f"`{arg}` {model.name!r} is a subclassed {type(model).__name__} whose call() is Python "
            "code, with no layer graph for kzoo to read its modules from; build it with the "
            "functional API (keras.Model(inputs, outputs)) or as a Sequential model"
        )


def _nodes_in_call_order(graph):
    """The nodes of a functional graph in the order the code that built it called them,
    as far as the graph tells: depth first from the outputs, each node's inputs in the
    order it takes them (merge-and-run's line 1 before line 2), a node after its inputs."""
    inputs = {id(t) for t in graph.inputs}
    order, done = [], set()
    stack = [(t, False) for t in reversed(graph.outputs)]
    while stack:
        tensor, expanded = stack.pop()
        if id(tensor) in inputs:
            continue
        history = tensor._keras_history
        node = history.operation._inbound_nodes[history.node_index]
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((tensor, True))
        stack.extend((t, False) for t in reversed(node.input_tensors))
    return order


def walk_graph(model, on_input, on_node):
    """Visit the graph of ``model`` (a functional or built Sequential model) in call order,
    nested models walked into: ``on_input(tensor, path)`` for each of its inputs and
    ``on_node(node, path, produced)`` for each layer call, where ``produced`` maps the id
    of each symbolic tensor seen so far (a nested model's own inputs included) to what the
    visitor made of it. Each returns one value per output tensor of what it visits (a list
    for a node). ``layer_graph`` reads the graph this way, ``kzoo.transform.taps`` calls
    the same layers again on a flat graph, so both number the calls alike."""

    def walk(net, inputs, path):
        graph = net._functional if isinstance(net, keras.Sequential) else net
        produced = dict(zip((id(t) for t in graph.inputs), inputs))
        for node in _nodes_in_call_order(graph):
            op = node.operation
            if is_model_with_graph(op):
                sources = [produced[id(t)] for t in node.input_tensors if id(t) in produced]
                outs = walk(op, sources, (*path, op.name))
            else:
                outs = on_node(node, path, produced)
            for tensor, out in zip(node.outputs, outs):
                produced[id(tensor)] = out
        return [produced[id(t)] for t in graph.outputs]

    top = model._functional if isinstance(model, keras.Sequential) else model
    inputs = [on_input(t, (model.name,)) for t in top.inputs]
    return walk(model, inputs, (model.name,))


def layer_graph(model):
    """The graph of ``model`` (a functional or built Sequential model) as a list of
    ``Call`` in topological order; nested models are walked into."""
    calls = []

    def new_call(layer, path, inputs):
        call = Call(len(calls), layer, path, list(inputs))
        if layer is not None:
            call.activation, call.fused = activation_kind(layer)
            call.merge = len(inputs) > 1 and (
                isinstance(layer, MERGE_TYPES)
                or (_is_op(layer, "keras.src.ops.numpy") and type(layer).__name__ in _OP_MERGES)
            )
            call.pass_through = isinstance(layer, PASS_THROUGH_TYPES)
            call.hidden = hidden_activations(layer)
        calls.append(call)
        return call.index

    def on_node(node, path, produced):
        sources = [produced[id(t)] for t in node.input_tensors if id(t) in produced]
        return [new_call(node.operation, path, sources)] * len(node.outputs)

    walk_graph(model, lambda tensor, path: new_call(None, path, ()), on_node)
    for call in calls:
        for i in call.inputs:
            calls[i].outputs.append(call.index)
    return calls


def dominators(calls):
    """The immediate dominator of each call (``{index: index}``): the last call every path
    from the inputs to it passes through, -1 (a virtual root above every model input) when
    none does. ``calls`` are in topological order, so a dominator precedes what it dominates."""
    idom = {}
    for c in calls:
        d = c.inputs[0] if c.inputs else -1
        for p in c.inputs[1:]:
            d = intersect(idom, d, p)
        idom[c.index] = d
    return idom


def intersect(idom, a, b):
    """The nearest common dominator of calls ``a`` and ``b`` (each may be -1, the root)."""
    while a != b:
        while a > b:
            a = idom[a]
        while b > a:
            b = idom[b]
    return a


def ensembled_activation(calls, call):
    """The activation call that ``call`` adds a shortcut across (kzoo's ensemble module,
    ``Add([x, act(x)])``), or None."""
    if not call.merge or len(call.inputs) != 2:
        return None
    a, b = (calls[i] for i in call.inputs)
    if a.activation and a.inputs == [b.index]:
        return a
    if b.activation and b.inputs == [a.index]:
        return b
    return None
