"""What kzoo knows about a dataset, as records grouped by concern: a ``DatasetSpec``
says what the dataset is (its classes, image shape, split sizes and statistics), holds
where it is read from (a ``TFDSSource`` or an ``IDXSource``, ``sources.py``) and how its
training images are augmented (an ``Augmentation``). The loaders and pipelines read these
fields instead of testing dataset names.

Every record is made with keyword arguments only and checks its fields when it is made
(``dataclasses.replace`` included), so a spec that exists is a valid one: an error names
the dataset and the field (``source.train_parts``, ``augmentation.pad``, ...)."""

import dataclasses

from kzoo import checks
from kzoo.data.sources import SOURCES, IDXSource, TFDSSource, checked, optional_string


@dataclasses.dataclass(frozen=True, kw_only=True)
class Augmentation:
    """A dataset's training augmentation, as its paper did it; the default is none (SVHN).

    Fixed-size images: a random crop after padding ``pad`` on each side (0: no crop) and a
    horizontal flip of half the images when ``flip``; the padding holds ``pad_pixel``
    (None: zeros *after* normalising, the mean colour, as fb.resnet.torch does; a number:
    that pixel value, 0 for MNIST's black background). Images of any size: Inception's
    random-resized crop of ``random_resized_crop``'s area range (aspect ratio 3/4-4/3),
    then a random flip; it needs the spec's ``eval_resize``."""

    pad: int = 0
    flip: bool = False
    pad_pixel: float = None
    random_resized_crop: tuple = None  # the crop's (low, high) area fraction, or None

    def __post_init__(self):
        checked(self, _check_augmentation)


def _check_augmentation(aug):
    checks.integer(aug.pad, "pad", minimum=0)
    checks.boolean(aug.flip, "flip")
    checks.number(aug.pad_pixel, "pad_pixel", minimum=0, maximum=255, optional=True)
    crop = aug.random_resized_crop
    if crop is not None:
        if not isinstance(crop, tuple) or len(crop) != 2:
            raise TypeError(f"`random_resized_crop` must be an area range (low, high) or None, got {crop!r}")
        low = checks.number(crop[0], "random_resized_crop", minimum=0, maximum=1, min_open=True)
        checks.number(crop[1], "random_resized_crop", minimum=low, maximum=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """What kzoo needs to know about a dataset (see the module's docstring).

    ``mean``/``std`` are per channel on the 0-255 scale; both None: the protocol divides
    by 255 instead (SVHN). ``eval_resize`` is for images of any size: evaluation and
    exports resize the shorter side to it, then take the central ``image_shape`` crop;
    None: the images already have ``image_shape``."""

    # ---- what the dataset is
    name: str
    classes: int
    image_shape: tuple  # (H, W, C) the model sees
    train_size: int  # the whole training set (``train_full``)
    test_size: int
    validation_size: int  # the default carve-out from the training set
    mean: tuple = None
    std: tuple = None
    eval_resize: int = None
    title: str = None  # the dataset's usual name in messages ("ImageNet"); None: ``name``
    # ---- where it is read from, how it is augmented
    source: TFDSSource | IDXSource
    augmentation: Augmentation = Augmentation()
    # ---- how the pipeline holds it
    cache: bool = True  # keep the decoded uint8 data in memory
    shuffle_buffer: int = 100000

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"`name` must be a dataset name (a string), got {self.name!r}")
        if not self.name.strip():
            raise ValueError(f"`name` must be a non-empty string, got {self.name!r}")
        try:
            optional_string(self.title, "title")
            _check_sizes(self)
            _check_preprocessing(self)
            _check_source(self)
            _check_augmentation_fits(self)
            checks.boolean(self.cache, "cache")
            checks.integer(self.shuffle_buffer, "shuffle_buffer", minimum=1)
        except (TypeError, ValueError) as err:
            raise type(err)(f"Dataset {self.name!r}: {err}") from None


def _check_sizes(spec):
    checks.integer(spec.classes, "classes", minimum=1)
    shape = spec.image_shape
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise TypeError(f"`image_shape` must be a tuple (H, W, C), got {shape!r}")
    for dim in shape:
        checks.integer(dim, "image_shape", minimum=1)
    train = checks.integer(spec.train_size, "train_size", minimum=1)
    checks.integer(spec.test_size, "test_size", minimum=1)
    checks.integer(spec.validation_size, "validation_size", minimum=0, maximum=train - 1)


def _check_preprocessing(spec):
    """The normalisation statistics and the evaluation resize."""
    if (spec.mean is None) != (spec.std is None):
        raise ValueError(
            f"`mean` and `std` must both be given or both be None, got mean={spec.mean!r}, std={spec.std!r}"
        )
    if spec.mean is not None:
        channels = spec.image_shape[-1]
        for arg, values, low in (("mean", spec.mean, None), ("std", spec.std, 0)):
            if not isinstance(values, tuple) or len(values) != channels:
                raise ValueError(
                    f"`{arg}` must be a tuple of {channels} numbers (one per channel), got {values!r}"
                )
            for v in values:
                checks.number(v, arg, minimum=low, min_open=low is not None)
    checks.integer(spec.eval_resize, "eval_resize", minimum=max(spec.image_shape[:2]), optional=True)


def _check_source(spec):
    source = spec.source
    if not isinstance(source, SOURCES):
        raise TypeError(
            f"`source` must be a kzoo.data.TFDSSource or kzoo.data.IDXSource, got {type(source).__name__}"
        )
    if isinstance(source, IDXSource) and spec.image_shape[-1] != 1:
        raise ValueError(f"`image_shape` of an IDX dataset must have 1 channel, got {spec.image_shape!r}")
    if isinstance(source, TFDSSource) and source.train_size != spec.train_size:
        raise ValueError(
            f"`source.train_parts` must add up to train_size={spec.train_size}, got {source.train_size}"
        )


def _check_augmentation_fits(spec):
    aug = spec.augmentation
    if not isinstance(aug, Augmentation):
        raise TypeError(f"`augmentation` must be a kzoo.data.Augmentation, got {type(aug).__name__}")
    if aug.random_resized_crop is not None and spec.eval_resize is None:
        raise ValueError(
            "`eval_resize` must be set with `augmentation.random_resized_crop` (images of any "
            "size need an evaluation resize)"
        )
    if spec.eval_resize is not None and (aug.pad or aug.flip):
        raise ValueError(
            f"`augmentation.pad` and `augmentation.flip` are the augmentation of fixed-size "
            f"images; with eval_resize={spec.eval_resize} use `augmentation.random_resized_crop`, "
            f"got pad={aug.pad}, flip={aug.flip}"
        )
