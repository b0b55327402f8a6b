"""The training loss with label smoothing (Szegedy et al. 2016): keras' sparse
cross-entropy has no ``label_smoothing``, and the dense one would make every dataset's
labels one-hot in the input pipeline."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class SparseLabelSmoothingCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against the smoothed target
    ``(1 - label_smoothing) * one_hot + label_smoothing / classes``; predictions are
    class probabilities (``from_logits=False``), as kzoo's classifiers output."""

    def __init__(
        self, label_smoothing=0.1, from_logits=False, name="sparse_label_smoothing_crossentropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        target = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            target, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }
