"""What happens to the pixels: normalisation, the training augmentations and the
evaluation resize, as each dataset's paper did them, and the same preprocessing for a
model's inputs at serving time (``prepare_for_model``, which kzoo's exports compute).

The pad-crop-flip augmentation runs on whole batches (one gather per batch for crop +
flip): about an order of magnitude faster on CPU than a per-example ``map``
(``benchmarks/input_pipeline.py``), and seeded: the same ``seed`` gives the same batches.
Random erasing (an option, off by default) is whole-batch and seeded the same way.
"""

import functools
import math
import os

import tensorflow as tf

from kzoo import checks
from kzoo.data.registry import dataset_info

# Inception's random-resized crop: the aspect ratios a training crop may have.
CROP_ASPECT_RATIOS = (3 / 4, 4 / 3)


def normaliser(spec):
    """(fn mapping a float32 batch on the 0-255 scale to the model's input, and the
    normalised value of a zero pixel)."""
    if spec.mean is None:
        return (lambda x: x / 255.0), 0.0
    mean = tf.constant(spec.mean, tf.float32)
    std = tf.constant(spec.std, tf.float32)
    return (lambda x: (x - mean) / std), None


def _fill(spec):
    """The value padded pixels get after normalisation."""
    pad_pixel = spec.augmentation.pad_pixel
    if pad_pixel is None:
        return tf.zeros([spec.image_shape[-1]], tf.float32)
    normalise, _ = normaliser(spec)
    return normalise(tf.fill([spec.image_shape[-1]], tf.constant(pad_pixel, tf.float32)))


# ----------------------------------------------------------------------------- pad-crop-flip


