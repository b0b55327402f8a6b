"""An exponential moving average of the weights (as timm's ``ModelEmaV3`` and airbench
keep one): the average of the last few hundred steps' weights usually scores better
than the last step's, at no cost in training steps. Evaluation and the saved models
use the average; the backup keeps both, so a resumed run continues the same average."""

import contextlib
import os
import zipfile

import keras
import numpy as np

from kzoo import atomic, checks

STATE_FILE = "ema.npz"  # in the folder given to ``save``/``restore`` (a backup's epoch folder)


def _is_float(variable):
    return str(variable.dtype).startswith(("float", "bfloat"))


def float_variables(model):
    """The model's forward-pass state: every floating-point variable of
    ``model.variables`` (weights and BN's moving statistics), once each, in layer order."""
    seen, variables = set(), []
    for v in model.variables:  # layer order, trainable or not: stable across freezing
        if _is_float(v) and id(v) not in seen:
            seen.add(id(v))
            variables.append(v)
    return variables


def shadow_copies(variables, prefix):
    """A float32 ``tf.Variable`` copy of each variable's value, outside any tf.function."""
    import tensorflow as tf

    with tf.init_scope():
        return [
            tf.Variable(tf.cast(v.value, "float32"), trainable=False, name=f"{prefix}/{v.path}")
            for v in variables
        ]


def save_shadows(path, shadows, variables, counters):
    """``shadows`` (with their variables' paths) and the integer ``counters`` (a dict of
    int64 ``tf.Variable`` s) to the ``.npz`` file ``path``, through a temporary file."""
    arrays = {f"v{i}": s.numpy() for i, s in enumerate(shadows)}
    arrays["paths"] = np.array([v.path for v in variables], dtype=str)
    for name, counter in counters.items():
        arrays[name] = np.array(counter.numpy(), dtype="int64")
    atomic.write_file(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def restore_shadows(path, shadows, counters, what):
    """Read back what ``save_shadows`` wrote at ``path`` into ``shadows`` and
    ``counters``: True when it did, False when there is no such file. A file that does
    not fit raises ValueError naming ``what`` it holds."""
    if not os.path.exists(path):
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[f"v{i}"] for i in range(len(shadows))]
            extra = sum(1 for k in data.files if k.startswith("v")) - len(arrays)
            values = {name: int(data[name]) for name in counters}
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{what} in {path!r} is damaged or not this model's ({err})") from None
    if extra or [a.shape for a in arrays] != [tuple(s.shape) for s in shadows]:
        raise ValueError(f"{what} in {path!r} does not fit this model's variables")
    for s, a in zip(shadows, arrays):
        s.assign(a.astype("float32"))
    for name, counter in counters.items():
        counter.assign(values[name])
    return True


