"""``kzoo.features``: a backbone's stage outputs, as timm's ``features_only`` and
keras-hub's ``pyramid_outputs`` give them, for any kzoo builder, placed model or
keras.applications model (nested ones walked into).

A *stage* is a spatial size the whole network passes through (every path from the input
to the output meets a layer output of that size: not a squeeze-and-excitation's 1x1
branch), after its first layer with weights (not a preprocessing ``Normalization``), in
the order the network shrinks (a ``ZeroPadding`` before a strided convolution, larger
than the size before it, is none). Its output is the last tensor of that size that every
path passes through (a dominator of the output in the graph: a block's output, never one
branch of it). So keras' ResNet50 gives ``conv1_relu`` (reduction 2),
``conv2_block3_out`` (4), ``conv3_block4_out`` (8), ``conv4_block6_out`` (16) and
``conv5_block3_out`` (32), and a CIFAR ResNet its three stages' last blocks (1, 2, 4).

Where the network runs as several lines that meet only later (merge-and-run: no single
tensor ends the stage, or the last one is followed by merges of that size), the stage
gives each line's last tensor, one output each, with the same reduction: DFN-MR's stages
1 and 2 give two outputs each, ``..._line1_last_relu`` and ``..._line2_last_relu``.
"""

import dataclasses
import numbers

import keras

from kzoo import checks
from kzoo.models.deep_graphs import deep_graphs
from kzoo.transform.graph import dominators, intersect
from kzoo.transform.taps import flat_graph


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One stage output: its ``index`` among the model's stages (what ``out_indices``
    picks), the ``layer`` giving it (nested ones by path), its ``channels``, its
    ``reduction`` (the input's size over its size: an int when it divides, as timm's) and
    its ``shape`` (without the batch)."""

    index: int
    layer: str
    channels: int
    reduction: object
    shape: tuple

    def to_dict(self):
        return {**dataclasses.asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data):
        return cls(**{**data, "shape": tuple(data["shape"])})


@keras.saving.register_keras_serializable(package="kzoo")
class FeatureModel(keras.Model):
    """A functional model whose outputs are stage feature maps, with ``feature_info`` (one
    ``FeatureInfo`` per output, in output order). It keeps ``feature_info`` in its config,
    so a saved one loads back with it (kzoo imported)."""

    def __init__(self, *args, feature_info=(), **kwargs):
        super().__init__(*args, **kwargs)
        self._kzoo_feature_info = tuple(
            f if isinstance(f, FeatureInfo) else FeatureInfo.from_dict(f) for f in feature_info
        )

    @property
    def feature_info(self):
        return list(self._kzoo_feature_info)

    def get_config(self):
        return {**super().get_config(), "feature_info": [f.to_dict() for f in self._kzoo_feature_info]}


def channel_axis(rank):
    """The channel axis of a tensor of ``rank`` (a Dense output's units: its last axis)."""
    return 1 if rank >= 3 and keras.config.image_data_format() == "channels_first" else -1


def _spatial(shape):
    """``(spatial dims, channels)`` of a feature map's shape (batch first), or None."""
    if len(shape) < 3:
        return None
    if channel_axis(len(shape)) == 1:
        return tuple(shape[2:]), shape[1]
    return tuple(shape[1:-1]), shape[-1]


def _reduction(size, input_size):
    ratio = input_size / size
    return int(ratio) if ratio == int(ratio) else round(ratio, 4)


def _ancestors(calls, ends):
    """The calls on some path to ``ends`` (ends included)."""
    seen, stack = set(), list(ends)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(calls[i].inputs)
    return seen


def _dominator_chain(calls, ends):
    """The calls every path from the inputs to all of ``ends`` passes through, in order."""
    idom = dominators(calls)
    end = ends[0]
    for o in ends[1:]:
        end = intersect(idom, end, o)
    chain = []
    while end >= 0:
        chain.append(end)
        end = idom[end]
    return chain[::-1]


def _is_cut(calls, ends, removed):
    """Whether every path from the inputs to ``ends`` passes through a call in ``removed``
    (a size the whole network goes through, not a squeeze-and-excitation's 1x1 branch)."""
    seen = set()
    stack = [c.index for c in calls if c.is_input and c.index not in removed]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        if i in ends:
            return False
        stack.extend(o for o in calls[i].outputs if o not in removed)
    return True


def _leaving(calls, sizes, on_path, size, ends):
    """The tensors of ``size`` on the path that a smaller map, a flat one or the output
    takes (through layers that only pad: a larger size), in graph order."""

    def leaves(i):
        if i in ends:
            return True
        stack = [t for t in calls[i].outputs if t in on_path]
        while stack:
            t = stack.pop()
            other = sizes.get(t, (None,))[0]
            if other == size:
                continue
            if other is not None and all(a >= b for a, b in zip(other, size)):
                stack.extend(o for o in calls[t].outputs if o in on_path)  # a padding
                continue
            return True
        return False

    return [i for i in sorted(on_path) if sizes.get(i, (None,))[0] == size and leaves(i)]


def stages(model, flat=None):
    """The ``FeatureInfo`` of every stage output of ``model`` and the call giving each:
    ``[(info, call index)]``; a clear error for a model with no image input of known size,
    or none below it."""
    flat = flat or flat_graph(model)
    calls = flat.calls
    if len(flat.inputs) != 1:
        raise ValueError(
            f"kzoo.features needs a model of one image input; {model.name!r} has {len(flat.inputs)}"
        )
    found = _spatial(tuple(flat.inputs[0].shape))
    if found is None or any(d is None for d in found[0]):
        raise ValueError(
            f"kzoo.features needs a model of one image input of known size (input_shape=(H, W, C)); "
            f"{model.name!r} takes {tuple(flat.inputs[0].shape)[1:]}"
        )
    input_size = found[0]
    learned, sizes = {}, {}
    for c in calls:  # a stage lies after a layer with weights (not a preprocessing one)
        weighted = bool(getattr(c.layer, "weights", None)) and not isinstance(
            c.layer, keras.layers.Normalization
        )
        learned[c.index] = weighted or any(learned[i] for i in c.inputs)
        found = _spatial(tuple(flat.outs[c.index][0].shape)) if len(flat.outs[c.index]) == 1 else None
        if learned[c.index] and found and len(found[0]) == len(input_size) and None not in found[0]:
            sizes[c.index] = (found[0], found[1])
    on_path = _ancestors(calls, flat.output_calls)
    order, smallest = [], None  # the sizes the main path shrinks through, in order
    for size in dict.fromkeys(sizes[i][0] for i in sorted(on_path) if i in sizes):
        if (smallest is None or all(a <= b for a, b in zip(size, smallest))) and _is_cut(
            calls, flat.output_calls, {i for i in on_path if sizes.get(i, (None,))[0] == size}
        ):
            smallest = size
            order.append(size)
    last = {}
    for i in _dominator_chain(calls, flat.output_calls):
        if i in sizes:
            last[sizes[i][0]] = i
    picked = []
    for size in order:
        d = last.get(size, -1)
        merged_after = any(calls[i].merge and i > d and sizes.get(i, (None,))[0] == size for i in on_path)
        if d >= 0 and not merged_after:
            picked.append((size, [d]))
        else:  # lines that meet later (merge-and-run): each line's last tensor of that size
            picked.append((size, _leaving(calls, sizes, on_path, size, flat.output_calls)))
    result = []
    for size, chosen in picked:
        for i in chosen:
            info = FeatureInfo(
                len(result), calls[i].name, sizes[i][1], _reduction(size[0], input_size[0]), size
            )
            result.append((info, i))
    if not result:
        raise ValueError(
            f"{model.name!r} has no feature map on its main path (no layer output of the input's rank "
            "after a layer with weights: a fully connected net); kzoo.taps(model, ...) taps any layer"
        )
    return result


def _out_indices(out_indices, count, model_name):
    """``out_indices`` as a list of stage indices in the order given; negative ones count
    from the end, as Python's."""
    if out_indices is None:
        return list(range(count))
    if isinstance(out_indices, (str, bytes)) or isinstance(out_indices, numbers.Number):
        raise TypeError(
            f"`out_indices` must be a list of stage indices (such as [1, 2, 3] or [-1]), got {out_indices!r}"
        )
    try:
        given = list(out_indices)
    except TypeError:
        raise TypeError(f"`out_indices` must be a list of stage indices, got {out_indices!r}") from None
    if not given:
        raise ValueError("`out_indices` must name at least one stage; None gives them all")
    chosen = []
    for k, value in enumerate(given):
        checks.integer(value, f"out_indices[{k}]")
        if not -count <= value < count:
            raise ValueError(
                f"`out_indices[{k}]`={value} is out of range: {model_name} has {count} stages, "
                f"indices 0..{count - 1} (or -{count}..-1 from the end)"
            )
        chosen.append(int(value) % count)
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"`out_indices`={given!r} names a stage more than once")
    return chosen


