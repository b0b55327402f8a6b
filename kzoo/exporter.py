"""``kzoo.export`` (this module): a trained model as a version of a TF Serving model, loadable by
``tensorflow/serving`` as it is and by ``tf.saved_model.load`` without kzoo.

``BASE/NAME/<version>/`` holds ``saved_model.pb``, ``variables/``,
``assets.extra/tf_serving_warmup_requests`` and the model card (``model_card.json``,
``model_card.md``; ``model.keras`` too on request). The version is written under a
temporary name that TF Serving ignores (``.tmp-<version>-<host>-<pid>-XXXX``, which says
whose it is, so a later export removes it once its process is dead) and renamed into
place without replacing anything (``renameat2(RENAME_NOREPLACE)``), so a polling server
never sees half of it, and an existing version is never replaced.

Only image classifiers are exported: one image input ``[batch, H, W, C]`` and one
output ``[batch, classes]`` that is a softmax over the classes. A model ending in
logits (a linear classifier, e.g. ``classifier_activation=None``) is refused unless
``apply_softmax=True``, which puts the softmax into the graph (and says so in the
card); a model ending in another activation (sigmoid, ...) is refused. Where the layers
do not tell (a custom or subclassed last layer), the model is run on a few random
images: rows of non-negative numbers summing to 1 are probabilities, anything else is
taken for logits. Every check that needs no model is made before the model is loaded.

Signatures (no float16/bfloat16 anywhere, so the REST JSON codec carries them all):

* ``serving_default``: ``images``, uint8 ``[batch, height, width, channels]``;
* ``image_bytes``: ``image_bytes``, string ``[batch]`` of encoded JPEG/PNG/BMP/GIF.

Both apply the dataset's evaluation preprocessing inside the graph (resizing when the
size differs from the model's, then the training normalisation) and return
``probabilities`` (float32 ``[batch, classes]``), ``classes`` (int32 ``[batch, k]``,
the top-k class ids, best first) and ``scores`` (their probabilities).
"""

import ctypes
import dataclasses
import datetime
import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
import zipfile

from kzoo import checks

IMAGES = "images"
IMAGE_BYTES = "image_bytes"
BYTES_SIGNATURE = "image_bytes"
WARMUP_FILE = "tf_serving_warmup_requests"
CARD_KEYS = ("model", "model_kwargs", "dataset", "protocol", "epochs", "test_top1", "test_top5",
             "test_loss", "params", "train_seconds", "train_images_per_s", "precision",
             "hardware", "versions", "command", "seed")
VERSION_MAX = 2**63 - 1  # TF Serving reads a version directory's name as an int64
NAME_MAX = 255  # bytes in a directory name (ext4, xfs, ...)
STALE_AGE_S = 24 * 3600  # a temporary folder whose owner cannot be asked is removed after this
PROBE_IMAGES = 4
# How far from 1 a row of probabilities may sum, by the dtype it was computed in.
PROBE_TOLERANCE = {"float64": 1e-3, "float32": 1e-3, "float16": 1e-2, "bfloat16": 3e-2}
SOFTMAX_APPLIED = "softmax applied at export (the model outputs logits)"
SOFTMAX_IN_MODEL = "softmax (the model's own)"


@dataclasses.dataclass
class ExportResult:
    """Where the version went and what its card says."""

    path: str
    version: int
    card: dict


# ----------------------------------------------------------------------------- checks

def _check_name(name):
    """A name TF Serving can use: a directory name that is also a URL path segment
    (``/v1/models/NAME:predict``) and is not hidden (``.tmp-*`` is kzoo's own)."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a plain directory name (a string), got {name!r}")
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    problem = (
        "it is empty" if not name.strip() else
        "it starts with '.' (hidden, and '.tmp-*' is kzoo's own)" if name.startswith(".") else
        "it has a path separator" if any(s in name for s in seps) else
        "it has a NUL or control character" if any(ord(c) < 32 or ord(c) == 127 for c in name) else
        "it starts or ends with whitespace" if name != name.strip() else
        "it has ':' (TF Serving's REST API reads NAME:predict)" if ":" in name else
        f"it is longer than {NAME_MAX} bytes" if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX else
        None)
    if problem:
        raise ValueError(f"`name` must be a plain directory name TF Serving can use; {problem}: "
                         f"got {name!r}")
    return name


def _model_dir(base_dir, name):
    folder = os.path.join(base_dir, name)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ValueError(f"`name`={name!r}: {folder!r} is a file, not a model directory")
    checks.writable_dir(folder, "base_dir/name")
    return folder


def versions(model_dir):
    """The integer versions already in ``model_dir`` (what TF Serving would serve)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir)
                  if n.isascii() and n.isdigit() and os.path.isdir(os.path.join(model_dir, n)))


