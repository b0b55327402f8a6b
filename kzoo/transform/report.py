"""What ``kzoo.modules`` reports of a model: the modules ``kzoo.transform.slots`` found in
its graph and their activation sites, the activations outside every module, the ones
inside layers the graph does not show, and what a given ``erase``/``proportion`` removes."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Site:
    """One activation of the model: the layer it is (or is fused into), its kind, and
    whether it is the ``activation`` argument of a weighted layer. ``call`` is its place
    in the graph (a layer called twice has two sites)."""

    layer: str
    kind: str
    fused: bool = False
    call: int = dataclasses.field(default=-1, compare=False, repr=False)

    def to_dict(self):
        return {"layer": self.layer, "kind": self.kind, "fused": self.fused}

    def __str__(self):
        return f"{self.layer} ({self.kind}{', fused' if self.fused else ''})"


@dataclasses.dataclass(frozen=True)
class Module:
    """A module found in the graph: its 1-based ``index``, the merge layers that close
    it (none for a single-activation module of a plain chain), its slots (name -> sites,
    in graph order) and the other names its slots answer to (alias -> slot)."""

    index: int
    merges: tuple
    slots: dict
    aliases: dict

    def names(self):
        """Every location this module answers to: its slots, then its aliases."""
        return (*self.slots, *(a for a in self.aliases if a not in self.slots))

    def resolve(self, location):
        """The sites ``location`` names here, or None when the module has no such slot."""
        location = self.aliases.get(location, location)
        return self.slots.get(location)

    def sites(self):
        """Every activation of the module, once each, in graph order."""
        seen = {}
        for sites in self.slots.values():
            for site in sites:
                seen.setdefault(site.call, site)
        return tuple(seen.values())

    def describe(self):
        """``first: a (relu), b (relu); last: c (relu)`` with the aliases."""
        parts = []
        for slot, sites in self.slots.items():
            if slot.startswith("line"):
                continue
            also = [a for a, s in self.aliases.items() if s == slot]
            label = slot + (f" (= {', '.join(also)})" if also else "")
            parts.append(f"{label}: {', '.join(str(s) for s in sites)}")
        return "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class ModuleReport:
    """The modules of a model, its activations outside modules, and what a given
    ``erase``/``proportion`` removes (``erased``: module index -> sites)."""

    model: str
    modules: tuple
    outside: tuple
    plain: bool  # no merges: every activation is a single-activation module
    hidden: dict = dataclasses.field(default_factory=dict)  # layer -> activations inside it, unseen
    erase: object = None
    proportion: object = None
    erased: dict = dataclasses.field(default_factory=dict)

    def erased_sites(self):
        return tuple(site for sites in self.erased.values() for site in sites)

    def to_dict(self):
        return {
            "model": self.model,
            "plain": self.plain,
            "erase": self.erase,
            "proportion": self.proportion,
            "modules": [
                {
                    "index": m.index,
                    "merges": list(m.merges),
                    "slots": {k: [s.to_dict() for s in v] for k, v in m.slots.items()},
                    "aliases": dict(m.aliases),
                    "erased": [s.layer for s in self.erased.get(m.index, ())],
                }
                for m in self.modules
            ],
            "outside": [s.to_dict() for s in self.outside],
            "hidden": dict(self.hidden),
        }

    def __str__(self):
        lines = [
            f"{self.model}: {len(self.modules)} module(s)"
            + (" (no merges: each activation is a single-activation module)" if self.plain else "")
            + f", {sum(len(m.sites()) for m in self.modules)} activation(s) in modules, "
            f"{len(self.outside)} outside"
        ]
        if self.erase is not None:
            removed = self.erased_sites()
            lines.append(
                f"erase={self.erase!r} proportion={self.proportion!r}: removes {len(removed)} "
                f"activation(s) in module(s) {', '.join(str(i) for i in self.erased) or 'none'}"
            )
        for m in self.modules:
            mark = " *" if m.index in self.erased else ""
            merges = f" [{', '.join(m.merges)}]" if m.merges else ""
            lines.append(f"{m.index:>4}{mark}{merges} {m.describe()}")
            if m.index in self.erased:
                lines.append(f"       erased: {', '.join(s.layer for s in self.erased[m.index])}")
        if self.outside:
            lines.append(f"outside modules: {', '.join(str(s) for s in self.outside)}")
        if self.hidden:
            lines.append(
                "inside layers whose graph kzoo cannot read (subclassed blocks; not counted above): "
                + ", ".join(f"{name} ({n} activation(s))" for name, n in self.hidden.items())
            )
        return "\n".join(lines)
