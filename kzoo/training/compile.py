"""How a run optimises: the protocol's weight decay, SGD and loss (label-smoothed when
the protocol says so), and the metrics every run records (the data term
``cross_entropy``, never smoothed, apart from the penalty-including ``loss``)."""

import keras

from kzoo.training.losses import SparseLabelSmoothingCrossentropy


def apply_weight_decay(model, weight_decay, decay_all=True):
    """Give the trainable variables an L2 regularizer of ``weight_decay / 2``: the
    gradient gains ``weight_decay * w`` before momentum, as in the papers' SGD."""
    if not weight_decay:
        return 0
    count = 0
    for variable in model.trainable_variables:
        if decay_all or variable.path.endswith("kernel"):
            variable.regularizer = keras.regularizers.L2(weight_decay / 2)
            count += 1
    return count


def compile_for_protocol(net, proto, steps_per_epoch, xla=False):
    """Weight decay, the protocol's SGD and loss, and the metrics every run records."""
    apply_weight_decay(net, proto.weight_decay, proto.decay_all)
    optimizer = keras.optimizers.SGD(
        learning_rate=proto.learning_rate(steps_per_epoch),
        momentum=proto.momentum,
        nesterov=proto.nesterov,
    )
    net.compile(
        optimizer=optimizer,
        loss=(
            SparseLabelSmoothingCrossentropy(proto.label_smoothing)
            if proto.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy()
        ),
        metrics=run_metrics(),
        jit_compile=xla,
    )


def run_metrics():
    """What every run records. "loss" includes the weight-decay penalty (and the label
    smoothing); "cross_entropy" is the data term alone, what a saved model (which has no
    regularizers) evaluates to."""
    return [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
        keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy"),
    ]


def compile_for_scoring(model):
    """Compile a model that only evaluates (a test-time-augmented view of the trained
    one) with the run's metrics, so its scores have the same names and meaning."""
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), metrics=run_metrics())
    return model
