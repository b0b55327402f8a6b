"""``kzoo.export`` (this module): a trained model as a version of a TF Serving model, loadable by
``tensorflow/serving`` as it is and by ``tf.saved_model.load`` without kzoo.

``BASE/NAME/<version>/`` holds ``saved_model.pb``, ``variables/``,
``assets.extra/tf_serving_warmup_requests`` and the model card (``model_card.json``,
``model_card.md``; ``model.keras`` too on request). The version is written under a
temporary name that TF Serving ignores (not an integer) and renamed into place, so a
polling server never sees half of it, and an existing version is never replaced.

Signatures (no float16/bfloat16 anywhere, so the REST JSON codec carries them all):

* ``serving_default``: ``images``, uint8 ``[batch, height, width, channels]``;
* ``image_bytes``: ``image_bytes``, string ``[batch]`` of encoded JPEG/PNG/BMP/GIF.

Both apply the dataset's evaluation preprocessing inside the graph (resizing when the
size differs from the model's, then the training normalisation) and return
``probabilities`` (float32 ``[batch, classes]``), ``classes`` (int32 ``[batch, k]``,
the top-k class ids, best first) and ``scores`` (their probabilities).
"""

import dataclasses
import datetime
import json
import os
import shutil
import tempfile

IMAGES = "images"
IMAGE_BYTES = "image_bytes"
BYTES_SIGNATURE = "image_bytes"
WARMUP_FILE = "tf_serving_warmup_requests"
CARD_KEYS = ("model", "model_kwargs", "dataset", "protocol", "epochs", "test_top1", "test_top5",
             "test_loss", "params", "train_seconds", "train_images_per_s", "precision",
             "hardware", "versions", "command", "seed")


@dataclasses.dataclass
class ExportResult:
    """Where the version went and what its card says."""

    path: str
    version: int
    card: dict


# ----------------------------------------------------------------------------- checks

def _check_version(version):
    if version is None:
        return
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"`version` must be a positive integer (TF Serving's version directory), "
                        f"got {version!r}")
    if version < 1:
        raise ValueError(f"`version` must be a positive integer, got {version}")


def _check_name(name):
    if not isinstance(name, str) or not name or name in (".", "..") or os.sep in name:
        raise ValueError(f"`name` must be a plain directory name, got {name!r}")


def _model_dir(base_dir, name):
    if not isinstance(base_dir, (str, os.PathLike)):
        raise TypeError(f"`base_dir` must be a path, got {base_dir!r}")
    base_dir = os.fspath(base_dir)
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise ValueError(f"`base_dir`={base_dir!r} is a file, not a directory")
    folder = os.path.join(base_dir, name)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{folder!r} is a file, not a model directory")
    return folder


