"""The client side of TF Serving's REST predict API: the JSON body a client posts to
``/v1/models/NAME:predict`` (the row format, binary strings as ``{"b64": ...}``)."""

import base64

import numpy as np

from kzoo.serving.rest_errors import short

DEFAULT_SIGNATURE = "serving_default"


def encode_bytes(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def request(images=None, image_bytes=None, signature=None):
    """The JSON body (a dict) of a row-format predict request: ``images`` a uint8 array
    ``[batch, H, W, C]`` for ``serving_default``, or ``image_bytes`` a list of encoded
    images for the ``image_bytes`` signature."""
    if (images is None) == (image_bytes is None):
        raise ValueError("give exactly one of `images` and `image_bytes`")
    if signature is not None and not isinstance(signature, str):
        raise TypeError(f"`signature` must be a signature name (a string) or None, got {short(signature)}")
    expected = "a uint8 array [batch, height, width, channels]"
    if images is not None:
        if isinstance(images, (str, bytes, dict)):
            raise TypeError(f"`images` must be {expected}, got {short(images)}")
        try:
            images = np.asarray(images)
        except (ValueError, TypeError) as err:  # ragged lists, objects numpy cannot hold
            raise TypeError(
                f"`images` must be {expected}, got a value numpy cannot make an array of ({err})"
            ) from None
        if images.dtype != np.uint8:
            raise TypeError(f"`images` must be {expected}, got dtype {images.dtype}")
        if images.ndim != 4:
            raise ValueError(f"`images` must be {expected}, got shape {images.shape}")
        if images.shape[0] == 0:
            raise ValueError(f"`images` must hold at least one image, got shape {images.shape}")
        if 0 in images.shape[1:]:
            raise ValueError(
                f"`images` must have non-zero height, width and channels, got shape {images.shape}"
            )
        return {"signature_name": signature or DEFAULT_SIGNATURE, "instances": images.tolist()}
    if not isinstance(image_bytes, (list, tuple)):
        raise TypeError(
            f"`image_bytes` must be a list of bytes objects (encoded images), got {short(image_bytes)}"
        )
    if not image_bytes:
        raise ValueError("`image_bytes` must hold at least one encoded image, got an empty list")
    for i, item in enumerate(image_bytes):
        if not isinstance(item, bytes):
            raise TypeError(
                f"`image_bytes` must be a list of bytes objects (encoded images), got "
                f"{short(item)} at index {i}"
            )
        if not item:
            raise ValueError(f"`image_bytes` must hold encoded images, got empty bytes at index {i}")
    return {"signature_name": signature or "image_bytes", "instances": [encode_bytes(b) for b in image_bytes]}
