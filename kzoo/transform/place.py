"""``kzoo.place``: EraseReLU, the proportional module and FReLU on any functional Keras
model, through the modules and slots ``kzoo.transform.slots`` finds in its graph."""

import keras

from kzoo.placement import _Activation, resolve_activation
from kzoo.transform.graph import check_model, ensembled_activation, hidden_layers, layer_graph
from kzoo.transform.rebuild import Change, Rebuilder, kind_renamed
from kzoo.transform.slots import find_modules, select


def _activation_spec(activation):
    """``activation`` as ``(default, {slot: _Activation})``; None keeps what is there."""
    if activation is None:
        return None, {}
    if isinstance(activation, dict):
        by_slot = {}
        for key, value in activation.items():
            if not isinstance(key, str):
                raise TypeError(f"`activation` dict keys must be slot names or 'default', got {key!r}")
            if value is None and key != "default":
                raise ValueError(f"`activation`[{key!r}] must be an activation, got None")
            if value is not None:
                by_slot[key.strip().lower()] = resolve_activation(value, f"activation[{key!r}]")
        return by_slot.pop("default", None), by_slot
    return resolve_activation(activation), {}


def place(model, activation=None, erase=None, proportion=None, ensemble=False):
    """A new functional model: ``model`` with its activations placed as kzoo's builders
    place theirs, its weights carried.

    Args:
        model: any functional (or built Sequential) Keras model: a keras.applications
            model, a keras-hub backbone, your own, a kzoo model; nested models are walked
            into. ``kzoo.modules(model)`` shows the modules and slots found in it.
        activation: None keeps every activation as it is; a name (``"relu"``, ``"frelu"``,
            ``"prelu"``, ``"leaky_relu"``, ``"elu"``), a Layer class, a factory or a
            function replaces every one (in modules and outside: stem, transitions, head);
            a dict ``{"default": ..., slot: ...}`` replaces the named slots (``{"last":
            "prelu"}``: PReLU only after the additions) and, with a non-None "default",
            the rest. An activation of the kind it already is stays as it is (weights kept).
        erase: the slot whose activation is removed in the chosen modules (``"last"``,
            ``"first"``, ``"middle"``, ``"second"``, ``"third"``, ``"line2_last"`` ...), a
            list of slots removed together, or a list of such lists used in turn by the
            chosen modules, as in the builders.
        proportion: which modules are erased: a fraction in (0, 1] chosen uniformly over
            the modules (0.5: modules 1, 3, 5, ..., the EraseReLU paper's rule; default
            1.0 when ``erase`` is given), or a list of 1-based module indices.
        ensemble: add a shortcut across every activation kept (``act(x) + x``, the
            proportional paper's ensemble module).

    Returns a new ``keras.Model`` (uncompiled) with the same inputs, outputs and name, and
    the same layer names where a layer is kept: a replaced activation layer takes the new
    kind in its name (``conv1_relu`` -> ``conv1_frelu``), an activation split out of a
    weighted layer is named after it (``block1_conv1_frelu``). Every kept layer holds
    the original's weights: with ``erase=None`` and ``activation=None`` the new model
    computes what the original does, and training it leaves the original unchanged.
    """
    check_model(model)
    default, by_slot = _activation_spec(activation)
    if not isinstance(ensemble, bool):
        raise TypeError(f"`ensemble` must be True or False, got {ensemble!r}")
    calls = layer_graph(model)
    found, outside, _plain = find_modules(calls)
    if (default is not None or by_slot or ensemble) and not found and not outside:
        raise ValueError(
            f"{model.name!r} has no activation for `activation`/`ensemble` to change (no activation "
            "layer, and no layer with an activation argument other than a gate)"
        )
    erased = select(found, erase, proportion, repr(model.name))
    hidden = hidden_layers(calls)
    if hidden and (activation is not None or erase is not None or ensemble):
        shown = ", ".join(f"{name!r} ({n})" for name, n in list(hidden.items())[:5])
        raise ValueError(
            f"{model.name!r} holds activations inside layers whose graph kzoo cannot read: {shown}"
            f"{' ...' if len(hidden) > 5 else ''} ({sum(hidden.values())} in all). They are blocks written as "
            "Layer subclasses (their call() is Python code), so a placement would change some "
            "activations and silently leave those; kzoo.place needs the blocks built with the "
            "functional API"
        )
    for key in by_slot:
        if not any(m.resolve(key) is not None for m in found):
            have = sorted({n for m in found for n in m.names()})
            raise ValueError(
                f"`activation`[{key!r}] is not a slot of any module of {model.name!r}; its modules have "
                + (", ".join(repr(n) for n in have) or "no slots")
            )
    # Which activation goes where, by the call it is in the graph.
    chosen = {}
    for m in found:
        for key, act in by_slot.items():
            for site in m.resolve(key) or ():
                chosen[site.call] = act
    removed = {site.call for sites in erased.values() for site in sites}
    changes = _changes(calls, default, chosen, removed, ensemble)
    return Rebuilder(changes).rebuild(model)


def _changes(calls, default, chosen, removed, ensemble):
    """``Change`` per original layer, from the graph's calls (a layer called more than
    once must be placed alike in every call)."""
    changes = {}
    ensembled = set()
    for c in calls:  # kzoo's own ensemble additions, and which activation each serves
        act = ensembled_activation(calls, c)
        if act is not None:
            ensembled.add(act.index)
            if act.index in removed:
                _put(changes, c, Change(drop=True))
    for c in calls:
        if not c.activation:
            continue
        act = chosen.get(c.index, default)
        if c.index in removed:
            change = Change(erase=True, fused=c.fused)
        else:
            replace = act is not None and act.kind != c.activation
            add = ensemble and c.index not in ensembled
            if not replace and not add:
                _put(changes, c, None)  # kept: another call of the layer must keep it too
                continue
            if replace:
                new_act = act
            elif c.fused:  # split out to add the shortcut across it
                new_act = _own_activation(c.layer)
            else:
                new_act = None
            name = None
            if new_act is not None:
                name = (
                    kind_renamed(c.layer.name, c.activation, new_act.kind)
                    if not c.fused
                    else (f"{c.layer.name}_{new_act.kind}")
                )
            base = name or c.layer.name
            ensemble_name = None
            if add:
                renamed = kind_renamed(base, new_act.kind if new_act else c.activation, "ensemble_add")
                ensemble_name = renamed if renamed != base else f"{base}_ensemble_add"
            change = Change(
                activation=new_act,
                name=name,
                ensemble=add,
                ensemble_name=ensemble_name,
                unfuse=c.fused,
                fused=c.fused,
            )
        _put(changes, c, change)
    return {key: change for key, change in changes.items() if change is not None}


def _own_activation(layer):
    """A weighted layer's own nonlinearity, as a separate layer."""
    fn = layer.activation
    kind = getattr(fn, "__name__", "activation")
    return _Activation(kind, lambda name, rank: keras.layers.Activation(fn, name=name))


def _put(changes, call, change):
    key = id(call.layer)
    if key in changes and changes[key] != change:
        raise ValueError(
            f"layer {call.name!r} is called more than once in the model and its calls would need "
            "different placements; kzoo.place changes a layer, not one of its calls"
        )
    changes[key] = change
