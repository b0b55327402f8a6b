"""Taps: the tensors inside a model, at its activation slots (by the module and slot names
``kzoo.modules`` reports and ``kzoo.place`` takes) or at any layer, as the outputs of a
new model that shares the original's layers.

A tensor inside a nested model (a keras.applications backbone inside a classifier) is
not a tensor of the outer model's graph, so a model whose graph holds a nested one is
read flat: its layers are called again, in the order ``layer_graph`` numbers them, on
tensors of one graph (the layers and their weights are the original's, nothing is
copied). A model without nested ones is read from its own tensors.
"""

import dataclasses
import numbers

import keras

from kzoo import checks
from kzoo.models.deep_graphs import deep_graphs
from kzoo.transform.graph import check_model, layer_graph, walk_graph
from kzoo.transform.slots import find_modules

WHERE = ("output", "input", "both")


@dataclasses.dataclass
class FlatGraph:
    """A model's graph with one graph's tensors per call: ``calls`` (``layer_graph``),
    ``ins[i]``/``outs[i]`` the input and output tensors of call ``i``, ``inputs`` the
    model's input tensors and ``output_calls`` the calls that give its outputs."""

    model: object
    calls: list
    inputs: list
    ins: list
    outs: list
    output_calls: list

    def build(self, outputs, name=None):
        """A keras.Model from the model's inputs to ``outputs`` (its layers shared)."""
        inputs = self.inputs[0] if len(self.inputs) == 1 else self.inputs
        with deep_graphs():
            return keras.Model(inputs, outputs, name=name or self.model.name)


def flat_graph(model):
    """``model`` (checked: functional or built Sequential) read as a ``FlatGraph``."""
    check_model(model)
    calls = layer_graph(model)
    inputs, ins, outs, index = [], [], [], {}

    def on_input(tensor, path):
        index[id(tensor)] = len(outs)
        inputs.append(tensor)
        ins.append([])
        outs.append([tensor])
        return tensor

    def on_node(node, path, produced):
        sources = [produced[id(t)] for t in node.input_tensors if id(t) in produced]
        if all(produced.get(id(t)) is t for t in node.input_tensors):  # the model's own tensors
            got = list(node.outputs)
        else:  # inside a nested model, or after one: called again on this graph's tensors
            args, kwargs = node.arguments.fill_in(produced)
            got = keras.tree.flatten(node.operation(*args, **kwargs))
        for t in got:
            index[id(t)] = len(outs)
        ins.append(sources)
        outs.append(got)
        return got

    with deep_graphs():
        results = walk_graph(model, on_input, on_node)
    if len(outs) != len(calls):  # the two walks are one walk: a mismatch is kzoo's bug
        raise RuntimeError(f"kzoo read {model.name!r} twice and found {len(calls)} and {len(outs)} calls")
    return FlatGraph(model, calls, inputs, ins, outs, [index[id(t)] for t in results])


def site_tensors(flat, call, where, label):
    """``{"input"|"output": tensor}`` of the activation at ``call`` (``where``: which);
    an activation fused into its layer has no input tensor in the graph (``label`` names
    it in the error)."""
    c = flat.calls[call]
    found = {}
    if where in ("input", "both"):
        if c.fused and c.activation:
            raise ValueError(
                f"{label}: {c.name} applies its {c.activation} inside the layer (an `activation` "
                "argument), so the graph holds no tensor of its input, only of its output; tap "
                "where='output', or build the model with the activation as a layer of its own"
            )
        if len(flat.ins[call]) != 1:
            raise ValueError(
                f"{label}: {c.name} takes {len(flat.ins[call])} inputs, not one tensor to tap; "
                "tap the layers that give them"
            )
        found["input"] = flat.ins[call][0]
    if where in ("output", "both"):
        found["output"] = flat.outs[call][0]
    return found