def _load_keras(path):
    """The model in the ``.keras`` file ``path``, or a kzoo error naming it."""
    from kzoo.models.common import load_model

    checks.require_file(path, "`model`")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"`model`={path!r} is not a Keras archive (a .keras file is a zip "
                         "written by model.save)")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise ValueError(f"`model`={path!r} is not a Keras archive (a zip without config.json)")
    try:
        return load_model(path)
    except Exception as err:  # keras raises many kinds for a damaged or foreign archive
        raise ValueError(f"`model`={path!r} could not be loaded as a Keras model "
                         f"({type(err).__name__}: {err})") from None


def _source(model, dataset):
    """(keras model, run record or {}, dataset) from a model, a .keras file or a run dir."""
    import keras

    record = {}
    if isinstance(model, (str, os.PathLike)) and not isinstance(model, bytes):
        path = checks.path(model, "model")
        if os.path.isdir(path):
            fix = "export its last.keras with `dataset` given instead, or train the run again"
            config = os.path.join(path, "config.json")
            if os.path.lexists(config):
                record.update(checks.read_json(config, "the run's config", fix))
            metrics = os.path.join(path, "metrics.json")
            if not os.path.lexists(metrics):
                raise ValueError(f"run directory {path!r} is not finished (no metrics.json); "
                                 "finish it with the same `kzoo train` command first")
            record.update(checks.read_json(metrics, "the run's metrics", fix))
            if not os.path.lexists(config):
                checks.require_file(config, "the run's config")
            if "test_top1" not in record:
                raise ValueError(f"run directory {path!r} is not finished ({metrics!r} has no "
                                 "test_top1); finish it with the same `kzoo train` command first")
            record.pop("protocol_fields", None)
            record["source"] = os.path.abspath(path)
            path = checks.require_file(os.path.join(path, "last.keras"), "the run's last model")
        elif not os.path.lexists(path):
            raise FileNotFoundError(f"`model`={path!r} does not exist (expected a .keras file or a "
                                    "finished run directory)")
        elif not path.endswith(".keras"):
            raise ValueError(f"`model` must be a keras.Model, a .keras file or a run directory, got {path!r}")
        model = _load_keras(path)
    elif not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, a .keras file or a run directory, got {model!r}")
    _check_io(model)
    dataset = dataset or record.get("dataset")
    if dataset is None:
        raise ValueError("`dataset` is needed to know the model's preprocessing (e.g. 'fashion_mnist')")
    return model, record, dataset


def _check_io(model):
    """One image input and one ``[batch, classes]`` output, known before anything is traced."""
    expected = "one image input [batch, H, W, C] and one output [batch, classes]"
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(f"`model` is not built, or is a subclassed model whose input is not known: "
                         f"kzoo exports image classifiers with {expected}; build a functional model "
                         "(e.g. keras.Model(inputs, net(inputs))) before exporting")
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise ValueError(f"kzoo exports image classifiers with {expected}; this model takes "
                         f"{len(shapes)} input(s) of shape {', '.join(map(str, shapes))}")
    outputs = model.outputs or []
    shapes = [tuple(t.shape) for t in outputs]
    if len(outputs) != 1 or len(shapes[0]) != 2 or shapes[0][-1] is None:
        what = ("a per-pixel / spatial output" if len(shapes) == 1 and len(shapes[0]) == 4 else
                f"{len(shapes)} outputs" if len(shapes) != 1 else "an output of another shape")
        raise ValueError(f"kzoo exports image classifiers with {expected}; this model has {what}: "
                         f"{', '.join(map(str, shapes)) or 'none'}")


