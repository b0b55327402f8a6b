"""Where a network's activations go: the one mechanism behind EraseReLU, the
proportional module and FReLU.

A block does not create its activations itself. It declares its activation *slots*
(``BlockSlots``: e.g. ``first``, ``second``, ``last``, next to the block's code in
``kzoo.models.blocks``) and, for each slot, asks the network's ``ActivationPlacement``
what to put there; this module is only that mechanism. The placement answers from three
options shared by every architecture:

- ``activation``: which nonlinearity fills a slot (``"relu"``, ``"frelu"``, ``"prelu"``,
  ``"leaky_relu"``, ``"elu"``, a Layer class, a factory or an activation function), or
  a dict ``{"default": ..., slot: ...}`` to fill some slots differently (e.g. PReLU only
  after the residual addition);
- ``erase``: the slot whose activation is removed (EraseReLU's ``"last"``, the
  proportional module's ``"first"``, ...), a list of slots removed together, or a
  list of such lists used in turn by the erased blocks (the cross-proportional
  merge-and-run blocks and their "Mix" compositions);
- ``proportion``: which blocks are erased, a fraction chosen uniformly as in the
  EraseReLU paper (0.5 erases blocks 1, 3, 5, ... counted from 1 over the whole
  network) or an explicit list of 1-based block indices.

A fourth option, ``ensemble``, adds a shortcut across every activation the network
keeps (``act(x) + x``: the proportional paper's "ensemble module", a leaky ReLU of
slope 0.5 up to scale, built as an explicit ``Add`` layer).

Activations outside blocks (stem, final pre-activation) always get the default one.
"""

import copy
import dataclasses
import functools
from fractions import Fraction

import keras

from kzoo.layers import FReLU

ACTIVATION_NAMES = ("relu", "frelu", "prelu", "leaky_relu", "elu")


def _prelu(name, rank):
    # One slope per channel as in He et al. (2015), initialised to 0.25; keras' default
    # would learn one slope per element and start at 0.
    shared = list(range(1, rank - 1)) if rank > 2 else None
    return keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=shared, name=name
    )


_BUILTIN = {
    # keras.applications uses Activation("relu"); so does kzoo, layer for layer.
    "relu": lambda name, rank: keras.layers.Activation("relu", name=name),
    "frelu": lambda name, rank: FReLU(name=name),
    "prelu": _prelu,
    "leaky_relu": lambda name, rank: keras.layers.LeakyReLU(name=name),
    "elu": lambda name, rank: keras.layers.ELU(name=name),
}

# Layer types that count as an activation when a model's activations are listed.
ACTIVATION_LAYER_TYPES = (
    keras.layers.ReLU,
    keras.layers.PReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    FReLU,
)


def _is_layer_class(obj):
    return isinstance(obj, type) and issubclass(obj, keras.layers.Layer)


@dataclasses.dataclass(frozen=True)
class _Activation:
    """A resolved activation: a short kind for layer names and a layer factory."""

    kind: str
    factory: object  # (name, rank) -> Layer

    def __call__(self, x, name):
        return self.factory(name, len(x.shape))(x)


def resolve_activation(spec, argname="activation"):
    """Turn an activation spec into an ``_Activation``, or raise a clear error."""
    if isinstance(spec, str):
        key = spec.strip().lower().replace("-", "_")
        if key not in _BUILTIN:
            raise ValueError(
                f"Unknown `{argname}`={spec!r}. Expected one of {', '.join(ACTIVATION_NAMES)}, "
                "a keras Layer class, a factory returning a Layer, or an activation function."
            )
        return _Activation(key, _BUILTIN[key])
    if _is_layer_class(spec):
        return _Activation(spec.__name__.lower(), lambda name, rank: spec(name=name))
    if isinstance(spec, functools.partial) and _is_layer_class(spec.func):
        return _Activation(spec.func.__name__.lower(), lambda name, rank: spec(name=name))
    if isinstance(spec, keras.layers.Layer):
        raise TypeError(
            f"`{argname}` must not be a Layer instance (a network needs one layer per "
            f"slot); pass its class or a factory instead, got {spec!r}"
        )
    if callable(spec):
        kind = getattr(spec, "__name__", type(spec).__name__).lower()
        return _Activation(kind, lambda name, rank: keras.layers.Activation(spec, name=name))
    raise TypeError(
        f"`{argname}` must be a string, a keras Layer class, a factory or a callable, "
        f"got {spec!r} of type {type(spec).__name__}"
    )


