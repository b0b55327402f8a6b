"""A version kzoo exported as a SavedModel, back as the Keras model it was exported
from: the architecture from its model card, the weights from its variables. This is how
a published SavedModel gets its ONNX and LiteRT companions when the run that trained it
is not at hand. Every variable must match the rebuilt model's by name and shape, and the
rebuilt model must answer as the SavedModel does, or the version is refused.

Its files are checked before TensorFlow reads them (``read_version``), so that a version
copied without ``variables/``, a truncated ``saved_model.pb`` or a damaged card is refused
with the file named and what was expected, never with TensorFlow's reader errors.
"""

import os
import re

import numpy as np

from kzoo import checks
from kzoo.serving.card import CARD_JSON, CARD_KEYS
from kzoo.serving.classifier import SOFTMAX_APPLIED
from kzoo.serving.verification import keras_probabilities

SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
MATCH_TOLERANCE = 1e-5
_SHARD = re.compile(r"variables\.data-(\d+)-of-(\d+)")
_FIX = "export it again from its run or .keras file, or copy the whole version folder again"


def is_saved_model(path):
    """Whether the folder ``path`` is meant as a SavedModel version (it has ``saved_model.pb``,
    as a file or, damaged, as anything else)."""
    return os.path.lexists(os.path.join(path, SAVED_MODEL_FILE))


def read_version(path):
    """The model card of the SavedModel version ``path``, once its files are checked: the
    protobuf whole, the variables there, the card one kzoo wrote for a model it can build."""
    _check_protobuf(path)
    _check_variables(path)
    card_path = os.path.join(path, CARD_JSON)
    fix = "only versions kzoo exported (with their model_card.json) can be read back"
    card = checks.read_json(checks.require_file(card_path, "the version's model card"), "the model card", fix)
    if card.get("format", "saved_model") != "saved_model" or "model_kwargs" not in card:
        raise ValueError(f"{card_path!r} does not describe a kzoo-built SavedModel (no model_kwargs); {fix}")
    shape = card.get("input", {}).get("shape") if isinstance(card.get("input"), dict) else None
    problem = (
        "`model` is not an architecture name"
        if not isinstance(card.get("model"), str)
        else "`model_kwargs` is not an object"
        if not isinstance(card["model_kwargs"], dict)
        else "`dataset` is not a dataset name"
        if not isinstance(card.get("dataset"), str)
        else "`input.shape` is not [null, H, W, C]"
        if not (
            isinstance(shape, list)
            and len(shape) == 4
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape[1:])
        )
        else None
    )
    if problem:
        raise ValueError(f"the model card {card_path!r} is damaged ({problem}); {_FIX}")
    return card


def _check_protobuf(path):
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    file = os.path.join(path, SAVED_MODEL_FILE)
    what = f"the SavedModel version's graph {file!r}"
    if not os.path.isfile(file):
        raise ValueError(f"{what} is not a file (a SavedModel version holds {SAVED_MODEL_FILE} as a file)")
    with open(file, "rb") as f:
        content = f.read()
    parsed = saved_model_pb2.SavedModel()
    try:
        parsed.ParseFromString(content)
    except DecodeError:
        parsed = None
    if not content or parsed is None or not parsed.meta_graphs:
        state = "is empty" if not content else "is truncated or damaged (not a SavedModel protobuf)"
        raise ValueError(f"{what} {state}; {_FIX}")


def _check_variables(path):
    """``variables/`` with its index and every data shard the index's name promises."""
    folder = os.path.join(path, VARIABLES_DIR)
    if not os.path.lexists(folder):
        raise FileNotFoundError(
            f"the SavedModel version {path!r} has no {VARIABLES_DIR}/ folder (its weights); {_FIX}"
        )
    if not os.path.isdir(folder):
        raise ValueError(f"{folder!r} is a file; a SavedModel version holds its weights in a folder there")
    checks.require_file(os.path.join(folder, "variables.index"), "the SavedModel version's variable index")
    shards = [m for m in map(_SHARD.fullmatch, os.listdir(folder)) if m]
    expected = int(shards[0].group(2)) if shards else 1
    missing = sorted(set(range(expected)) - {int(m.group(1)) for m in shards if int(m.group(2)) == expected})
    if missing:
        names = ", ".join(f"variables.data-{i:05d}-of-{expected:05d}" for i in missing)
        raise FileNotFoundError(f"the SavedModel version {path!r} lacks {names} in {VARIABLES_DIR}/; {_FIX}")


def load_version(path, card):
    """(keras model, record for the new card) from the SavedModel version ``path``, whose
    card ``read_version`` returned."""
    import tensorflow as tf

    import kzoo

    shape = tuple(card["input"]["shape"][1:])
    try:
        loaded = tf.saved_model.load(path)
        classes = loaded.signatures["serving_default"].structured_outputs["probabilities"].shape[-1]
        stored = {v.name.split(":")[0]: v for v in loaded.variables}
    except Exception as err:  # TensorFlow raises many kinds for a damaged checkpoint or graph
        raise ValueError(
            f"the SavedModel version {path!r} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); {_FIX}"
        ) from None
    try:
        model = kzoo.create_model(card["model"], input_shape=shape, classes=classes, **card["model_kwargs"])
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the SavedModel version {path!r} holds {card['model']!r} with {card['model_kwargs']}, which "
            f"kzoo cannot build again ({err}); export from the run directory or .keras file it came from"
        ) from None
    wanted = {v.path: v for v in model.variables}
    if set(stored) != set(wanted):  # unnamed layers and seed generators are numbered per process
        stored, wanted = _by_rank(stored), _by_rank(wanted)
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


def _by_rank(variables):
    """``variables`` keyed by their path with Keras' per-process numbering (``conv2d_7``,
    ``seed_generator_3``) replaced by their rank among their kind: the same model built in
    two processes, or twice in one, gets the same keys."""
    groups = {}
    for name in variables:
        head, _, rest = name.partition("/")
        match = re.fullmatch(r"(.*?)(?:_(\d+))?", head)
        groups.setdefault((match.group(1), rest), []).append((int(match.group(2) or 0), name))
    return {
        f"{base}#{rank}/{rest}": variables[name]
        for (base, rest), members in groups.items()
        for rank, (_, name) in enumerate(sorted(members))
    }


def _check_same_answers(model, loaded, card, shape, path):
    import tensorflow as tf

    from kzoo import data

    images = np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8)
    served = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    info = data.dataset_info(card["dataset"])
    rebuilt = keras_probabilities(model, images, info, shape, card.get("classifier") == SOFTMAX_APPLIED)
    if not np.abs(served - rebuilt).max() <= MATCH_TOLERANCE:
        raise ValueError(f"the model rebuilt from {path!r} does not answer as the SavedModel does; refused")