def _input_size(model, info):
    shape = tuple(model.inputs[0].shape[1:])
    shape = tuple(s if s is not None else d for s, d in zip(shape, info.image_shape))
    if shape[-1] != info.image_shape[-1]:
        raise ValueError(f"the model takes {shape[-1]} channels but dataset {info.name!r} has "
                         f"{info.image_shape[-1]}")
    return shape


# ----------------------------------------------------------------------------- classifier

_TRANSPARENT = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
                "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Identity", "Cast")


def _final_activation(tensor):
    """What the layers say ``tensor`` is: ("softmax" | "logits" | "other" | "unknown",
    a description). Steps back through layers that are the identity at inference and
    into nested models; only keras' own layers are trusted, anything else is "unknown"."""
    import keras

    for _ in range(1000):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return "unknown", "an input"
        op = history.operation
        kind, module = type(op).__name__, type(op).__module__
        where = f"{kind} {getattr(op, 'name', '')!r}"
        if not module.startswith("keras."):
            return "unknown", f"custom {where}"
        if isinstance(op, keras.Model):
            inner = getattr(op, "outputs", None)
            if not inner:
                return "unknown", f"subclassed {where}"
            tensor = inner[history.tensor_index]
            continue
        activation = getattr(op, "activation", None) if isinstance(op, keras.layers.Layer) else None
        linear = activation is None or activation is keras.activations.linear
        if kind in _TRANSPARENT or (kind == "Activation" and linear):
            node = op._inbound_nodes[history.node_index]
            if len(node.input_tensors) != 1:
                return "unknown", where
            tensor = node.input_tensors[0]
            continue
        if kind == "Softmax":  # the layer, or keras.ops.softmax in a functional graph
            axis = getattr(op, "axis", -1)
            if axis in (-1, 1, [-1], [1], (-1,), (1,)):
                return "softmax", where
            return "other", f"{where} over axis {axis}, not over the classes"
        if callable(activation):
            fn = getattr(activation, "__name__", "")
            keras_fn = getattr(activation, "__module__", "").startswith("keras.")
            if activation is keras.activations.softmax or (fn == "softmax" and keras_fn):
                return "softmax", f"{where} with activation softmax"
            if linear:
                return "logits", f"{where} with no activation"
            if keras_fn:
                return "other", f"{where} with activation {fn}"
            return "unknown", f"{where} with a custom activation"
        if module.startswith("keras.src.layers.activations"):  # ReLU, LeakyReLU, ELU, PReLU
            return "other", where
        return "unknown", where
    return "unknown", "a graph too deep to follow"


def _probe(model, info, shape):
    """Run the model on a few random images: (are its rows probabilities?, what was seen)."""
    import numpy as np
    import tensorflow as tf

    from kzoo import data

    images = np.random.default_rng(0).integers(0, 256, (PROBE_IMAGES, *shape), dtype=np.uint8)
    x = data.prepare_for_model(tf.constant(images, tf.float32), info.name, shape[:2])
    out = np.asarray(tf.cast(model(x, training=False), tf.float32))
    dtypes = (str(model.outputs[0].dtype), model.dtype_policy.compute_dtype)
    tolerance = max(PROBE_TOLERANCE.get(d, PROBE_TOLERANCE["bfloat16"]) for d in dtypes)
    if not np.all(np.isfinite(out)):
        return False, "non-finite values"
    sums = out.sum(axis=1)
    seen = f"values in [{out.min():.3g}, {out.max():.3g}], rows summing to {sums.min():.4g}..{sums.max():.4g}"
    return bool(out.min() >= -tolerance and np.all(np.abs(sums - 1) <= tolerance)), seen


