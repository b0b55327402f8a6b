"""Every place kzoo patches Keras' private code, with the upstream issue each works around,
so a Keras upgrade has one module to re-check. setup.py bounds keras to the minor version
these were tested with (``KERAS_TESTED``); raise the bound only after re-running the
multi-worker tests (tests/test_distribute.py) on the new version.
"""

import contextlib

KERAS_TESTED = "3.15"


@contextlib.contextmanager
def fit_builds_from_element_spec(model, strategy):
    """While active, ``model.fit``/``evaluate`` build the model from the dataset's
    element spec (shapes and dtypes are all it needs) instead of drawing a batch.

    keras-team/keras#20585, tensorflow/tensorflow#72388: under
    ``MultiWorkerMirroredStrategy``, ``TensorFlowTrainer._maybe_symbolic_build`` reduces
    the whole ``(x, y)`` batch with one ``strategy.reduce``, which
    ``CollectiveAllReduceStrategy`` cannot do for a structure ("Attempt to convert a value
    (PerReplica...) to a Tensor"). Drawing that batch also advances a seeded, reshuffling
    pipeline by one shuffle under every strategy.
    """

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build
    try:
        yield
    finally:
        del model._maybe_symbolic_build


@contextlib.contextmanager
def scalar_logs_averaged_over_replicas():
    """While active, each step's ``"auto"``/``"mean"``-reduced logs are averaged over the
    replicas with ``axis=None``.

    keras-team/keras#20585, tensorflow/tensorflow#72388: Keras' TensorFlow trainer's
    ``reduce_per_replica`` averages with ``axis=0``, which fails under
    ``MultiWorkerMirroredStrategy`` for the scalar loss and metrics ("Invalid reduction
    dimension 0").
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)

        def mean(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.reduce("MEAN", value, axis=None)
            return value

        return tf.nest.map_structure(mean, values)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
