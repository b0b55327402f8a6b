"""``kzoo.activation_stats``: what each activation of a model does on real images, per
module and slot (the names ``kzoo.modules`` reports and ``kzoo.place`` takes).

The papers argue from it: EraseReLU from what the ReLU after an addition blocks, the
proportional paper from how many ReLUs a signal passes, FReLU from where the rectified
point settles. Every activation is tapped (``kzoo.transform.taps``) and reduced inside
the model's own graph to a few numbers per image (so one compiled call per batch returns
kilobytes, not every feature map), then combined over the sample in float64.

What is measured, per activation:

- ``zero_fraction``: the fraction of its values a ReLU zeroes. For the ReLU family
  (ReLU, ReLU6, a clipped ReLU) the fraction of its outputs that are exactly 0, which a
  ReLU fused into its layer (``Conv2D(activation="relu")``, whose input the graph does
  not hold) gives too; for other kinds (FReLU, PReLU, ELU, ...) the fraction of its
  inputs at or below 0, the part it rectifies (FReLU sends it to its bias). An erased
  activation (``original=``): the fraction of what it would have taken at or below 0,
  what the removed ReLU would have zeroed.
- ``dead_fraction``: the fraction of units (channels, the last axis) that never fire
  (output above 0 for the ReLU family, input above 0 otherwise) on any image.
- ``in_mean``/``in_std``, ``out_mean``/``out_std`` over every value of the sample
  (NaN where the tensor is not in the graph: a fused activation's input, an erased
  one's output); ``frelu_bias``: an FReLU layer's learned bias (a list when per channel).

A fused activation of another kind (``Dense(activation="elu")``) has neither fraction
(NaN): without its input, what it rectifies cannot be read.
"""

import math

import keras
import numpy as np

from kzoo import checks
from kzoo.layers import FReLU
from kzoo.transform.features import channel_axis
from kzoo.transform.graph import check_model, layer_graph
from kzoo.transform.slots import find_modules
from kzoo.transform.stats_table import ActivationStats
from kzoo.transform.taps import flat_graph

RELU_FAMILY = frozenset({"relu", "relu6", "clipped_relu"})


class _Probe:
    """One row to measure: where it is (module, slot), what it is, and the calls of the
    model whose input/output tensors are measured (None: not in the graph)."""

    def __init__(self, module, slot, layer, kind, fused=False, erased=False, note=""):
        self.module, self.slot, self.layer, self.kind = module, slot, layer, kind
        self.fused, self.erased, self.note = fused, erased, note
        self.input = self.output = None  # (call, "input"|"output") in the model's flat graph
        self.frelu = None

    def row(self):
        return {
            "module": self.module,
            "slot": self.slot,
            "layer": self.layer,
            "kind": self.kind,
            "fused": self.fused,
            "erased": self.erased,
        }


def _slot_of(module, site):
    """The first slot of ``module`` that holds ``site`` (its own name before the lines')."""
    return next(name for name, sites in module.slots.items() if site in sites)


def _sites(calls):
    """``[(module index or None, slot, site)]`` of every activation of a graph, modules
    first (in order), then those outside modules (slot ``"outside"``)."""
    found, outside, _plain = find_modules(calls)
    listed = [(m.index, _slot_of(m, s), s) for m in found for s in m.sites()]
    return listed + [(None, "outside", s) for s in outside]


def _measure_at(probe, flat, call, erased=False):
    c = flat.calls[call]
    if erased:
        probe.input = (call, "output")  # what the removed activation would have taken
        return
    probe.output = (call, "output")
    if not c.fused and len(flat.ins[call]) == 1:
        probe.input = (call, "input")
    if isinstance(c.layer, FReLU):
        probe.frelu = c.layer


def _own_probes(flat):
    probes = []
    for module, slot, site in _sites(flat.calls):
        probe = _Probe(module, slot, site.layer, site.kind, site.fused)
        _measure_at(probe, flat, site.call)
        probes.append(probe)
    return probes


def _activation_takers(calls, index):
    """The activation layers that take the output of call ``index`` alone, in graph order
    (not a weighted layer with a fused activation: that one is a site of its own)."""
    return [
        calls[o]
        for o in dict.fromkeys(calls[index].outputs)
        if calls[o].activation and not calls[o].fused and calls[o].inputs == [index]
    ]


