"""The modules of any Keras model and their activation slots, found from its graph.

What EraseReLU, the proportional module and FReLU's "(b)" variant act on is a *module*
(a residual block, an Inception module) and a *slot* in it (the activation after the
addition, the first one ...). kzoo's builders declare theirs; for any other model they
are read from the graph, not from layer names:

- A merge of branches (``Add``, ``Average``, ``Concatenate``, kzoo's ``StochasticDepth``;
  several merges fed one by another, as merge-and-run's average and its two additions,
  count as one) closes a module. Its *split* is the point all its branches start from
  (the merge's dominator in the graph).
- The module's activations are those between the split and the merge that no earlier
  module holds, and the activations right after the merge. Activations before the split
  (a stem, a transition, a block without a shortcut) belong to no module, except a
  pre-activation whose output is the split itself in a module with nothing after its
  merge (the first block of a pre-activation stage).
- Slots: ``"last"`` is the module's end: the activations right after the merge, or
  feeding it directly (each branch's last activation before a concatenation). The others
  are named ``"first"``, ``"second"``, ... by how many activations lie before them
  inside the module; ``"middle"`` is the middle one of those (the first of a basic
  block's two, the second of a bottleneck's three); a module whose only activations are
  at its end calls them ``"first"`` too. A module of several outputs (merge-and-run's two
  lines) also names its slots per line: ``"line1_first"``, ``"line2_last"`` ...
- A model with no merge at all (VGG, an MLP) is a chain of single-activation modules:
  each activation is a module, with the one slot ``"last"`` (alias ``"first"``).

An activation is an activation layer (``Activation("relu")``, ``ReLU``, ``ReLU(6.)``,
``PReLU``, ``LeakyReLU``, ``ELU``, kzoo's ``FReLU``, ...) or the ``activation`` of a
weighted layer (``Conv2D(..., activation="relu")``); gates (sigmoid, softmax, tanh)
are not slots. kzoo's ensemble additions (``act(x) + x``) are part of their activation.
"""

from kzoo.placement import _check_proportion, _parse_erase, chosen_blocks
from kzoo.transform.graph import (
    check_model,
    dominators,
    ensembled_activation,
    hidden_layers,
    intersect,
    layer_graph,
)
from kzoo.transform.report import Module, ModuleReport, Site

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def _ordinal(i):
    return ORDINALS[i] if i < len(ORDINALS) else f"slot{i + 1}"


def _site(call):
    return Site(call.name, call.activation, call.fused, call.index)


class _Finder:
    """The module search over one model's flattened graph."""

    def __init__(self, calls):
        self.calls = calls
        self.anc = self._ancestors()
        self.idom = dominators(calls)
        self.ensemble_adds = {c.index for c in calls if ensembled_activation(calls, c) is not None}

    def _ancestors(self):
        anc = []
        for c in self.calls:
            bits = 0
            for i in c.inputs:
                bits |= anc[i] | (1 << i)
            anc.append(bits)
        return anc

    def common_dominator(self, indices):
        d = self.idom[indices[0]]
        for i in indices[1:]:
            d = intersect(self.idom, d, self.idom[i])
        return d

    def is_merge(self, c):
        return c.merge and c.index not in self.ensemble_adds

    def transparent(self, c):
        return c.pass_through or c.index in self.ensemble_adds

    def groups(self):
        """Merges as modules: a merge whose output goes to other merges only (directly or
        through pass-through layers; merge-and-run's average) joins their group."""
        parent = {}

        def find(i):
            while parent.setdefault(i, i) != i:
                i = parent[i]
            return i

        merges = [c for c in self.calls if self.is_merge(c)]
        for m in merges:
            find(m.index)
            takers = self._takers_through_transparent(m)
            if takers and all(self.is_merge(self.calls[t]) for t in takers):
                for t in takers:
                    parent[find(t)] = find(m.index)
        groups = {}
        for m in merges:
            groups.setdefault(find(m.index), []).append(m.index)
        return sorted(groups.values(), key=max)

    def _takers_through_transparent(self, c):
        out, stack = [], list(c.outputs)
        while stack:
            i = stack.pop()
            if self.transparent(self.calls[i]) and not self.calls[i].activation:
                stack.extend(self.calls[i].outputs)
            else:
                out.append(i)
        return out

    def after(self, m):
        """Activations right after merge ``m`` (through pass-through layers and other such
        activations), and every call on that chain."""
        acts, chain, stack = [], [], list(self.calls[m].outputs)
        while stack:
            c = self.calls[stack.pop(0)]
            if c.activation or self.transparent(c):
                chain.append(c.index)
                if c.activation and c.index not in acts:
                    acts.append(c.index)
                stack.extend(c.outputs)
        return acts, chain

    def feeding(self, m):
        """Activations whose output reaches merge ``m`` directly (through pass-through layers)."""
        acts, stack = [], list(self.calls[m].inputs)
        while stack:
            c = self.calls[stack.pop()]
            if c.activation:
                acts.append(c.index)
            elif self.transparent(c):
                stack.extend(c.inputs)
        return acts

    def depth_ranks(self, members):
        """How many of ``members`` lie before each of them on a path (0 for the first)."""
        depth = {}
        for i in sorted(members):
            depth[i] = max((depth[j] + 1 for j in depth if (self.anc[i] >> j) & 1), default=0)
        return depth