def _classifier(model, info, shape, apply_softmax):
    """The card's "classifier" line for ``model``, or a ValueError when its output would
    not be served as probabilities (a softmax over the classes)."""
    kind, where = _final_activation(model.outputs[0])
    logits = ("the model outputs logits ({why}); pass `apply_softmax=True` (kzoo export "
              "--apply-softmax) to export softmax(logits) as its probabilities")
    if kind == "other":
        raise ValueError(f"the model ends in {where}; kzoo serves `probabilities`, which must be a "
                         "softmax over the classes: export a model ending in softmax, or in logits "
                         "(no activation) with `apply_softmax=True`")
    if kind == "logits":
        if not apply_softmax:
            raise ValueError(logits.format(why=f"it ends in {where}"))
        return SOFTMAX_APPLIED
    if kind == "softmax" and apply_softmax:
        raise ValueError(f"`apply_softmax=True`, but the model already ends in softmax ({where}); a "
                         "double softmax would flatten its probabilities: leave `apply_softmax` out")
    probabilities, seen = _probe(model, info, shape)
    if kind == "softmax":
        if not probabilities:
            raise ValueError(f"the model ends in softmax ({where}), but on random images its outputs "
                             f"are not probabilities ({seen}); nothing was exported")
        return SOFTMAX_IN_MODEL
    # "unknown": the probe decides.
    if probabilities and apply_softmax:
        raise ValueError(f"`apply_softmax=True`, but the model's outputs are already probabilities on "
                         f"random images ({seen}; it ends in {where}): a double softmax would flatten "
                         "them; leave `apply_softmax` out")
    if not probabilities:
        if not apply_softmax:
            raise ValueError(logits.format(why=f"it ends in {where}, and on random images its outputs "
                                               f"are not probabilities: {seen}"))
        return SOFTMAX_APPLIED
    return SOFTMAX_IN_MODEL


def _probabilities(model, x, apply_softmax):
    import tensorflow as tf

    out = tf.cast(model(x, training=False), tf.float32)
    return tf.nn.softmax(out, axis=-1) if apply_softmax else out


# ----------------------------------------------------------------------------- graph

def _serving_functions(model, info, shape, top_k, apply_softmax=False):
    """The two signature functions (plain ``tf.function``s closing over ``model``)."""
    import tensorflow as tf

    from kzoo import data

    height, width, channels = shape

    def outputs(images):  # float32 [batch, h, w, c] on the 0-255 scale
        x = data.prepare_for_model(images, info.name, (height, width))
        probabilities = _probabilities(model, x, apply_softmax)
        scores, ids = tf.math.top_k(probabilities, k=top_k)
        return {"probabilities": probabilities, "classes": tf.cast(ids, tf.int32), "scores": scores}

    expected = f"uint8 [batch, height, width, {channels}] (the model sees {height}x{width}x{channels})"

    def serve_images(images):
        rank_ok = tf.equal(tf.rank(images), 4)
        channels_ok = tf.reduce_all(tf.equal(tf.shape(images)[-1:], channels))  # safe at any rank
        message = tf.where(rank_ok, f"`images` must be {expected}; wrong channel count",
                           f"`images` must be {expected}; wrong rank")
        images = _require(images, tf.logical_and(rank_ok, channels_ok), message,
                          [None, None, None, channels])
        return outputs(tf.cast(images, tf.float32))

    def decode(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        return data.resize_for_model(tf.cast(image, tf.float32), info.name, (height, width))

    def serve_bytes(image_bytes):
        image_bytes = _require(image_bytes, tf.equal(tf.rank(image_bytes), 1),
                               "`image_bytes` must be a string [batch] of encoded images", [None])
        images = tf.map_fn(decode, image_bytes,
                           fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))
        return outputs(images)

    return (
        # Unknown rank on purpose: a served SavedModel does not enforce its signature's
        # shapes, so the graph checks them itself and says what it expected.
        (serve_images, [tf.TensorSpec(None, tf.uint8, name=IMAGES)]),
        (serve_bytes, [tf.TensorSpec(None, tf.string, name=IMAGE_BYTES)]),
    )


def _require(x, ok, message, shape):
    """``x`` with static ``shape`` once ``ok`` holds at run time, else an
    InvalidArgumentError saying ``message``. No ``ensure_shape`` here: Grappler would
    use it to fold ``tf.rank(x)`` to the expected rank and the check would pass."""
    import tensorflow as tf

    with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
        x = tf.identity(x)
    x.set_shape(shape)
    return x