def _matched_probes(flat, original):
    """Rows named by ``original``'s modules and slots: each of its activations found in
    ``model`` by the layer before it (or, fused, by its own layer), which kzoo.place and
    the builders name alike with or without the placement; one ``model`` lacks is erased,
    measured at that layer's output. The model's activations that match none follow
    (slot ``"not in original"``: a structure the placement changed)."""
    ocalls, mcalls = layer_graph(original), flat.calls
    by_name = {}
    for c in mcalls:
        by_name.setdefault(c.name, []).append(c.index)
    m_inputs = [c.index for c in mcalls if c.is_input]
    probes, used = [], set()
    for module, slot, site in _sites(ocalls):
        probe = _Probe(module, slot, site.layer, site.kind, site.fused)
        probes.append(probe)
        c = ocalls[site.call]
        if site.fused:
            anchor, rank = c, 0
        elif len(c.inputs) == 1:
            anchor = ocalls[c.inputs[0]]
            rank = [t.index for t in _activation_takers(ocalls, anchor.index)].index(c.index)
        else:
            probe.note = "takes several inputs: not matched"
            continue
        if anchor.is_input:
            k = [i for i in range(len(ocalls)) if ocalls[i].is_input].index(anchor.index)
            found = [m_inputs[k]] if k < len(m_inputs) else []
        else:
            found = [i for i in by_name.get(anchor.name, ()) if not mcalls[i].is_input]
        if len(found) != 1:
            probe.note = (
                f"layer {anchor.name!r} {'is called several times' if found else 'is not'} in the model"
            )
            continue
        a = found[0]
        if site.fused and mcalls[a].fused and mcalls[a].activation:  # still its own
            kept = mcalls[a]
        else:
            takers = _activation_takers(mcalls, a)
            kept = takers[rank] if len(takers) > rank else None
        if kept is not None:
            probe.layer, probe.kind, probe.fused = kept.name, kept.activation, kept.fused
            used.add(kept.index)
            _measure_at(probe, flat, kept.index)
        else:
            probe.erased, probe.note = True, f"erased: measured at the output of {mcalls[a].name}"
            _measure_at(probe, flat, a, erased=True)
    for _module, _slot, site in _sites(mcalls):
        if site.call not in used:
            probe = _Probe(None, "not in original", site.layer, site.kind, site.fused)
            _measure_at(probe, flat, site.call)
            probes.append(probe)
    return probes


def _reductions(tensor, prefix, rank_axis, fire, zero):
    """Per-image numbers of ``tensor`` (graph ops, so a batch is one compiled call)."""
    x = keras.ops.cast(tensor, "float32")
    axes = tuple(range(1, len(x.shape)))
    out = {f"{prefix}mean": keras.ops.mean(x, axis=axes), f"{prefix}var": keras.ops.var(x, axis=axes)}
    if fire:
        positive = keras.ops.cast(keras.ops.greater(x, 0), "float32")
        others = tuple(a for a in axes if a != rank_axis % len(x.shape))
        out["fires"] = keras.ops.max(positive, axis=others) if others else positive
    if zero is not None:
        hit = keras.ops.equal(x, 0) if zero == "equal" else keras.ops.less_equal(x, 0)
        out["zero"] = keras.ops.mean(keras.ops.cast(hit, "float32"), axis=axes)
    return out


def _stats_model(flat, probes):
    outputs = {}
    for k, p in enumerate(probes):
        relu = p.kind in RELU_FAMILY and not p.erased
        for part, where in (("in_", p.input), ("out_", p.output)):
            if where is None:
                continue
            call, side = where
            tensor = flat.ins[call][0] if side == "input" else flat.outs[call][0]
            on_this = (part == "out_") == relu  # the ReLU family is read at its output, the rest at the input
            reduced = _reductions(
                tensor,
                part,
                channel_axis(len(tensor.shape)),
                fire=on_this,
                zero=("equal" if relu else "less_equal") if on_this else None,
            )
            outputs.update({f"{k}/{name}": value for name, value in reduced.items()})
    return flat.build(outputs, name=f"{flat.model.name}_activation_stats")


def _check_images(images, model_input):
    if isinstance(images, (str, bytes)) or not hasattr(images, "__len__"):
        shape = ", ".join(map(str, model_input[1:]))
        raise TypeError(f"`images` must be an array of images (N, {shape}), got {type(images).__name__}")
    array = np.asarray(images)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"`images` must be numbers, got an array of {array.dtype}")
    expected = tuple(model_input[1:])
    if array.ndim != len(expected) + 1 or any(
        e is not None and e != g for e, g in zip(expected, array.shape[1:])
    ):
        raise ValueError(
            f"`images` must have the shape the model takes, (N, {', '.join(str(e) for e in expected)}), "
            f"got {array.shape}"
        )
    if len(array) == 0:
        raise ValueError("`images` holds no image")
    return array


