"""The errors of kzoo's TF Serving REST codec, and how their messages quote a value.

``RestError`` is a request the server refuses; ``SavedModelError`` a ``saved_model``
argument that is none (a server with no model answers nothing); ``Invalid`` a fault
inside one value, before the caller says where it lies.
"""

import json


class RestError(ValueError):
    """A request TF Serving's REST server refuses (HTTP 400); ``body`` is its answer."""

    @property
    def body(self):
        return {"error": str(self)}


class SavedModelError(ValueError):
    """``saved_model`` is not a SavedModel (a file, unloadable)."""


class SavedModelNotFoundError(SavedModelError, FileNotFoundError):
    """``saved_model`` names nothing, or a directory without ``saved_model.pb``."""


class SavedModelTypeError(SavedModelError, TypeError):
    """``saved_model`` is neither a path nor an object from ``tf.saved_model.load``."""


class Invalid(Exception):
    """A fault inside one value, before ``predict`` says where it lies (TF Serving's
    nested ``Status``: ``code`` is what its ``ToString()`` starts with)."""

    def __init__(self, message, code="Invalid argument"):
        super().__init__(message)
        self.code = code

    def __str__(self):
        return f"{self.code}: {self.args[0]}"


_SHOW = 160  # characters of a JSON value quoted in a message


def short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def show(value):
    """A JSON value as TF Serving quotes it in a message (compact, cut when long)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = short(value)
    return text if len(text) <= _SHOW else f"{text[:_SHOW]}... ({len(text)} characters)"