def _named_slots(finder, body, last, lines):
    """Slots and aliases of a module from its activations (``body`` before the end,
    ``last`` at it); ``lines``: output merge -> the activations of that line."""
    calls = finder.calls
    slots, aliases = {}, {}
    depth = finder.depth_ranks(body)
    ranks = sorted(set(depth.values()))
    for r, value in enumerate(ranks):
        slots[_ordinal(r)] = tuple(_site(calls[i]) for i in sorted(body) if depth[i] == value)
    if last:
        slots["last"] = tuple(_site(calls[i]) for i in sorted(last))
    if ranks:
        aliases["middle"] = _ordinal(len(ranks) // 2)
    elif last:
        aliases["first"] = "last"
    if len(lines) > 1:
        for n, members in enumerate(lines, start=1):
            line_body = [i for i in body if i in members]
            line_last = [i for i in last if i in members]
            sub, sub_aliases = _named_slots(finder, line_body, line_last, [])
            slots.update({f"line{n}_{k}": v for k, v in sub.items()})
            aliases.update({f"line{n}_{k}": f"line{n}_{v}" for k, v in sub_aliases.items()})
    return slots, aliases


def find_modules(calls):
    """``(modules, outside, plain)`` of a model's graph (``kzoo.transform.graph.layer_graph``):
    its ``Module`` list, the sites of the activations outside every module, and whether it
    is a plain chain."""
    finder = _Finder(calls)
    acts = [c.index for c in calls if c.activation]
    modules, in_module, covered = [], set(), 0
    for group in finder.groups():
        region = 0
        for m in group:
            region |= finder.anc[m] | (1 << m)
        region &= ~covered
        split = finder.common_dominator(group)
        last, chain = [], []
        for m in group:
            a, ch = finder.after(m)
            last += [i for i in a if i not in last]
            chain += ch

        def inside(i, region=region, split=split):  # after the split, and in no earlier module
            return (region >> i) & 1 and i not in in_module and (split < 0 or (finder.anc[i] >> split) & 1)

        for m in group:
            last += [i for i in finder.feeding(m) if inside(i) and i not in last]
        body = [i for i in acts if inside(i) and i not in last]
        if not last and split >= 0 and calls[split].activation and (region >> split) & 1:
            body.insert(0, split)  # the pre-activation whose output the branches share
        covered |= region
        for i in chain:
            covered |= 1 << i
        if not body and not last:
            continue
        outputs = [m for m in group if not any(o in group for o in calls[m].outputs)]
        lines = []
        if len(outputs) > 1:
            after = {m: finder.after(m)[0] for m in outputs}
            for m in outputs:
                lines.append(
                    {
                        i
                        for i in body + last
                        if ((finder.anc[m] >> i) & 1 or i in after[m])
                        and not any((finder.anc[o] >> i) & 1 or i in after[o] for o in outputs if o != m)
                    }
                )
        slots, aliases = _named_slots(finder, body, last, lines)
        merges = tuple(calls[m].name for m in sorted(group))
        modules.append(Module(len(modules) + 1, merges, slots, aliases))
        in_module.update(body, last)
    plain = not modules
    if plain:
        modules = [
            Module(n, (), {"last": (_site(calls[i]),)}, {"first": "last"})
            for n, i in enumerate(acts, start=1)
        ]
        in_module.update(acts)
    outside = tuple(_site(calls[i]) for i in acts if i not in in_module)
    return tuple(modules), outside, plain


def select(modules, erase, proportion, model_name="the model"):
    """``{module index: sites erased}`` for ``erase``/``proportion`` over ``modules``,
    with the builders' semantics (``kzoo.placement``); a clear error for a location
    that a chosen module does not have, or a choice of no module."""
    cycle = _parse_erase(erase)
    proportion = _check_proportion(proportion)
    if cycle is None:
        if proportion is not None:
            raise ValueError(
                f"`proportion`={proportion!r} needs `erase` (which activation to remove); got erase=None"
            )
        return {}
    if not modules:
        raise ValueError(f"`erase`={erase!r}: {model_name} has no activation to erase (no module was found)")
    proportion = 1.0 if proportion is None else proportion
    chosen = chosen_blocks(len(modules), proportion, "module", model_name, "; kzoo.modules(model) lists them")
    known = set()
    for m in modules:
        known.update(m.names())
    for group in cycle:
        for location in group:
            if location not in known:
                raise ValueError(_no_location(location, modules, model_name))
    erased = {}
    for k, index in enumerate(chosen):
        module = modules[index - 1]
        sites = []
        for location in cycle[k % len(cycle)]:
            found = module.resolve(location)
            if found is None:
                missing = [i for i in chosen if modules[i - 1].resolve(location) is None]
                raise ValueError(
                    f"`erase`={erase!r}: module(s) {_few(missing)} of {model_name} have no slot "
                    f"{location!r} (module {index} has {', '.join(repr(s) for s in module.names())}); "
                    "choose the modules with explicit 1-based indices, `proportion`=[...] "
                    "(kzoo.modules(model) lists each module's slots)"
                )
            sites.extend(s for s in found if s not in sites)
        erased[index] = tuple(sites)
    return erased


def _few(indices, limit=8):
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f" ... ({len(indices)} in all)" if len(indices) > limit else "")


