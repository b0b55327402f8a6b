"""The served graph: the SavedModel's two signatures, its warm-up requests and the check
that it answers as the Keras model does.

Signatures (no float16/bfloat16 anywhere, so the REST JSON codec carries them all):

* ``serving_default``: ``images``, uint8 ``[batch, height, width, channels]``;
* ``image_bytes``: ``image_bytes``, string ``[batch]`` of encoded JPEG/PNG/BMP/GIF.

Both apply the dataset's evaluation preprocessing inside the graph (resizing when the
size differs from the model's, then the training normalisation) and return
``probabilities`` (float32 ``[batch, classes]``), ``classes`` (int32 ``[batch, k]``,
the top-k class ids, best first) and ``scores`` (their probabilities).
"""

import os

from kzoo.serving import classifier

IMAGES = "images"
IMAGE_BYTES = "image_bytes"
BYTES_SIGNATURE = "image_bytes"
WARMUP_FILE = "tf_serving_warmup_requests"


def serving_functions(model, info, shape, top_k, apply_softmax=False):
    """The two signature functions (plain ``tf.function``s closing over ``model``)."""
    import tensorflow as tf

    from kzoo import data

    height, width, channels = shape

    def outputs(images):  # float32 [batch, h, w, c] on the 0-255 scale
        x = data.prepare_for_model(images, info.name, (height, width))
        probabilities = classifier.probabilities(model, x, apply_softmax)
        scores, ids = tf.math.top_k(probabilities, k=top_k)
        return {"probabilities": probabilities, "classes": tf.cast(ids, tf.int32), "scores": scores}

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


def write_saved_model(model, folder, functions):
    """The SavedModel of ``model`` in ``folder``, its signatures the pair from ``serving_functions``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    (serve_images, images_spec), (serve_bytes, bytes_spec) = functions
    archive.add_endpoint("serving_default", serve_images, input_signature=images_spec)
    archive.add_endpoint(BYTES_SIGNATURE, serve_bytes, input_signature=bytes_spec)
    archive.write_out(folder, verbose=False)


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


def verify(model, folder, info, shape, apply_softmax=False):
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
    expected = np.asarray(classifier.probabilities(model, x, apply_softmax))
    tolerance = 1e-2 if model.dtype_policy.compute_dtype != "float32" else 1e-5
    if not np.allclose(served, expected, atol=tolerance):
        raise RuntimeError(
            f"the exported SavedModel disagrees with the Keras model (max difference "
            f"{np.abs(served - expected).max():.3g}); nothing was published"
        )
