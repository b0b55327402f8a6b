"""Lookahead as airbench trains with it (Zhang et al. 2019's slow weights, airbench's
schedule): every few steps the weights are pulled back toward a slow copy of
themselves, which damps the noise of a high learning rate and short run; at the end
the model *is* the slow copy. Unlike ``WeightEMA`` nothing is swapped for evaluation:
the weights themselves move."""

import os

import keras

from kzoo import checks
from kzoo.training.ema import float_variables, restore_shadows, save_shadows, shadow_copies

STATE_FILE = "lookahead.npz"  # in a backup's epoch folder
AIRBENCH_EVERY = 5
AIRBENCH_DECAY = 0.95**5


class Lookahead(keras.callbacks.Callback):
    """Every ``every`` optimizer steps ``t``: ``slow = d * slow + (1 - d) * w`` and then
    ``w = slow``, for every floating-point variable of the model (BN's moving statistics
    included, as airbench's state dict has them), with ``d = decay * (t / total_steps) ** 3``:
    no pull at the start, airbench's ``0.95 ** 5`` at the end. At step ``total_steps``
    the weights become the slow copy for good (after that step's pull when it is due),
    so the last epoch's evaluations, checkpoints and the trained model are the slow
    weights.

    The slow copy (float32) is made from the weights when the first training batch
    begins, after a backup is restored; steps are the optimizer's ``iterations``, which
    the backup restores, and ``save``/``restore`` keep the slow copy in the backup
    (``Backup(extra_state=[lookahead])``): a resumed run pulls at the same steps to the
    same values as an uninterrupted one.
    """

    def __init__(self, total_steps, every=AIRBENCH_EVERY, decay=AIRBENCH_DECAY):
        super().__init__()
        self.total_steps = checks.integer(total_steps, "total_steps", minimum=1)
        self.every = checks.integer(every, "every", minimum=1)
        self.decay = checks.number(decay, "decay", minimum=0, maximum=1)
        self._owner = self._variables = self._shadows = self._last = None
        self._update_fn = self._update_optimizer = None

    @property
    def slow_weights(self):
        """The slow copy as numpy arrays (None before it exists)."""
        return None if self._shadows is None else [s.numpy() for s in self._shadows]

    def _ensure_built(self):
        import tensorflow as tf

        if self._owner is self.model and self._shadows is not None:
            return
        variables = float_variables(self.model)
        self._shadows = shadow_copies(variables, "lookahead")
        with tf.init_scope():
            self._last = tf.Variable(-1, dtype="int64", trainable=False, name="lookahead/last_step")
        self._owner, self._variables = self.model, variables
        self._update_fn = self._update_optimizer = None

    def _make_update(self, optimizer):
        import tensorflow as tf

        every, total, decay = self.every, self.total_steps, self.decay
        shadows, variables, last = self._shadows, self._variables, self._last

        def update():
            step = tf.cast(optimizer.iterations, "int64")
            fresh = (step > 0) & (step != last)
            pull = fresh & (step % every == 0)
            final = fresh & (step == total)

            def apply():
                d = tf.constant(decay, "float32") * (tf.cast(step, "float32") / total) ** 3
                d = tf.where(pull, d, tf.constant(1.0))  # the final copy without a pull: d = 1
                for s, v in zip(shadows, variables):
                    s.assign(d * s + (1.0 - d) * tf.cast(v.value, "float32"))
                    v.assign(tf.cast(s, v.dtype))
                last.assign(step)
                return tf.constant(True)

            return tf.cond(pull | final, apply, lambda: tf.constant(False))

        self._update_fn, self._update_optimizer = tf.function(update), optimizer

    def on_train_batch_begin(self, batch, logs=None):
        self._ensure_built()
        if self._update_optimizer is not self.model.optimizer:
            self._make_update(self.model.optimizer)

    def on_train_batch_end(self, batch, logs=None):
        self._update_fn()

    def save(self, folder):
        """Write the slow copy and the last pulled step to ``folder/lookahead.npz``."""
        self._ensure_built()
        save_shadows(
            os.path.join(folder, STATE_FILE), self._shadows, self._variables, {"last_step": self._last}
        )

    def restore(self, folder):
        """Read back what ``save`` wrote in ``folder``: True when it did, False when there
        is nothing there. A file that does not fit this model raises ValueError."""
        path = os.path.join(folder, STATE_FILE)
        if not os.path.exists(path):
            return False
        self._ensure_built()
        return restore_shadows(path, self._shadows, {"last_step": self._last}, "the lookahead's slow weights")