def _combine(parts, key):
    """Mean and std over the whole sample from per-image means and variances (every image
    has as many values): the law of total variance, in float64."""
    means = np.concatenate([p[f"{key}mean"] for p in parts]).astype("float64")
    variances = np.concatenate([p[f"{key}var"] for p in parts]).astype("float64")
    return float(means.mean()), math.sqrt(max(float(variances.mean() + means.var()), 0.0))


def activation_stats(model, images, batch_size=32, original=None, verbose="auto"):
    """What every activation of ``model`` does on ``images``: an ``ActivationStats`` table,
    one row per activation (module, slot, layer, kind; see the module docstring for each
    number), with ``to_dict()``, ``to_csv()``, ``to_json()`` and ``plot()``.

    Args:
        model: any functional (or built Sequential) Keras model of one input.
        images: an array of images as the model takes them (preprocessed as for
            ``predict``), ``(N, H, W, C)``; run in inference mode, ``batch_size`` at a time.
        original: the same network before its activations were erased (the model given
            to ``kzoo.place``, or the builder called with ``erase=None``): rows then
            follow its modules and slots, and an activation it has that ``model`` lacks
            is reported as erased, measured on the tensor it would have taken. Without
            it an erased activation leaves no trace in the graph, and has no row.
        verbose: "auto", 1 or 2: a progress bar over the batches; 0: none.
    """
    check_model(model)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    verbose = checks.verbose(verbose)
    probe = ActivationProbe(model, original, check_images=images)
    images = probe.images
    steps = math.ceil(len(images) / batch_size)
    batches = (images[step * batch_size : (step + 1) * batch_size] for step in range(steps))
    return probe.measure(batches, steps, verbose)


class ActivationProbe:
    """``activation_stats`` set up once for ``model``: its activations found and the graph
    that reduces them built, then ``measure`` run on any number of samples (the training
    log measures the same model after every epoch; ``kzoo stats`` streams a dataset's
    batches). The graph shares the model's layers: it measures their weights as they are."""

    def __init__(self, model, original=None, check_images=None):
        check_model(model)
        if original is not None:
            check_model(original, "original")
        if len(model.inputs) != 1:
            raise ValueError(
                f"kzoo.activation_stats needs a model of one input; {model.name!r} has {len(model.inputs)}"
            )
        self.input_shape = tuple(model.inputs[0].shape)
        if check_images is not None:
            self.images = _check_images(check_images, self.input_shape)
        self.model = model
        flat = flat_graph(model)
        self.probes = _matched_probes(flat, original) if original is not None else _own_probes(flat)
        if not self.probes:
            raise ValueError(f"{model.name!r} has no activation to measure")
        self.measured = [p for p in self.probes if p.input is not None or p.output is not None]
        self._stats_model = _stats_model(flat, self.measured)

    def measure(self, batches, steps=None, verbose=0):
        """The table over ``batches`` (arrays of images as the model takes them; ``steps``
        of them, for the progress bar, when known)."""
        bar = keras.utils.Progbar(steps, unit_name="batch") if verbose != 0 else None
        parts, count = [], 0
        for step, batch in enumerate(batches):
            count += len(batch)
            parts.append({k: np.asarray(v) for k, v in self._stats_model.predict_on_batch(batch).items()})
            if bar is not None:
                bar.update(step + 1)
        if not parts:
            raise ValueError("`images` holds no image")
        return ActivationStats(self.model.name, count, [self._row(p, parts) for p in self.probes])

    def _row(self, p, parts):
        row = {
            **p.row(),
            **dict.fromkeys(ActivationStats.NUMBERS, math.nan),
            "channels": None,
            "note": p.note,
        }
        if p in self.measured:
            k = self.measured.index(p)
            mine = [
                {n.split("/", 1)[1]: v for n, v in part.items() if n.startswith(f"{k}/")} for part in parts
            ]
            for key in ("in_", "out_"):
                if f"{key}mean" in mine[0]:
                    row[f"{key}mean"], row[f"{key}std"] = _combine(mine, key)
            if "zero" in mine[0]:
                row["zero_fraction"] = float(
                    np.concatenate([m["zero"] for m in mine]).astype("float64").mean()
                )
                fires = np.concatenate([m["fires"] for m in mine]).max(axis=0)
                row["channels"] = int(fires.size)
                row["dead_fraction"] = float((fires == 0).mean())
            elif p.fused and not p.erased:
                row["note"] = row["note"] or f"{p.kind} fused into its layer: its input is not in the graph"
        if p.frelu is not None:
            bias = keras.ops.convert_to_numpy(p.frelu.bias).astype("float64")
            row["frelu_bias"] = float(bias) if bias.ndim == 0 else bias.tolist()
        return row
