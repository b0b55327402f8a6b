"""A version kzoo exported as a SavedModel, back as the Keras model it was exported
from: the architecture from its model card, the weights from its variables. This is how
a published SavedModel gets its ONNX and LiteRT companions when the run that trained it
is not at hand. Every variable must match the rebuilt model's by name and shape, and the
rebuilt model must answer as the SavedModel does, or the version is refused.
"""

import os

import numpy as np

from kzoo import checks
from kzoo.serving.card import CARD_JSON, CARD_KEYS
from kzoo.serving.classifier import SOFTMAX_APPLIED
from kzoo.serving.verification import keras_probabilities

SAVED_MODEL_FILE = "saved_model.pb"
MATCH_TOLERANCE = 1e-5


def is_saved_model(path):
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


def load_version(path):
    """(keras model, record for the new card) from the SavedModel version ``path``."""
    import tensorflow as tf

    import kzoo

    card_path = os.path.join(path, CARD_JSON)
    fix = "only versions kzoo exported (with their model_card.json) can be read back"
    card = checks.read_json(checks.require_file(card_path, "the version's model card"), "the model card", fix)
    if card.get("format", "saved_model") != "saved_model" or "model_kwargs" not in card:
        raise ValueError(f"{card_path!r} does not describe a kzoo-built SavedModel (no model_kwargs); {fix}")
    shape = tuple(card["input"]["shape"][1:])
    loaded = tf.saved_model.load(path)
    classes = loaded.signatures["serving_default"].structured_outputs["probabilities"].shape[-1]
    model = kzoo.create_model(card["model"], input_shape=shape, classes=classes, **card["model_kwargs"])
    stored = {v.name.split(":")[0]: v for v in loaded.variables}
    wanted = {v.path: v for v in model.variables}
    if set(stored) != set(wanted) or any(tuple(stored[k].shape) != tuple(v.shape) for k, v in wanted.items()):
        raise ValueError(
            f"the variables of {path!r} are not those of {card['model']} with {card['model_kwargs']}: "
            f"missing {sorted(set(wanted) - set(stored))[:3]}, unexpected {sorted(set(stored) - set(wanted))[:3]}"
        )
    for key, variable in wanted.items():
        variable.assign(stored[key].numpy())
    _check_same_answers(model, loaded, card, shape, path)
    record = {key: card[key] for key in CARD_KEYS if key in card}
    record["converted_from"] = os.path.abspath(path)
    if "run_dir" in card:
        record["run_dir"] = card["run_dir"]
    return model, record


def _check_same_answers(model, loaded, card, shape, path):
    import tensorflow as tf

    from kzoo import data

    images = np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8)
    served = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    info = data.dataset_info(card["dataset"])
    rebuilt = keras_probabilities(model, images, info, shape, card.get("classifier") == SOFTMAX_APPLIED)
    if not np.abs(served - rebuilt).max() <= MATCH_TOLERANCE:
        raise ValueError(f"the model rebuilt from {path!r} does not answer as the SavedModel does; refused")