class WeightEMA(keras.callbacks.Callback):
    """Keep ``avg = d * avg + (1 - d) * w`` for every floating-point variable of the
    model, updated every ``every`` optimizer steps with ``d = min(decay, (1 + n) / (10 + n))``
    after ``n`` updates (the warm-up of TensorFlow's ``ExponentialMovingAverage`` given
    ``num_updates``; timm's ``ModelEmaV3`` warms up to its decay likewise): the first
    averages follow the weights closely instead of remembering their random start for
    ``1 / (1 - decay)`` steps.

    What is averaged is the model's whole forward-pass state: the trainable weights
    *and* BatchNormalization's moving mean and variance (every float variable of
    ``model.variables``; the seed generators' integer state is left alone, the
    optimizer's and the metrics' variables are not the model's). The moving statistics
    estimate the activations of the weights they were collected with; an averaged model
    normalised with the last step's statistics would be normalised with the statistics
    of different weights. Averaging them alongside (as timm's ``ModelEma`` does with the
    buffers) keeps the two consistent, without a pass over the data to recompute them.

    The averages are float32 ``tf.Variable`` s held here (whatever the model's dtypes),
    made from the model's values when the first training batch begins (after a backup
    has been restored), and updated in one compiled function per step. While
    ``swapped()`` is active the model holds the averages, and the raw weights come back
    bit for bit at its end; every evaluation that sees this callback (``fit``'s validation
    pass, ``model.evaluate(..., callbacks=[ema])``, ``TestCurve(callbacks=[ema])``)
    scores the average. At the end of ``fit`` the averages are installed for good: the
    trained model *is* the average. Before the first update nothing is swapped or
    installed (the average is then the weights themselves). ``save``/``restore`` keep
    the averages and the update count in a backup folder (``Backup(extra_state=[ema])``).
    Steps are counted by the optimizer's ``iterations``, which the backup restores too,
    so a resumed run updates at the same steps as an uninterrupted one; a step that a
    loss-scale optimizer skips is not an update.

    Under a ``tf.distribute`` strategy the averages are updated outside the replicas,
    from what reading each variable gives there (the first replica's copy). Trainable
    weights are the same on every replica; the moving statistics can differ between
    ``SyncMovingStatistics`` calls, so the average follows the first replica's. Put
    ``SyncMovingStatistics`` before this callback: it makes the replicas agree before
    each evaluation, and swapping in writes the same averages to every replica and the
    raw values (the first replica's) back afterwards. In a multi-worker run every
    worker keeps its own average (of the same weights) and the chief's is saved.
    """

    def __init__(self, decay, every=1):
        super().__init__()
        self.decay = checks.number(decay, "ema_decay", minimum=0, maximum=1, min_open=True, max_open=True)
        self.every = checks.integer(every, "ema_every", minimum=1)
        self._owner = None  # the model the averages belong to
        self._variables = None  # its averaged variables (keras.Variable)
        self._shadows = None  # their averages (tf.Variable, float32)
        self._updates = None  # tf.Variable: updates made so far (n)
        self._last = None  # tf.Variable: the optimizer step of the last update
        self._swap_in_fn = self._swap_back_fn = self._install_fn = None
        self._update_fn = self._update_optimizer = None  # the step function, and whose steps it counts
        self._depth = 0  # nested swaps
        self._raw = None  # the raw values while swapped
        self._testing = False  # an evaluation's swap is on

    # -- the averages ---------------------------------------------------------------

    def set_model(self, model):
        if self._owner is not None and model is not self._owner:
            self._reset()  # another model: its own averages
        super().set_model(model)

    def _reset(self):
        if self._depth:
            raise RuntimeError("WeightEMA: the model changed while its averages were swapped in")
        self._owner = self._variables = self._shadows = self._updates = self._last = None
        self._swap_in_fn = self._swap_back_fn = self._install_fn = None
        self._update_fn = self._update_optimizer = None

    @property
    def built(self):
        """Whether the averages exist (from the first training batch, or a restore, on)."""
        return self._shadows is not None

    @property
    def updates(self):
        """Updates made so far (0 before the first)."""
        return int(self._updates.numpy()) if self.built else 0

    @property
    def averages(self):
        """The averages as numpy arrays, in the order of the model's float variables
        (``None`` before they exist)."""
        return [s.numpy() for s in self._shadows] if self.built else None

    def _build(self):
        import tensorflow as tf

        model = self.model
        variables = float_variables(model)
        shadows = shadow_copies(variables, "ema")
        with tf.init_scope():
            self._updates = tf.Variable(0, dtype="int64", trainable=False, name="ema/updates")
            self._last = tf.Variable(-1, dtype="int64", trainable=False, name="ema/last_step")
        self._owner, self._variables, self._shadows = model, variables, shadows

        def swap_in():
            raw = [tf.identity(v.value) for v in variables]  # read before the writes below
            with tf.control_dependencies(raw):
                for s, v in zip(shadows, variables):
                    v.assign(tf.cast(s, v.dtype))
            return raw

        def swap_back(raw):
            for r, v in zip(raw, variables):
                v.assign(r)

        def install():
            for s, v in zip(shadows, variables):
                v.assign(tf.cast(s, v.dtype))

        self._swap_in_fn = tf.function(swap_in)
        self._swap_back_fn = tf.function(swap_back)
        self._install_fn = tf.function(install)

    def _make_update(self, optimizer):
        """The step function: one compiled update of every average, when the optimizer's
        step is a multiple of ``every`` (and not the step last averaged)."""
        import tensorflow as tf

        decay, every = self.decay, self.every
        shadows, variables, updates, last = self._shadows, self._variables, self._updates, self._last

        def update():
            step = tf.cast(optimizer.iterations, "int64")
            due = (step > 0) & (step % every == 0) & (step != last)

            def apply():
                n = tf.cast(updates, "float64")
                d = tf.minimum(tf.constant(decay, "float64"), (1.0 + n) / (10.0 + n))
                keep, take = tf.cast(d, "float32"), tf.cast(1.0 - d, "float32")
                for s, v in zip(shadows, variables):
                    s.assign(keep * s + take * tf.cast(v.value, "float32"))
                updates.assign_add(1)
                last.assign(step)
                return tf.constant(True)

            return tf.cond(due, apply, lambda: tf.constant(False))

        self._update_fn, self._update_optimizer = tf.function(update), optimizer

    def _ensure_built(self):
        if self._owner is not None and self._owner is not self.model:
            self._reset()
        if not self.built:
            self._build()

    def _active(self):
        """Whether there are averages of this model to swap in (before the first update
        the average is the weights themselves)."""
        return self.built and self._owner is self.model and int(self._updates.numpy()) > 0

    # -- swapping ---------------------------------------------------------------------

    def _push(self):
        if self._depth == 0:
            self._raw = self._swap_in_fn()
        self._depth += 1

    def _pop(self):
        self._depth -= 1
        if self._depth == 0:
            raw, self._raw = self._raw, None
            self._swap_back_fn(raw)

    @contextlib.contextmanager
    def swapped(self):
        """Inside, the model holds the averages; at the end, exactly its raw weights
        again. Nests; does nothing before the first update."""
        if self._depth == 0 and not self._active():
            yield
            return
        self._push()
        try:
            yield
        finally:
            self._pop()

    def _end_test_swap(self):
        if self._testing:
            self._testing = False
            self._pop()

    # -- keras hooks ------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._end_test_swap()  # an evaluation that raised left the averages in

    def on_train_batch_begin(self, batch, logs=None):
        if not self.built or self._owner is not self.model:
            self._ensure_built()  # from the weights training starts with (after a restore)
        if self._update_optimizer is not self.model.optimizer:
            self._make_update(self.model.optimizer)

    def on_train_batch_end(self, batch, logs=None):
        self._update_fn()

    def on_test_begin(self, logs=None):
        self._end_test_swap()
        if self._depth or self._active():
            self._push()
            self._testing = True

    def on_test_end(self, logs=None):
        self._end_test_swap()

    def on_train_end(self, logs=None):
        self._end_test_swap()
        if self._depth == 0 and self._active():
            self._install_fn()

    # -- resume -------------------------------------------------------------------------

    def save(self, folder):
        """Write the averages and the update count to ``folder/ema.npz`` (through a
        temporary file and a rename; ``Backup`` also writes the whole folder under a
        temporary name)."""
        self._ensure_built()
        save_shadows(os.path.join(folder, STATE_FILE), self._shadows, self._variables, self._counters())

    def restore(self, folder):
        """Read back what ``save`` wrote in ``folder``: True when it did, False when
        there is nothing there (the averages then start from the weights). A file that
        does not fit this model raises ValueError."""
        path = os.path.join(folder, STATE_FILE)
        if not os.path.exists(path):
            return False
        self._ensure_built()
        return restore_shadows(path, self._shadows, self._counters(), "the moving average")

    def _counters(self):
        return {"updates": self._updates, "last_step": self._last}