@dataclasses.dataclass(frozen=True)
class BlockSlots:
    """The activation slots of one kind of block, in order, and their other names.

    An alias names one slot or a tuple of slots (``"last"`` of a merge-and-run block
    is the last activation of both of its lines).
    """

    slots: tuple
    aliases: dict = dataclasses.field(default_factory=dict)
    description: str = ""

    def resolve(self, location, argname="erase"):
        """The slots ``location`` names, as a tuple; a clear error if it names none."""
        target = self.aliases.get(location, location)
        targets = (target,) if isinstance(target, str) else tuple(target)
        if not all(t in self.slots for t in targets):
            known = sorted(set(self.slots) | set(self.aliases))
            raise ValueError(
                f"`{argname}`={location!r} is not an activation slot of {self.description or 'this block'}; "
                f"it has {', '.join(repr(s) for s in known)}."
            )
        return targets


# The location names every kind of block understands, through its own slots or aliases.
ERASE_LOCATIONS = ("first", "middle", "second", "third", "last")


def _parse_erase(erase):
    """``erase`` as a cycle of slot groups: a tuple of tuples of location names."""
    if erase is None:
        return None
    if isinstance(erase, str):
        return ((erase.strip().lower(),),)
    if isinstance(erase, (list, tuple)) and erase:
        if all(isinstance(e, str) for e in erase):
            return (tuple(e.strip().lower() for e in erase),)
        if all(isinstance(e, (list, tuple)) and e and all(isinstance(x, str) for x in e) for e in erase):
            return tuple(tuple(x.strip().lower() for x in e) for e in erase)
    raise TypeError(
        "`erase` must be None, a slot name (one of "
        f"{', '.join(ERASE_LOCATIONS)} or a slot of the block), a list of slot names erased "
        f"together, or a list of such lists used in turn; got {erase!r}"
    )


def uniform_selection(num_blocks, proportion):
    """1-based indices of the blocks a proportion erases, spread uniformly.

    Block i is chosen when ceil(i*p) > ceil((i-1)*p): 0.5 gives 1, 3, 5, ...; 0.25
    gives 1, 5, 9, ...; 0.75 gives 1, 2, 3, 5, 6, 7, ...; 1.0 gives all. Exactly
    ceil(num_blocks * p) blocks are chosen. Computed in fractions, so 0.1 * 10 is 1.
    """
    p = Fraction(proportion).limit_denominator(10**6)

    def ceil(v):
        return -((-v.numerator) // v.denominator)

    return tuple(i for i in range(1, num_blocks + 1) if ceil(i * p) > ceil((i - 1) * p))


def chosen_blocks(count, proportion, unit, owner, hint=""):
    """The 1-based indices of the ``count`` blocks (or modules: ``unit``) that a checked
    ``proportion`` chooses: its fraction spread uniformly, or its own indices, which must
    lie in 1..count (``owner`` has them; ``hint`` says where to see them)."""
    if not isinstance(proportion, tuple):
        return uniform_selection(count, proportion)
    bad = [i for i in proportion if not 1 <= i <= count]
    if bad:
        raise ValueError(
            f"`proportion` {unit} indices must be in 1..{count} ({owner} has {count} {unit}s{hint}), got {bad}"
        )
    return proportion


def _check_proportion(proportion):
    if proportion is None:
        return None
    if isinstance(proportion, bool):
        raise TypeError(
            f"`proportion` must be a number in (0, 1] or a list of block indices, got {proportion!r}"
        )
    if isinstance(proportion, (int, float)):
        value = float(proportion)
        if not 0.0 < value <= 1.0:
            raise ValueError(f"`proportion` must be in (0, 1], got {proportion!r}")
        return value
    if isinstance(proportion, (list, tuple, set, frozenset, range)):
        indices = list(proportion)
        if not indices:
            raise ValueError(
                "`proportion` as a list of block indices must not be empty; use erase=None to erase nothing"
            )
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"`proportion` block indices must be integers, got {i!r}")
        if len(set(indices)) != len(indices):
            raise ValueError(f"`proportion` block indices must not repeat, got {indices}")
        return tuple(sorted(indices))
    raise TypeError(
        f"`proportion` must be a number in (0, 1] or a list of 1-based block indices, got {proportion!r}"
    )