def versions(model_dir):
    """The integer versions already in ``model_dir`` (what TF Serving would serve)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir)
                  if n.isdigit() and os.path.isdir(os.path.join(model_dir, n)))


def _source(model, dataset):
    """(keras model, run record or {}, dataset) from a model, a .keras file or a run dir."""
    import keras

    from kzoo.models.common import load_model

    record = {}
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if os.path.isdir(path):
            for file in ("config.json", "metrics.json"):
                if os.path.exists(os.path.join(path, file)):
                    with open(os.path.join(path, file)) as f:
                        record.update(json.load(f))
            if "test_top1" not in record:
                raise ValueError(f"run directory {path!r} is not finished (no metrics.json); "
                                 "finish it with the same `kzoo train` command first")
            record.pop("protocol_fields", None)
            record["source"] = os.path.abspath(path)
            path = os.path.join(path, "last.keras")
        elif not path.endswith(".keras"):
            raise ValueError(f"`model` must be a keras.Model, a .keras file or a run directory, got {path!r}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"`model`: {path!r} does not exist")
        model = load_model(path)
    elif not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model, a .keras file or a run directory, got {model!r}")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError("`model` is not built: build it (call it on a batch, or use a functional "
                         "model) before exporting")
    dataset = dataset or record.get("dataset")
    if dataset is None:
        raise ValueError("`dataset` is needed to know the model's preprocessing (e.g. 'fashion_mnist')")
    return model, record, dataset


def _input_size(model, info):
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3:
        raise ValueError(f"kzoo exports image classifiers with one (H, W, C) input; this model "
                         f"takes {model.input_shape}")
    shape = tuple(s if s is not None else d for s, d in zip(shape, info.image_shape))
    if shape[-1] != info.image_shape[-1]:
        raise ValueError(f"the model takes {shape[-1]} channels but dataset {info.name!r} has "
                         f"{info.image_shape[-1]}")
    return shape


# ----------------------------------------------------------------------------- graph

def _serving_functions(model, info, shape, top_k):
    """The two signature functions (plain ``tf.function``s closing over ``model``)."""
    import tensorflow as tf

    from kzoo import data

    height, width, channels = shape
    classes = model.output_shape[-1]
    k = min(top_k, classes)

    def outputs(images):  # float32 [batch, h, w, c] on the 0-255 scale
        x = data.prepare_for_model(images, info.name, (height, width))
        probabilities = tf.cast(model(x, training=False), tf.float32)
        scores, ids = tf.math.top_k(probabilities, k=k)
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


def _verify(model, folder, info, shape):
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
    expected = np.asarray(model(x, training=False), np.float32)
    tolerance = 1e-2 if model.dtype_policy.compute_dtype != "float32" else 1e-5
    if not np.allclose(served, expected, atol=tolerance):
        raise RuntimeError(f"the exported SavedModel disagrees with the Keras model (max difference "
                           f"{np.abs(served - expected).max():.3g}); nothing was published")


# ----------------------------------------------------------------------------- card

def model_card(model, record, info, shape, name, version, top_k):
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
        "outputs": {"probabilities": f"float32 [batch, {model.output_shape[-1]}]",
                    "classes": f"int32 [batch, {min(top_k, model.output_shape[-1])}]",
                    "scores": f"float32 [batch, {min(top_k, model.output_shape[-1])}]"},
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
        f"Preprocessing is {card['preprocessing']}. Outputs: "
        + ", ".join(f"`{k}` {v}" for k, v in card["outputs"].items()) + ".", "",
        "## Reproduce", "",
        "```sh", card.get("command", "(not recorded: the model was not trained by kzoo.train)"), "```", "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- export

def export(model, base_dir, name=None, *, version=None, dataset=None, top_k=5, keras_file=False,
           warmup=True, verify=True):
    """Export ``model`` (a keras.Model, a ``.keras`` file, or a finished run directory,
    whose ``last.keras`` is exported with its metrics in the card) to
    ``base_dir/name/<version>/`` for TF Serving, and return an ``ExportResult``.

    ``name`` defaults to the model's name; ``version`` to one more than the highest
    present (an existing version is refused, never replaced). ``dataset`` (default: the
    run's) sets the preprocessing built into the graph. ``top_k`` ids are returned per
    image. ``keras_file`` adds ``model.keras``; ``warmup`` writes TF Serving's warm-up
    requests; ``verify`` reloads the SavedModel and checks it against the Keras model
    before the version appears.
    """
    from kzoo import data
    from kzoo.models.common import check_bool, check_int

    _check_version(version)
    check_int(top_k, "top_k")
    if top_k < 1:
        raise ValueError(f"`top_k` must be at least 1, got {top_k}")
    for value, arg in ((keras_file, "keras_file"), (warmup, "warmup"), (verify, "verify")):
        check_bool(value, arg)
    model, record, dataset = _source(model, dataset)
    info = data.dataset_info(dataset)
    name = name or model.name
    _check_name(name)
    folder = _model_dir(base_dir, name)
    shape = _input_size(model, info)
    if model.output_shape[-1] != info.classes:
        raise ValueError(f"the model predicts {model.output_shape[-1]} classes but dataset "
                         f"{info.name!r} has {info.classes}")
    present = versions(folder)
    if version is None:
        version = (present[-1] if present else 0) + 1
    target = os.path.join(folder, str(version))
    if os.path.exists(target):
        raise ValueError(f"version {version} of {name!r} already exists at {target!r}; kzoo never "
                         "overwrites a version: pass another `version` or leave it out for the next one")

    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=folder)  # not an integer: TF Serving skips it
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the version from a server's user
    try:
        _write_saved_model(model, tmp, _serving_functions(model, info, shape, top_k))
        if warmup:
            _write_warmup(tmp, name, shape)
        if keras_file:
            model.save(os.path.join(tmp, "model.keras"))
        card = model_card(model, record, info, shape, name, version, top_k)
        with open(os.path.join(tmp, "model_card.json"), "w") as f:
            json.dump(card, f, indent=2, default=str)
        with open(os.path.join(tmp, "model_card.md"), "w") as f:
            f.write(_card_markdown(card))
        if verify:
            _verify(model, tmp, info, shape)
        try:
            os.rename(tmp, target)  # fails rather than replace a version made meanwhile
        except OSError as e:
            raise ValueError(f"version {version} of {name!r} appeared while exporting ({e}); "
                             "nothing was replaced") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(target, version, card)
