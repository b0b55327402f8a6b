"""Floating-point operations of a model's forward pass, counted from its layers: what
the roofline figures (achieved GFLOP/s against the CPU's peak) and the speed table
divide by. Convolutions and dense layers only (a multiply-add is two operations);
normalisation, activations and additions are a few percent of a CNN's work and are left
out, as the papers' FLOP counts do."""

import math

import keras


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested model: its own layers
            yield from _layers(layer)
        else:
            yield layer


def forward_flops(model):
    """Operations of one image's forward pass through ``model`` (a built functional
    model of fixed input size)."""
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError("`model` must be a built functional model to count its operations")
    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):  # grouped ones included
            out = layer.output.shape
            if any(d is None for d in out[1:]):
                raise ValueError(
                    f"`model`: layer {layer.name!r} has an output of unknown size {tuple(out)}; "
                    "count the operations of a model built with a fixed input_shape"
                )
            k_h, k_w, c_in_per_group, c_out = layer.kernel.shape
            total += 2 * math.prod(out[1:3]) * k_h * k_w * c_in_per_group * c_out
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            k_h, k_w, _, _ = layer.kernel.shape
            total += 2 * math.prod(out[1:]) * k_h * k_w
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.kernel.shape)
    return int(total)


def training_flops(model):
    """Operations of one image's training step: the forward pass and a backward pass of
    twice its cost (gradients for the inputs and for the weights), the usual estimate."""
    return 3 * forward_flops(model)
