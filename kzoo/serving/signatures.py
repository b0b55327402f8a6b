"""The served graph: the SavedModel's signatures, its warm-up requests and the check
that it answers as the Keras model does.

Signatures (no float16/bfloat16 anywhere, so the REST JSON codec carries them all):

* ``serving_default``: ``images``, uint8 ``[batch, height, width, channels]`` of any
  size, checked at run time (the input's rank is left unknown so that the graph, not
  TF Serving, says what was wrong);
* ``image_bytes``: ``image_bytes``, string ``[batch]`` of encoded JPEG/PNG/BMP/GIF;
* ``fixed_size``: ``images``, uint8 ``[batch, height, width, channels]`` at the model's
  own size, with a known shape and no run-time checks or resizing: the signature
  converters read (``tf2onnx --signature_def fixed_size``, ``TFLiteConverter.
  from_saved_model(..., signature_keys=["fixed_size"])``) and the graph kzoo's ONNX and
  LiteRT exports are made of.

All apply the dataset's evaluation preprocessing inside the graph (resizing when the
size differs from the model's, then the training normalisation) and return
``probabilities`` (float32 ``[batch, classes]``), ``classes`` (int32 ``[batch, k]``,
the top-k class ids, best first) and ``scores`` (their probabilities).
"""

import os

from kzoo.serving import classifier

IMAGES = "images"
IMAGE_BYTES = "image_bytes"
BYTES_SIGNATURE = "image_bytes"
FIXED_SIGNATURE = "fixed_size"
WARMUP_FILE = "tf_serving_warmup_requests"


def _top_k(probabilities, top_k):
    import tensorflow as tf

    scores, ids = tf.math.top_k(probabilities, k=top_k)
    return {"probabilities": probabilities, "classes": tf.cast(ids, tf.int32), "scores": scores}


def fixed_size_function(model, info, shape, top_k, apply_softmax=False):
    """(fn, input signature) of ``fixed_size``: uint8 images at the model's size in,
    normalisation, the model and top-k inside, nothing a converter cannot read."""
    import tensorflow as tf

    from kzoo.data.augment import normaliser

    def serve_fixed(images):
        normalise, _ = normaliser(info)  # here: constants made outside would be graph inputs
        x = normalise(tf.cast(images, tf.float32))
        return _top_k(classifier.probabilities(model, x, apply_softmax), top_k)

    return serve_fixed, [tf.TensorSpec([None, *shape], tf.uint8, name=IMAGES)]


def serving_functions(model, info, shape, top_k, apply_softmax=False):
    """{signature name: (fn, input signature)}: plain functions closing over ``model``."""
    import tensorflow as tf

    from kzoo import data

    height, width, channels = shape

    def outputs(images):  # float32 [batch, h, w, c] on the 0-255 scale
        x = data.prepare_for_model(images, info.name, (height, width))
        return _top_k(classifier.probabilities(model, x, apply_softmax), top_k)

    expected = f"uint8 [batch, height, width, {channels}] (the model sees {height}x{width}x{channels})"

    def serve_images(images):
        rank_ok = tf.equal(tf.rank(images), 4)
        channels_ok = tf.reduce_all(tf.equal(tf.shape(images)[-1:], channels))  # safe at any rank
        message = tf.where(
            rank_ok,
            f"`images` must be {expected}; wrong channel count",
            f"`images` must be {expected}; wrong rank",
        )
        images = _require(images, tf.logical_and(rank_ok, channels_ok), message, [None, None, None, channels])
        return outputs(tf.cast(images, tf.float32))

    def decode(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        return data.resize_for_model(tf.cast(image, tf.float32), info.name, (height, width))

    def serve_bytes(image_bytes):
        image_bytes = _require(
            image_bytes,
            tf.equal(tf.rank(image_bytes), 1),
            "`image_bytes` must be a string [batch] of encoded images",
            [None],
        )
        images = tf.map_fn(
            decode, image_bytes, fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32)
        )
        return outputs(images)

    return {
        # Unknown rank on purpose: a served SavedModel does not enforce its signature's
        # shapes, so the graph checks them itself and says what it expected.
        "serving_default": (serve_images, [tf.TensorSpec(None, tf.uint8, name=IMAGES)]),
        BYTES_SIGNATURE: (serve_bytes, [tf.TensorSpec(None, tf.string, name=IMAGE_BYTES)]),
        FIXED_SIGNATURE: fixed_size_function(model, info, shape, top_k, apply_softmax),
    }


def _require(x, ok, message, shape):
    """``x`` with static ``shape`` once ``ok`` holds at run time, else an
    InvalidArgumentError saying ``message``. No ``ensure_shape`` here: Grappler would
    use it to fold ``tf.rank(x)`` to the expected rank and the check would pass."""
    import tensorflow as tf

    with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
        x = tf.identity(x)
    x.set_shape(shape)
    return x


def write_saved_model(model, folder, functions):
    """The SavedModel of ``model`` in ``folder``, its signatures ``functions`` (from
    ``serving_functions``). ``fixed_size`` is traced with plain grouped convolutions
    (``kzoo.serving.graph_patches``) so that tf2onnx can read it."""
    import keras
    import tensorflow as tf

    from kzoo.serving.graph_patches import plain_grouped_convolutions

    archive = keras.export.ExportArchive()
    archive.track(model)
    _track_weights_once(archive)
    for signature, (fn, spec) in functions.items():
        if signature == FIXED_SIGNATURE:  # traced now, with the patch; the archive keeps that trace
            fn = tf.function(fn, input_signature=spec, autograph=False)
            with plain_grouped_convolutions():
                fn.get_concrete_function()
            archive.add_endpoint(signature, fn)
        else:
            archive.add_endpoint(signature, fn, input_signature=spec)
    archive.write_out(folder, verbose=False)


def _track_weights_once(archive):
    """Store each weight once. ``track`` lists the model's Keras variables while the
    endpoints capture the tf.Variables inside them: two objects per weight, so the
    SavedModel held every weight twice (twice the bytes on disk and in a server's memory;
    keras-team/keras#23553). Listing the tf.Variables themselves lets TensorFlow save each
    one once, under the same names and collections."""
    import tensorflow as tf

    holder = getattr(archive, "_tf_trackable", None)
    for collection in ("variables", "trainable_variables", "non_trainable_variables"):
        listed = getattr(holder, collection, None)
        if listed is None:
            continue
        inner = [getattr(v, "value", v) for v in listed]
        setattr(holder, collection, [i if isinstance(i, tf.Variable) else v for i, v in zip(inner, listed)])


def write_warmup(folder, name, shape):
    """``assets.extra/tf_serving_warmup_requests``: PredictionLog records TF Serving
    replays at load time, one per signature (batches of 1 and 8 images, one PNG)."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    os.makedirs(os.path.join(folder, "assets.extra"), exist_ok=True)
    grey = np.full((1, *shape), 128, np.uint8)
    png = tf.io.encode_png(grey[0]).numpy()
    requests = [
        ("serving_default", IMAGES, tf.make_tensor_proto(grey)),
        ("serving_default", IMAGES, tf.make_tensor_proto(np.repeat(grey, 8, axis=0))),
        (BYTES_SIGNATURE, IMAGE_BYTES, tf.make_tensor_proto([png], dtype=tf.string)),
    ]
    path = os.path.join(folder, "assets.extra", WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, key, tensor in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
            )
            request.inputs[key].CopyFrom(tensor)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(requests)
