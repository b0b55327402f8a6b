"""FReLU vs ReLU training-step time on CIFAR ResNet-56 (batch 64, 32x32), in one run.
The FReLU paper claims no extra cost; kzoo's goal is at most 2% overhead.

A third model, FReLU with its biases frozen (``trainable=False``), splits the overhead:
what it shares with FReLU is the forward ``+ b`` (an element-wise op of its own, and one
more activation kept for the backward pass); what FReLU costs beyond it is training the
biases (their gradient, a sum over each activation, and the optimizer's updates).

``graph`` counts the ops of each net's training step as TensorFlow's grappler rewrites it
for this CPU (its oneDNN fusions included): which ops FReLU adds, and whether the fused
batch normalisation + ReLU kernels (``_FusedBatchNormEx``) survive it.

``--xla`` also times both nets with their whole training step compiled by XLA
(``jit_compile=True``), where the ``+ b`` can fuse into the ops around it: FReLU's overhead
there, and what XLA's step costs against TensorFlow's own runtime on this CPU.

``--precision bfloat16`` builds every net under ``mixed_bfloat16``, the precision of kzoo's
fastest CPU recipe, where the convolutions run faster, so an element-wise pass can weigh more."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import timing  # noqa: E402
from timing import compare, machine, paired_ratio  # noqa: E402

import kzoo  # noqa: E402
from kzoo.training.precision import dtype_policy  # noqa: E402

PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def optimized_ops(model, batch=2):
    """{op type: count} of ``model``'s SGD training step after grappler's rewrites."""
    import collections

    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    loss = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(
            zip(tape.gradient(value, model.trainable_variables), model.trainable_variables)
        )
        return value

    traced = step.get_concrete_function(
        tf.TensorSpec((batch, *model.input_shape[1:])), tf.TensorSpec((batch,), tf.int32)
    )
    meta = tf.compat.v1.train.export_meta_graph(graph_def=traced.graph.as_graph_def(), graph=traced.graph)
    meta.collection_def["train_op"].node_list.value.extend(t.name for t in traced.outputs)
    graph = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta)
    counts = collections.Counter(node.op for node in graph.node)
    for function in graph.library.function:
        counts.update(node.op for node in function.node_def)
    return counts


def graph(model):
    """What FReLU changes in ``model``'s optimized training step, against ReLU."""
    frelu_model = kzoo.create_model(model, activation="frelu")
    relu, frelu = optimized_ops(kzoo.create_model(model)), optimized_ops(frelu_model)
    return {
        "frelu_layers": sum(isinstance(layer, kzoo.layers.FReLU) for layer in frelu_model.layers),
        "compute_dtype": frelu_model.dtype_policy.compute_dtype,
        "ops_added_by_frelu": {
            op: frelu[op] - relu[op] for op in sorted(relu | frelu) if frelu[op] != relu[op]
        },
        "fused_batchnorm_relu": {"relu": relu["_FusedBatchNormEx"], "frelu": frelu["_FusedBatchNormEx"]},
    }


def run(batch=64, rounds=12, steps=10, model="resnet56", xla=False, precision="float32"):
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    with dtype_policy(PRECISIONS[precision]):
        return _run(batch, rounds, steps, model, xla, precision)


def _run(batch, rounds, steps, model, xla, precision):
    keras.utils.set_random_seed(0)
    models = {"relu": kzoo.create_model(model), "frelu": kzoo.create_model(model, activation="frelu")}
    models["frelu_fixed_bias"] = kzoo.create_model(model, activation="frelu")
    for layer in models["frelu_fixed_bias"].layers:
        if isinstance(layer, kzoo.layers.FReLU):
            layer.trainable = False
    if xla:
        models["relu_xla"] = kzoo.create_model(model)
        models["frelu_xla"] = kzoo.create_model(model, activation="frelu")
    jit = {"relu_xla": True, "frelu_xla": True}
    timings = compare(models, "train", batch, (32, 32, 3), 10, rounds=rounds, steps=steps, jit_compile=jit)

    # Step-time overhead = relu throughput / frelu throughput - 1, paired per round.
    def overhead(label, base="relu"):
        return {k: round(v - 1, 3) for k, v in paired_ratio(timings, base, label).items()}

    xla_result = {}
    if xla:
        xla_result = {
            "xla_frelu_step_time_overhead": overhead("frelu_xla", base="relu_xla"),
            # > 1: XLA's compiled step is faster than TensorFlow's runtime on this CPU
            "xla_over_runtime_relu": paired_ratio(timings, "relu_xla", "relu"),
        }
    return {
        "benchmark": "frelu_overhead",
        "model": model,
        "batch": batch,
        "precision": PRECISIONS[precision],
        "rounds": rounds,
        "steps_per_round": steps,
        "train": timings,
        "frelu_step_time_overhead": overhead("frelu"),
        "fixed_bias_step_time_overhead": overhead("frelu_fixed_bias"),
        **xla_result,
        "graph": graph(model),
        "machine": machine(),
    }


if __name__ == "__main__":
    timing.main(run, __doc__)