def _draw_crop_flip(batch, seed, pad, flip):
    """Per image: (row, column) offsets uniform in [-pad, pad], flip with probability 1/2."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    offsets = tf.random.stateless_uniform([batch, 2], seeds[0], minval=-pad, maxval=pad + 1, dtype=tf.int32)
    flipped = (tf.random.stateless_uniform([batch], seeds[1]) < 0.5) if flip else tf.zeros([batch], tf.bool)
    return offsets, flipped


def _place(images, offsets, flipped, normalise, fill):
    """The normalised crops of a uint8 batch, shifted by ``offsets`` ([B, 2]: output
    pixel (i, j) is input pixel (i + dy, j + dx), ``fill`` outside the image) and then
    mirrored where ``flipped``. One gather picks every output pixel; the padding is a
    mask, so no padded copy is ever made."""
    h, w, c = images.shape[1:]
    b = tf.shape(images)[0]
    rows = offsets[:, :1] + tf.range(h)[None, :]  # [B, H] source rows
    cols = tf.broadcast_to(tf.range(w)[None, :], [b, w])
    cols = tf.where(flipped[:, None], w - 1 - cols, cols) + offsets[:, 1:]  # [B, W]
    valid = ((rows >= 0) & (rows < h))[:, :, None, None] & ((cols >= 0) & (cols < w))[:, None, :, None]
    index = tf.clip_by_value(rows, 0, h - 1)[:, :, None] * w + tf.clip_by_value(cols, 0, w - 1)[:, None, :]
    x = tf.gather(tf.reshape(images, [b, h * w, c]), tf.reshape(index, [b, h * w]), batch_dims=1)
    x = normalise(tf.cast(tf.reshape(x, [b, h, w, c]), tf.float32))
    return tf.where(valid, x, fill)


@functools.cache
def _xla_works():
    """Whether XLA can compile inside a tf.data map here: it runs ``_place`` ~8x faster
    on CPU (one fused loop instead of a dozen broadcasting ops). Probed once per process
    the way the pipeline uses it; without it (or with KZOO_DATA_XLA=0) plain TF runs."""
    if os.environ.get("KZOO_DATA_XLA", "1") == "0":
        return False
    try:
        place = tf.function(lambda x, o, f: _place(x, o, f, lambda v: v, 0.0), jit_compile=True)
        probe = tf.data.Dataset.from_tensors(tf.zeros([1, 2, 2, 1], tf.uint8)).map(
            lambda x: place(x, tf.zeros([1, 2], tf.int32), tf.zeros([1], tf.bool))
        )
        return bool(next(iter(probe)).shape == (1, 2, 2, 1))
    except Exception:  # no XLA in this build / on this platform
        return False


def crop_flip_fn(spec):
    """``fn(uint8 batch, seed, flipped=None) -> normalised float32 batch``: ``spec``'s
    pad-crop (and flip: drawn, or ``flipped`` [B] bool when given), the random draws in
    plain TF (bit-identical everywhere), the pixel work XLA-compiled when XLA is available."""
    normalise, _ = normaliser(spec)
    fill = _fill(spec)
    aug = spec.augmentation

    def place(images, offsets, flipped):
        return _place(images, offsets, flipped, normalise, fill)

    if _xla_works():
        place = tf.function(place, jit_compile=True)

    def fn(images, seed, flipped=None):
        offsets, drawn = _draw_crop_flip(tf.shape(images)[0], seed, aug.pad, aug.flip)
        return place(images, offsets, drawn if flipped is None else flipped)

    return fn


def reference_augment(image, name):
    """The training augmentation of one uint8 image, written per example with
    ``tf.image``'s stateful random ops: what a plain ``ds.map`` would do. kzoo's
    pipeline does the same on whole batches; tests and the benchmark compare the two."""
    spec = dataset_info(name)
    normalise, _ = normaliser(spec)
    x = normalise(tf.cast(image, tf.float32))
    aug = spec.augmentation
    if aug.pad:
        p = aug.pad
        x = tf.pad(x - _fill(spec), [[p, p], [p, p], [0, 0]]) + _fill(spec)
        x = tf.image.random_crop(x, spec.image_shape)
    if aug.flip:
        x = tf.image.random_flip_left_right(x)
    return x


# ----------------------------------------------------------------------------- random erasing


def _check_erasing(probability, area, aspect):
    probability = checks.number(probability, "probability", minimum=0, maximum=1)
    if not isinstance(area, (tuple, list)) or len(area) != 2:
        raise TypeError(f"`area` must be a pair (low, high) of image fractions, got {area!r}")
    low = checks.number(area[0], "area[0]", minimum=0, maximum=1, min_open=True)
    high = checks.number(area[1], "area[1]", minimum=low, maximum=1)
    aspect = checks.number(aspect, "aspect", minimum=0, maximum=1, min_open=True)
    return probability, (low, high), aspect


def random_erasing_fn(spec, probability, area=(0.02, 0.4), aspect=0.3):
    """``fn(normalised float32 batch [B, H, W, C] of spec.image_shape, seed) -> batch``:
    random erasing (Zhong et al. 2017; cutout's random-sized cousin), a regulariser for
    occlusion. Each image, with ``probability``, gets one rectangle of an area fraction
    uniform in ``area`` and an aspect ratio log-uniform in [``aspect``, 1 / ``aspect``]
    (sides rounded, clipped to the image, placed uniformly where it fits) set to 0.0:
    the mean pixel of a mean/std-normalised dataset, black for one divided by 255.
    Masks over the whole batch, not a per-image ``map``; every draw is stateless, from
    ``seed`` ([2] int), so the same seed erases the same rectangles."""
    probability, (low, high), aspect = _check_erasing(probability, area, aspect)
    h, w, c = spec.image_shape
    log_ratio = (math.log(aspect), -math.log(aspect))

    def fn(images, seed):
        images = tf.ensure_shape(images, [None, h, w, c])
        b = tf.shape(images)[0]
        seeds = tf.random.experimental.stateless_split(seed, 5)
        erased = tf.random.stateless_uniform([b], seeds[0]) < probability
        size = tf.random.stateless_uniform([b], seeds[1], minval=low, maxval=high) * (h * w)
        ratio = tf.exp(tf.random.stateless_uniform([b], seeds[2], minval=log_ratio[0], maxval=log_ratio[1]))
        # Sides of area ``size`` and height / width ``ratio``, rounded and clipped.
        eh = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(size * ratio)), tf.int32), 1, h)
        ew = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(size / ratio)), tf.int32), 1, w)

        def corner(seed, side, full):  # uniform in [0, full - side]
            u = tf.random.stateless_uniform([b], seed) * tf.cast(full - side + 1, tf.float32)
            return tf.minimum(tf.cast(u, tf.int32), full - side)

        top, left = corner(seeds[3], eh, h), corner(seeds[4], ew, w)
        rows, cols = tf.range(h)[None, :], tf.range(w)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None]) & erased[:, None]  # [B, H]
        in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])  # [B, W]
        mask = in_rows[:, :, None, None] & in_cols[:, None, :, None]
        return tf.where(mask, tf.zeros([], images.dtype), images)

    return fn


# ----------------------------------------------------------------------------- images of any size


def random_resized_crop(image, seed, spec):
    """A random crop of ``spec.augmentation.random_resized_crop``'s area range and an aspect ratio in
    ``CROP_ASPECT_RATIOS``, resized to ``spec.image_shape``, and a random flip."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seeds[0],
        min_object_covered=0.0,
        aspect_ratio_range=CROP_ASPECT_RATIOS,
        area_range=spec.augmentation.random_resized_crop,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    x = tf.image.resize(tf.slice(image, begin, size), spec.image_shape[:2], method="bilinear")
    return tf.image.stateless_random_flip_left_right(x, seeds[1])


def centre_crop(image, spec):
    """Shorter side resized to ``spec.eval_resize`` (antialiased), then the central
    ``spec.image_shape`` crop."""
    resize = float(spec.eval_resize)
    height, width = spec.image_shape[:2]
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize / tf.reduce_min(shape)
    size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), spec.eval_resize)
    x = tf.image.resize(image, size, method="bilinear", antialias=True)
    top = (size[0] - height) // 2
    left = (size[1] - width) // 2
    return x[top : top + height, left : left + width, :]


