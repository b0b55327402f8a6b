"""Serving: a trained model exported for TF Serving (``export``), its model card, the TF
Serving model directory it is published into, and TF Serving's REST predict API on both
sides (``kzoo.serving.rest``), so an export can be checked without the server."""

from kzoo.serving import rest
from kzoo.serving.card import CARD_KEYS, model_card
from kzoo.serving.classifier import SOFTMAX_APPLIED, SOFTMAX_IN_MODEL
from kzoo.serving.export import ExportResult, export
from kzoo.serving.rest import RestError, SavedModelError, SavedModelNotFoundError, SavedModelTypeError
from kzoo.serving.signatures import BYTES_SIGNATURE, IMAGE_BYTES, IMAGES, WARMUP_FILE
from kzoo.serving.versions_dir import VERSION_MAX, versions

__all__ = [
    "BYTES_SIGNATURE",
    "CARD_KEYS",
    "ExportResult",
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
