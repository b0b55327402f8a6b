"""Serving: a trained model exported as a TF Serving SavedModel, an ONNX file or a LiteRT
file (``export``, ``formats``), each verified by its own runtime before it is published
(``verification``, ``runtimes``), its model card, the model directory it is published
into, and TF Serving's REST predict API on both sides (``kzoo.serving.rest``), so an
export can be checked without the server."""

from kzoo.serving import rest
from kzoo.serving.card import CARD_KEYS, model_card
from kzoo.serving.classifier import SOFTMAX_APPLIED, SOFTMAX_IN_MODEL
from kzoo.serving.export import ExportResult, export
from kzoo.serving.formats import FORMATS
from kzoo.serving.rest import RestError, SavedModelError, SavedModelNotFoundError, SavedModelTypeError
from kzoo.serving.signatures import BYTES_SIGNATURE, FIXED_SIGNATURE, IMAGE_BYTES, IMAGES, WARMUP_FILE
from kzoo.serving.versions_dir import VERSION_MAX, versions

__all__ = [
    "BYTES_SIGNATURE",
    "CARD_KEYS",
    "ExportResult",
    "FIXED_SIGNATURE",
    "FORMATS",
    "IMAGES",
    "IMAGE_BYTES",
    "RestError",
    "SOFTMAX_APPLIED",
    "SOFTMAX_IN_MODEL",
    "SavedModelError",
    "SavedModelNotFoundError",
    "SavedModelTypeError",
    "VERSION_MAX",
    "WARMUP_FILE",
    "export",
    "model_card",
    "rest",
    "versions",
]