def _write_saved_model(model, folder, functions):
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    (serve_images, images_spec), (serve_bytes, bytes_spec) = functions
    archive.add_endpoint("serving_default", serve_images, input_signature=images_spec)
    archive.add_endpoint(BYTES_SIGNATURE, serve_bytes, input_signature=bytes_spec)
    archive.write_out(folder, verbose=False)


def _write_warmup(folder, name, shape):
    """``assets.extra/tf_serving_warmup_requests``: PredictionLog records TF Serving
    replays at load time, one per signature (batches of 1 and 8 images, one PNG)."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    os.makedirs(os.path.join(folder, "assets.extra"), exist_ok=True)
    grey = np.full((1, *shape), 128, np.uint8)
    png = tf.io.encode_png(grey[0]).numpy()
    requests = [("serving_default", IMAGES, tf.make_tensor_proto(grey)),
                ("serving_default", IMAGES, tf.make_tensor_proto(np.repeat(grey, 8, axis=0))),
                (BYTES_SIGNATURE, IMAGE_BYTES, tf.make_tensor_proto([png], dtype=tf.string))]
    path = os.path.join(folder, "assets.extra", WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, key, tensor in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
            request.inputs[key].CopyFrom(tensor)
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(requests)


def _verify(model, folder, info, shape, apply_softmax=False):
    """Load the written SavedModel and compare it with the Keras model on random
    images: an export that would serve different answers is not published."""
    import numpy as np
    import tensorflow as tf

    from kzoo import data

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
    loaded = tf.saved_model.load(folder)
    served = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    x = data.prepare_for_model(tf.constant(images, tf.float32), info.name, shape[:2])
    expected = np.asarray(_probabilities(model, x, apply_softmax))
    tolerance = 1e-2 if model.dtype_policy.compute_dtype != "float32" else 1e-5
    if not np.allclose(served, expected, atol=tolerance):
        raise RuntimeError(f"the exported SavedModel disagrees with the Keras model (max difference "
                           f"{np.abs(served - expected).max():.3g}); nothing was published")


# ----------------------------------------------------------------------------- card

def model_card(model, record, info, shape, name, version, top_k, classifier=SOFTMAX_IN_MODEL):
    """What a user of the export needs to know, from the run that trained it."""
    import keras

    import kzoo
    from kzoo.models.common import trainable_params

    card = {key: record[key] for key in CARD_KEYS if key in record}
    card.setdefault("model", model.name)
    card.setdefault("params", trainable_params(model))
    card.setdefault("dataset", info.name)
    card.update({
        "name": name, "version": version,
        "input": {"signature": "serving_default", "name": IMAGES, "dtype": "uint8",
                  "shape": [None, *shape], "bytes_signature": BYTES_SIGNATURE,
                  "bytes_input": IMAGE_BYTES},
        "outputs": {"probabilities": f"float32 [batch, {model.outputs[0].shape[-1]}]"
                                     + (f", {SOFTMAX_APPLIED}" if classifier == SOFTMAX_APPLIED else ""),
                    "classes": f"int32 [batch, {top_k}]",
                    "scores": f"float32 [batch, {top_k}]"},
        "classifier": classifier,
        "preprocessing": _preprocessing_text(info, shape),
        "compute_dtype": model.dtype_policy.compute_dtype,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exported_with": {"kzoo": kzoo.__version__, "keras": keras.__version__},
    })
    if "source" in record:
        card["run_dir"] = record["source"]
    return card


def _preprocessing_text(info, shape):
    norm = ("pixels / 255" if info.mean is None else
            f"(pixels - {list(info.mean)}) / {list(info.std)} per channel, on the 0-255 scale")
    resize = ("shorter side to 256, centre crop 224" if info.name == "imagenet2012"
              else f"bilinear resize to {shape[0]}x{shape[1]}")
    return f"inside the graph: {resize} when the size differs, then {norm}"


def _card_markdown(card):
    def fmt(value, spec=".4f"):
        return "-" if value is None else format(value, spec)

    if "model_kwargs" in card:
        options = ", ".join(f"{k}={v!r}" for k, v in card["model_kwargs"].items()) or "none (the original network)"
    else:
        options = "not recorded"
    if card.get("protocol"):
        headline = f"{card['model']} trained on {card['dataset']} under the `{card['protocol']}` protocol."
    else:
        headline = f"{card['model']} with {card['dataset']}'s preprocessing; no training record."
    seconds = card.get("train_seconds")
    lines = [
        f"# {card['name']} (version {card['version']})", "", headline, "",
        "| | |", "|---|---|",
        f"| architecture | `{card['model']}` |",
        f"| placement options | {options} |",
        f"| test top-1 | {fmt(card.get('test_top1'))} |",
        f"| test top-5 | {fmt(card.get('test_top5'))} |",
        f"| test cross-entropy | {fmt(card.get('test_loss'))} |",
        f"| trainable parameters | {card['params']:,} |",
        f"| epochs | {card.get('epochs', '-')} |",
        f"| training time | {'-' if seconds is None else f'{seconds:.0f} s'} |",
        f"| precision | {card.get('precision', card['compute_dtype'])} |",
        f"| hardware | {json.dumps(card.get('hardware', '-'))} |",
        f"| versions | {json.dumps(card.get('versions', card['exported_with']))} |",
        "", "## Serving", "",
        f"`serving_default` takes `{IMAGES}`: uint8 `{card['input']['shape']}`; "
        f"`{BYTES_SIGNATURE}` takes `{IMAGE_BYTES}`: a string batch of encoded images. "
        f"Preprocessing is {card['preprocessing']}. Classifier: {card.get('classifier', '-')}. Outputs: "
        + ", ".join(f"`{k}` {v}" for k, v in card["outputs"].items()) + ".", "",
        "## Reproduce", "",
        "```sh", card.get("command", "(not recorded: the model was not trained by kzoo.train)"), "```", "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- publication

_TMP = re.compile(r"\.tmp-(\d+)-([A-Za-z0-9._]+)-(\d+)-[A-Za-z0-9_]+")
_OLD_TMP = re.compile(r"\.tmp-\d+-[A-Za-z0-9_]+")  # kzoo's earlier, ownerless name
AT_FDCWD = -100
RENAME_NOREPLACE = 1


def _host():
    """This host (and PID namespace: containers may share a hostname) as a name token."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
    try:
        host += f"_ns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        pass
    return host


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # another user's, or not a pid we can ask about
        return True
    return True


