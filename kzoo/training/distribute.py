"""Where a run trains: the default device, every local GPU (``MirroredStrategy``), or
several workers (``MultiWorkerMirroredStrategy``) described by the ``TF_CONFIG``
environment variable, plus the two fixes Keras 3's ``fit`` needs for the latter.

Multi-worker ``fit`` is broken upstream (keras-team/keras#20585,
tensorflow/tensorflow#72388): with Keras 3.15 / TF 2.21 it fails before the first step,

1. ``TensorFlowTrainer._maybe_symbolic_build`` reduces the whole ``(x, y)`` batch with
   one ``strategy.reduce`` call, which ``CollectiveAllReduceStrategy`` cannot do for a
   structure ("Attempt to convert a value (PerReplica...) to a Tensor");
2. ``reduce_per_replica`` then averages each step's logs with ``axis=0``, which fails
   for the scalar loss and metrics ("Invalid reduction dimension 0").

``distributed_fit_fixes`` repairs both (the patches live in ``kzoo._compat``) for the
duration of a ``fit``/``evaluate`` call: the symbolic build reads the dataset's element spec (it only needs shapes and
dtypes), and logs are averaged over replicas with ``axis=None``. Reading the spec
also fixes a quieter problem that every strategy has, MirroredStrategy included:
Keras draws one batch from a throw-away iterator to build, so a seeded,
reshuffling pipeline starts training on its *second* shuffle, and a distributed run
no longer sees the data a one-device run sees. Everything else is Keras' own ``fit``:
the dataset is sharded by data across workers, gradients are all-reduced, metric
variables are summed over all replicas, so logs and test scores are global (a test
checks two workers end with one process's weights).

BatchNormalization normalises each replica's batch with that batch's statistics (as
the papers' multi-GPU training did, and PyTorch DDP without SyncBN), so each replica's
*moving* mean and variance drift apart; Keras keeps them per replica. Evaluated as
they are, every worker would score its shard of the test set with its own statistics
and the saved model would carry the chief's: a published score that the saved model
does not reproduce. ``SyncMovingStatistics`` averages them over all replicas before
every evaluation and at every epoch end (what timm's ``distribute_bn`` does).

A kill of one worker stops the others; re-run every worker's command to resume (only
the chief writes the run directory and the backup, and every worker restores from the
chief's backup).
"""

import contextlib
import json
import math
import os

import keras

from kzoo import _compat

_STRATEGY = None


def cluster():
    """``(workers, task_index)`` from ``TF_CONFIG``; ``(1, 0)`` when it is unset."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 1, 0
    try:
        config = json.loads(raw)
        spec = config.get("cluster", {})
        task = config.get("task", {})
    except (ValueError, AttributeError):
        raise ValueError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
            f'"task": {{"type": "worker", "index": 0}}}}, got {raw!r}'
        ) from None
    roles = set(spec) - {"worker", "chief"}
    if roles:
        raise ValueError(
            f"TF_CONFIG: kzoo trains with workers (and one chief) only, got roles {sorted(roles)}"
        )
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in spec or not isinstance(index, int) or not 0 <= index < len(spec[kind]):
        raise ValueError(f"TF_CONFIG: task {task!r} is not in the cluster {spec!r}")
    # The chief (or worker 0 when there is no chief) is task 0.
    position = index if kind == "chief" else index + len(spec.get("chief", []))
    return workers, position


def is_multi_worker():
    return cluster()[0] > 1


def is_chief():
    """Whether this process writes the run directory: the chief, or worker 0."""
    return cluster()[1] == 0


def gpus():
    """The GPUs TensorFlow sees."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def get_strategy():
    """The strategy for this process, made once: multi-worker when ``TF_CONFIG`` names
    more than one task, all local GPUs when there are several, else the default."""
    global _STRATEGY
    import tensorflow as tf

    if _STRATEGY is not None:
        return _STRATEGY
    if is_multi_worker():
        try:
            _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as e:
            raise RuntimeError(
                "multi-worker training must set up TensorFlow's cluster before any other "
                "TensorFlow work in the process: call kzoo.train (with the model by name) "
                f"first, or run `kzoo train` ({e})"
            ) from None
    elif len(gpus()) > 1:
        _STRATEGY = tf.distribute.MirroredStrategy()
    else:
        return tf.distribute.get_strategy()
    return _STRATEGY


@contextlib.contextmanager
def distributed_fit_fixes(model):
    """Inside this context, ``model.fit``/``evaluate`` build from the data's spec and,
    under a multi-worker strategy, work at all (see the module docstring). Without a
    distribution strategy it does nothing."""
    import tensorflow as tf

    strategy = model._distribute_strategy  # None: keras builds by tracing, no iterator drawn
    if strategy is None:
        yield
        return
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    with contextlib.ExitStack() as stack:
        if multi_worker:
            stack.enter_context(_compat.scalar_logs_averaged_over_replicas())
        stack.enter_context(_compat.fit_builds_from_element_spec(model, strategy))
        yield


class SyncMovingStatistics(keras.callbacks.Callback):
    """Average the float non-trainable variables (BatchNormalization's moving mean and
    variance) over every replica before each evaluation and at each epoch end, so
    validation, test scores and saved models all use one set of statistics. Put it
    before callbacks that save. Does nothing with a single replica."""

    _step = None

    def _sync(self):
        if self._step is None:
            self._step = self._make_step()
        if self._step:
            self._step()

    def _make_step(self):
        import tensorflow as tf

        strategy = self.model.distribute_strategy
        variables = [v for v in self.model.non_trainable_variables if v.dtype.startswith(("float", "bfloat"))]
        if strategy.num_replicas_in_sync < 2 or not variables:
            return False

        def average():  # one all-reduce of every statistic, flattened and concatenated
            flat = tf.concat([tf.reshape(tf.cast(v.value, "float32"), [-1]) for v in variables], 0)
            flat = tf.distribute.get_replica_context().all_reduce("MEAN", flat)
            sizes = [math.prod(v.shape) for v in variables]
            for v, mean in zip(variables, tf.split(flat, sizes)):
                v.assign(tf.cast(tf.reshape(mean, v.shape), v.dtype))

        return tf.function(lambda: strategy.run(average))

    def on_test_begin(self, logs=None):
        self._sync()

    def on_epoch_end(self, epoch, logs=None):
        self._sync()


def shard_by_data(ds):
    """``ds`` with data sharding across workers stated, not guessed: every worker runs
    the same seeded pipeline and keeps its share of each global batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