def check_images(shape, spec, arg, *, batched, any_size=False):
    """Refuse images that are not ``spec``'s: another rank, another channel count
    (1-channel images through CIFAR's normalisation would come out broadcast to 3), or,
    unless ``any_size`` (they are resized) or the dataset's images vary (ImageNet),
    another size. Unknown dimensions (a graph's) pass; nothing is reshaped."""
    shape = tf.TensorShape(shape)
    what = "[batch, height, width, channels]" if batched else "[height, width, channels]"
    if shape.rank is None:
        return
    if shape.rank != (4 if batched else 3):
        raise ValueError(f"`{arg}` must be images {what} of dataset {spec.name!r}, got shape {shape}")
    fixed = not any_size and spec.eval_resize is None
    expected = tuple(spec.image_shape) if fixed else (None, None, spec.image_shape[-1])
    got = tuple(shape.as_list()[-3:])
    if any(e is not None and g is not None and e != g for e, g in zip(expected, got)):
        want = f"images of shape {expected}" if fixed else f"images with {expected[-1]} channel(s)"
        raise ValueError(
            f"`{arg}`: dataset {spec.name!r} has {want}, got {got} (height, width, channels); "
            "nothing is broadcast or reshaped: give images of that dataset, or name theirs"
        )


def resize_for_model(image, name, size):
    """One float32 image (0-255 scale) of any size brought to the model's ``size`` as
    the evaluation pipeline would: the dataset's resize + centre crop (ImageNet's 256 /
    224) when the image is not already that size, a bilinear resize for the small
    datasets when it differs."""
    spec = dataset_info(name)
    height, width = _check_size(size)
    check_images(image.shape, spec, "image", batched=False, any_size=True)
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    if spec.eval_resize is not None:
        resize = lambda: tf.image.resize(centre_crop(image, spec), (height, width))  # noqa: E731
    else:
        resize = lambda: tf.image.resize(image, (height, width), method="bilinear")  # noqa: E731
    x = tf.cond(same, lambda: image, resize)
    return tf.ensure_shape(x, [height, width, image.shape[-1]])


def _check_size(size):
    """``size``, the model's (height, width): two positive integers."""
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"`size` must be the model's (height, width), got {size!r}")
    return tuple(checks.integer(d, "size", minimum=1) for d in size)


def prepare_for_model(images, name, size):
    """A float32 batch on the 0-255 scale, any size, to the input the model was trained
    and evaluated on for dataset ``name`` (what kzoo's exports compute in their graph)."""
    spec = dataset_info(name)
    height, width = _check_size(size)
    check_images(images.shape, spec, "images", batched=True, any_size=True)
    shape = tf.shape(images)
    same = tf.logical_and(tf.equal(shape[1], height), tf.equal(shape[2], width))
    channels = spec.image_shape[-1]
    resized = tf.cond(
        same,
        lambda: images,
        lambda: tf.map_fn(
            lambda image: resize_for_model(image, name, size),
            images,
            fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
        ),
    )
    normalise, _ = normaliser(spec)
    return normalise(tf.ensure_shape(resized, [None, height, width, channels]))


def preprocessing_text(name, size, resize=True):
    """What ``prepare_for_model(images, name, size)`` does, in words (for model cards);
    ``resize=False``: images of the model's size only, normalised (the fixed-size graph)."""
    spec = dataset_info(name)
    norm = (
        "pixels / 255"
        if spec.mean is None
        else f"(pixels - {list(spec.mean)}) / {list(spec.std)} per channel, on the 0-255 scale"
    )
    if not resize:
        return f"inside the graph: {norm} (images must be {size[0]}x{size[1]}, the model's size)"
    if spec.eval_resize is not None:
        h, w = spec.image_shape[:2]
        how = f"shorter side to {spec.eval_resize}, centre crop {h if h == w else f'{h}x{w}'}"
    else:
        how = f"bilinear resize to {size[0]}x{size[1]}"
    return f"inside the graph: {how} when the size differs, then {norm}"