def _no_location(location, modules, model_name):
    have = []
    for m in modules:
        have.extend(n for n in m.names() if n not in have and not n.startswith("line"))
    text = f"`erase`={location!r} is not a slot of any module of {model_name}; its modules have " + ", ".join(
        repr(n) for n in have
    )
    if location == "last":
        text += (
            ". No activation follows its merges: a pre-activation design (or a linear bottleneck, "
            "as in MobileNetV2) ends each module with the merge itself. EraseReLU converts "
            "pre-activation nets to the after-activation form before erasing (Dong et al., "
            "Sec. 3.1), a change of structure that kzoo.place does not make: kzoo's "
            "pre-activation builders do it (kzoo.ResNet50V2(erase='last')), or erase a slot "
            "the modules have"
        )
    return text


def modules(model, erase=None, proportion=None):
    """The module report of ``model`` (any functional or Sequential Keras model, nested
    models walked into): every module found from its graph, with its index, its merges and
    its slots (the layer each maps to and the activation kind), the activations outside
    modules, and, given ``erase``/``proportion``, which activations they would remove.

    ``print(kzoo.modules(model))`` shows it as a table; ``.to_dict()`` as data.
    """
    check_model(model)
    calls = layer_graph(model)
    found, outside, plain = find_modules(calls)
    erased = select(found, erase, proportion, repr(model.name))
    return ModuleReport(model.name, found, outside, plain, hidden_layers(calls), erase, proportion, erased)