def _remove_stale_tmp(folder):
    """Remove the temporary folders of exports killed before they finished: this host's
    whose process is gone, and those whose owner cannot be asked (another host's, or an
    old-style name) once older than STALE_AGE_S. A live export's folder is never touched."""
    host, now = _host(), time.time()
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        match = _TMP.fullmatch(entry)
        if not (match or _OLD_TMP.fullmatch(entry)) or os.path.islink(path) or not os.path.isdir(path):
            continue
        if match and match.group(2) == host:
            stale = not _alive(int(match.group(3)))
        else:
            try:
                stale = now - os.stat(path).st_mtime > STALE_AGE_S
            except OSError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)


def _renameat2():
    """libc's renameat2, or None where there is none (not Linux, old glibc, musl)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _rename_noreplace(src, dst):
    """Rename ``src`` to ``dst``, a FileExistsError if ``dst`` exists, even as an empty
    directory (which a plain ``os.rename`` silently replaces)."""
    fn = _renameat2()
    if fn is not None:
        if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS):
            raise (FileExistsError if err in (errno.EEXIST, errno.ENOTEMPTY) else OSError)(
                err, os.strerror(err), dst)
    # No renameat2, or a file system without RENAME_NOREPLACE: check, then rename; this
    # leaves a race between the two (a folder made in between is replaced if empty).
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


# ----------------------------------------------------------------------------- export

def export(model, base_dir, name=None, *, version=None, dataset=None, top_k=5, keras_file=False,
           warmup=True, verify=True, apply_softmax=False):
    """Export ``model`` (a keras.Model, a ``.keras`` file, or a finished run directory,
    whose ``last.keras`` is exported with its metrics in the card) to
    ``base_dir/name/<version>/`` for TF Serving, and return an ``ExportResult``.

    ``name`` defaults to the model's name; ``version`` to one more than the highest
    present (an existing version is refused, never replaced). ``dataset`` (default: the
    run's) sets the preprocessing built into the graph. ``top_k`` ids are returned per
    image. ``keras_file`` adds ``model.keras``; ``warmup`` writes TF Serving's warm-up
    requests; ``verify`` reloads the SavedModel and checks it against the Keras model
    before the version appears. ``apply_softmax`` exports softmax(outputs) of a model
    that ends in logits (one that ends in softmax is refused with it, and without it a
    logits model is refused: it would serve logits as "probabilities").
    """
    from kzoo import data

    # What needs no model first: a bad argument fails before anything is loaded or written.
    try:
        version = checks.integer(version, "version", minimum=1, maximum=VERSION_MAX, optional=True)
    except ValueError as err:
        raise ValueError(f"{err} (TF Serving's version directory, read as an int64)") from None
    top_k = checks.integer(top_k, "top_k", minimum=1)
    for value, arg in ((keras_file, "keras_file"), (warmup, "warmup"), (verify, "verify"),
                       (apply_softmax, "apply_softmax")):
        checks.boolean(value, arg)
    if name is not None:
        _check_name(name)
    base_dir = checks.writable_dir(base_dir, "base_dir")
    if name is not None:
        _model_dir(base_dir, name)
    if dataset is not None:
        info = data.dataset_info(dataset)
        _check_top_k(top_k, info.classes, f"dataset {info.name!r}")

    model, record, dataset = _source(model, dataset)
    info = data.dataset_info(dataset)
    if name is None:
        try:
            name = _check_name(model.name)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{err} (the model's name, the default): pass `name`") from None
    folder = _model_dir(base_dir, name)
    shape = _input_size(model, info)
    classes = model.outputs[0].shape[-1]
    if classes != info.classes:
        raise ValueError(f"the model predicts {classes} classes but dataset "
                         f"{info.name!r} has {info.classes}")
    _check_top_k(top_k, classes, "the model")
    classifier = _classifier(model, info, shape, apply_softmax)
    present = versions(folder)
    if version is None:
        version = (present[-1] if present else 0) + 1
        if version > VERSION_MAX:
            raise ValueError(f"{name!r} already has version {present[-1]}, TF Serving's largest "
                             "(2**63-1): pass an unused `version`")
    target = os.path.join(folder, str(version))
    if version in present or os.path.lexists(target):
        raise ValueError(f"version {version} of {name!r} already exists at {target!r}; kzoo never "
                         "overwrites a version: pass another `version` or leave it out for the next one")

    os.makedirs(folder, exist_ok=True)
    _remove_stale_tmp(folder)
    # Not an integer, so TF Serving skips it; the name says whose it is (_remove_stale_tmp).
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-{_host()}-{os.getpid()}-", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the version from a server's user
    try:
        _write_saved_model(model, tmp, _serving_functions(model, info, shape, top_k, apply_softmax))
        if warmup:
            _write_warmup(tmp, name, shape)
        if keras_file:
            model.save(os.path.join(tmp, "model.keras"))
        card = model_card(model, record, info, shape, name, version, top_k, classifier)
        with open(os.path.join(tmp, "model_card.json"), "w") as f:
            json.dump(card, f, indent=2, default=str)
        with open(os.path.join(tmp, "model_card.md"), "w") as f:
            f.write(_card_markdown(card))
        if verify:
            _verify(model, tmp, info, shape, apply_softmax)
        try:
            _rename_noreplace(tmp, target)
        except FileExistsError:
            raise ValueError(f"version {version} appeared while exporting; nothing was replaced "
                             f"({target!r} was made meanwhile, not by this export of {name!r})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(target, version, card)


def _check_top_k(top_k, classes, what):
    if top_k > classes:
        raise ValueError(f"`top_k` must be at most the class count: {what} has {classes} classes, "
                         f"got top_k={top_k}")