def features(model, out_indices=None):
    """A model that gives the stage feature maps of ``model``, for detection or
    segmentation heads (timm's ``features_only=True``, keras-hub's ``pyramid_outputs``).

    Args:
        model: a functional (or built Sequential) Keras model with one image input of
            known size: a kzoo builder's model, a ``kzoo.place``'d model, a
            keras.applications model (``include_top`` either way), a backbone nested in
            your own model.
        out_indices: which stage outputs, by their index in the model's list (0 the
            first, the largest; -1 the last, as Python counts), in the order the outputs
            should come; None (default) gives them all. ``kzoo.features(model).feature_info``
            lists them.

    Returns a ``FeatureModel`` (a functional keras.Model) with the same input and one
    output per chosen stage, and ``feature_info``: for each output its stage index,
    layer name, channels, reduction and shape. It shares ``model``'s layers and weights
    (training it trains them, as a keras.applications backbone does inside a model built
    on it; ``kzoo.place(model)`` first gives an independent copy); it trains, saves and
    loads (``kzoo.load_model``) as any model, on every backend.
    """
    flat = flat_graph(model)
    found = stages(model, flat)
    chosen = [found[i] for i in _out_indices(out_indices, len(found), repr(model.name))]
    inputs = flat.inputs[0]
    outputs = [flat.outs[call][0] for _, call in chosen]
    with deep_graphs():
        return FeatureModel(
            inputs, outputs, name=f"{model.name}_features", feature_info=[info for info, _ in chosen]
        )