def resolve_module_slot(found, spec, arg, model_name):
    """The sites a ``(module, slot)`` pair names among modules ``found``; a clear error
    naming ``arg`` for an index out of range or a slot the module lacks."""
    module, slot = spec
    if not found:
        raise ValueError(f"`{arg}`={spec!r}: {model_name} has no module (no activation was found)")
    module = checks.integer(module, f"{arg}[0] (a 1-based module index)", minimum=1, maximum=len(found))
    if not isinstance(slot, str):
        raise TypeError(f"`{arg}[1]` must be a slot name (a string such as 'last'), got {slot!r}")
    sites = found[module - 1].resolve(slot.strip().lower())
    if sites is None:
        names = ", ".join(repr(n) for n in found[module - 1].names())
        raise ValueError(
            f"`{arg}`={spec!r}: module {module} of {model_name} has no slot {slot!r}; it has {names}"
        )
    return module, slot.strip().lower(), sites


def _layer_call(flat, name, arg):
    matches = [c for c in flat.calls if c.name == name and not c.is_input]
    if not matches:
        raise ValueError(
            f"`{arg}`={name!r} is not a layer of {flat.model.name!r} (nested layers are named by "
            "their path, as 'resnet50/conv1_relu'; kzoo.modules(model) lists the activations)"
        )
    if len(matches) > 1:
        raise ValueError(
            f"`{arg}`={name!r} is called {len(matches)} times in {flat.model.name!r}; tap one of its "
            "calls through the module and slot it is in, (module, slot)"
        )
    return matches[0]


def _is_pair(value):
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], numbers.Integral)
        and isinstance(value[1], str)
    )


def taps(model, sites, where="output"):
    """A model that returns the tensors at ``sites`` of ``model``, for analysis.

    Args:
        model: any functional (or built Sequential) Keras model, nested models walked into.
        sites: a list whose items are ``(module, slot)``, a 1-based module index and a
            slot name as ``kzoo.modules(model)`` reports them and ``kzoo.place`` takes them
            (``(7, "last")``; a slot of several activations, such as an Inception
            module's ``"last"``, gives each), or a layer name (``"conv1_relu"``, nested
            ones by path), any layer, activation or not.
        where: ``"output"`` (what the activation gives), ``"input"`` (what it takes:
            an activation fused into its layer has none in the graph, and is refused) or
            ``"both"``.

    Returns a ``keras.Model`` with the same inputs whose output is a dict, one entry per
    tensor, keyed ``"module7/last/conv2_block3_out/output"`` (a layer named directly:
    ``"conv1_relu/output"``). It shares ``model``'s layers, weights included.
    """
    flat = flat_graph(model)
    checks.choice(where, "where", WHERE)
    if isinstance(sites, str) or _is_pair(sites):  # one site
        sites = [sites]
    if not isinstance(sites, (list, tuple)) or not sites:
        raise TypeError(
            f"`sites` must be a non-empty list of (module, slot) pairs or layer names, got {sites!r}"
        )
    found = None
    outputs = {}
    for k, spec in enumerate(sites):
        arg = f"sites[{k}]"
        if isinstance(spec, str):
            c = _layer_call(flat, spec, arg)
            chosen = [(spec, c.index)]
        elif isinstance(spec, (tuple, list)) and len(spec) == 2:
            if found is None:
                found = find_modules(flat.calls)[0]
            module, slot, resolved = resolve_module_slot(found, tuple(spec), arg, repr(model.name))
            chosen = [(f"module{module}/{slot}/{s.layer}", s.call) for s in resolved]
        else:
            raise TypeError(
                f"`{arg}` must be a (module, slot) pair or a layer name, got {spec!r} (one site is "
                "(7, 'last'); several are a list of them: [(7, 'last'), (8, 'first')])"
            )
        for key, call in chosen:
            for part, tensor in site_tensors(flat, call, where, f"`{arg}`={spec!r}").items():
                outputs[f"{key}/{part}"] = tensor
    return flat.build(outputs, name=f"{model.name}_taps")