class ActivationPlacement:
    """Decides, for every activation slot of a network, keep, erase or replace.

    Builders create one from their ``activation``, ``erase`` and ``proportion``
    arguments, ``bind`` it to the network's block count and block kind (which gives a
    new, bound placement and leaves this one as it was), then call the bound one for
    each slot. Arguments are checked on construction and on ``bind``, so a bad option
    fails before any layer is built.
    """

    def __init__(self, activation="relu", erase=None, proportion=None, ensemble=False):
        if isinstance(activation, dict):
            if "default" not in activation:
                raise ValueError(
                    "`activation` given as a dict needs a 'default' key, e.g. "
                    "{'default': 'relu', 'last': 'prelu'}"
                )
            self._by_slot = {k: resolve_activation(v, f"activation[{k!r}]") for k, v in activation.items()}
        else:
            self._by_slot = {"default": resolve_activation(activation)}
        self._erase_cycle = _parse_erase(erase)
        if isinstance(erase, str):
            erase = erase.strip().lower()
        if not isinstance(ensemble, bool):
            raise TypeError(f"`ensemble` must be True or False, got {ensemble!r}")
        self.ensemble = ensemble
        proportion = _check_proportion(proportion)
        if proportion is not None and erase is None:
            raise ValueError(
                f"`proportion`={proportion!r} needs `erase` (which activation to remove); got erase=None"
            )
        self.activation = activation
        self.erase = erase
        self.proportion = 1.0 if (erase is not None and proportion is None) else proportion
        self._options = dict(self._by_slot)  # as given: ``bind`` resolves them per network
        self.num_blocks = None
        self.slots = None
        self.erased_blocks = ()
        self._erased_slots = {}

    def bind(self, num_blocks, slots):
        """A copy of this placement fixed to the network it serves: ``num_blocks``
        blocks of kind ``slots``. This placement is left unbound, so it can be bound
        again (to another network) with the same options."""
        bound = copy.copy(self)
        bound.num_blocks = num_blocks
        bound.slots = slots
        bound._by_slot = {"default": self._options["default"]}
        for key, act in self._options.items():
            if key != "default":
                bound._by_slot.update(dict.fromkeys(slots.resolve(key, "activation"), act))
        if self.erase is None:
            bound.erased_blocks, bound._erased_slots = (), {}
            return bound
        groups = [
            frozenset(slot for location in group for slot in slots.resolve(location))
            for group in self._erase_cycle
        ]
        bound.erased_blocks = chosen_blocks(num_blocks, self.proportion, "block", "this network")
        # The k-th erased block (counted from 0) loses the slots of group k mod len(groups).
        bound._erased_slots = {b: groups[k % len(groups)] for k, b in enumerate(bound.erased_blocks)}
        return bound

    def erases(self, location):
        """Whether ``erase`` names ``location`` in any of its groups, whatever its form:
        ``"last"``, ``["last"]`` and ``[["first"], ["last"]]`` all erase "last". Builders
        ask this rather than compare ``erase``, so a list converts a network exactly as
        the string does (EraseReLU's pre- to post-activation conversion)."""
        location = location.strip().lower()
        return any(location in group for group in self._erase_cycle or ())

    def is_erased(self, block, slot):
        return slot in self._erased_slots.get(block, ())

    def __call__(self, x, name, block=None, slot=None):
        """Apply what goes in ``slot`` of ``block`` (1-based) to ``x``.

        ``name`` may contain ``{kind}``, replaced by the activation's kind
        (``relu``, ``frelu``, ...). Outside blocks pass neither block nor slot. With
        ``ensemble`` the result is ``act(x) + x``, the ``Add`` named with kind
        ``ensemble_add``.
        """
        if self.slots is None:
            raise RuntimeError("ActivationPlacement must be bound before use")
        if block is not None and self.is_erased(block, slot):
            return x
        act = self._by_slot.get(slot, self._by_slot["default"]) if slot else self._by_slot["default"]
        y = act(x, name.format(kind=act.kind))
        if self.ensemble:
            y = keras.layers.Add(name=name.format(kind="ensemble_add"))([x, y])
        return y


def activation_layers(model):
    """Names of the activation layers that remain in ``model``, in order.

    Counts ``Activation`` layers with a nonlinear function, and the ReLU, PReLU,
    LeakyReLU, ELU, Softmax and FReLU layers; the activation fused into the classifier
    ``Dense`` is not a layer and is not listed.
    """
    names = []
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Activation):
            fn = getattr(layer.activation, "__name__", "")
            if fn != "linear":
                names.append(layer.name)
        elif isinstance(layer, ACTIVATION_LAYER_TYPES):
            names.append(layer.name)
    return names


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
