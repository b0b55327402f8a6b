"""Lookahead against a by-hand numpy replay (the pulls at every ``every``-th step with
airbench's cubic ramp, BN's statistics included, the final copy at ``total_steps``),
resuming from a backup to the uninterrupted run's weights, and its argument checks."""

import os
import stat

import keras
import numpy as np
import pytest
from helpers import CutAtEpoch

from kzoo.training import callbacks as cb
from kzoo.training.lookahead import AIRBENCH_DECAY, STATE_FILE, Lookahead

STEPS, BATCH = 4, 8  # batches per epoch, batch size


def _data(n=STEPS * BATCH, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32") * 3 + 1
    return x, (x[:, 0] + x[:, 1] > 2).astype("int32")


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, activation="relu"),
            keras.layers.BatchNormalization(momentum=0.5),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    return model


def _values(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.variables if "float" in str(v.dtype)]


class Recorder(keras.callbacks.Callback):
    """The float variables when training starts and at every batch end (before the
    lookahead when placed before it, after it when placed after)."""

    def __init__(self):
        super().__init__()
        self.start, self.steps = None, []

    def on_train_batch_begin(self, batch, logs=None):
        if self.start is None:
            self.start = _values(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(_values(self.model))


@pytest.mark.parametrize("every,epochs", [(3, 2), (4, 2), (1, 1)])  # 3: 8 % 3 != 0, a copy without a pull
def test_the_pulls_are_the_by_hand_replay(every, epochs):
    model, (x, y) = _model(), _data()
    total = epochs * STEPS
    before, after = Recorder(), Recorder()
    look = Lookahead(total, every=every, decay=0.9)
    model.fit(
        x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[before, look, after]
    )
    slow = [a.astype("float64") for a in before.start]
    pulls = 0
    for t, (fast, got) in enumerate(zip(before.steps, after.steps), start=1):
        if t % every == 0:
            d = 0.9 * (t / total) ** 3
            slow = [d * s + (1 - d) * w for s, w in zip(slow, fast)]
            want, pulls = slow, pulls + 1
        elif t == total:
            want = slow  # the run ends on the slow copy
        else:
            want = fast  # no pull: the step's weights untouched
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=1e-6, rtol=1e-5)
    assert pulls == total // every
    final = _values(model)
    for f, s, w in zip(final, look.slow_weights, slow):
        np.testing.assert_allclose(f, s, atol=1e-7)
        np.testing.assert_allclose(f, w, atol=1e-6, rtol=1e-5)
    if total % every:  # the last fast steps were dropped: the model is not the last step's
        assert any(not np.allclose(f, w, atol=1e-5) for f, w in zip(final, before.steps[-1]))
    # every float variable is in the replay, BN's moving statistics included (2 + 4 + 2)
    assert len(final) == len(look.slow_weights) == 8


def _resumable_fit(folder, look, interrupt_at=None, extra=True):
    model, (x, y) = _model(), _data()
    callbacks = [look, cb.Backup(str(folder), extra_state=[look] if extra else [])]
    if interrupt_at is not None:
        callbacks.append(CutAtEpoch(interrupt_at))
    model.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def test_resume_continues_the_slow_weights(tmp_path):
    total = 3 * STEPS
    whole = _values(_resumable_fit(tmp_path / "whole", Lookahead(total, every=3)))
    with pytest.raises(KeyboardInterrupt):
        _resumable_fit(tmp_path / "parts", Lookahead(total, every=3), interrupt_at=1)
    assert STATE_FILE in os.listdir(tmp_path / "parts" / "epoch-0001")
    resumed = _values(_resumable_fit(tmp_path / "parts", Lookahead(total, every=3)))
    for r, w in zip(resumed, whole):
        np.testing.assert_allclose(r, w, atol=1e-6)
    # without its state the resumed run pulls toward the restored weights instead
    with pytest.raises(KeyboardInterrupt):
        _resumable_fit(tmp_path / "lost", Lookahead(total, every=3), interrupt_at=1, extra=False)
    lost = _values(_resumable_fit(tmp_path / "lost", Lookahead(total, every=3), extra=False))
    assert any(not np.allclose(a, b, atol=1e-5) for a, b in zip(lost, whole))


def test_restore_refuses_another_models_state(tmp_path):
    look = Lookahead(STEPS)
    model, (x, y) = _model(), _data()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[look])
    umask = os.umask(0o027)
    try:
        look.save(str(tmp_path))
    finally:
        os.umask(umask)
    assert os.listdir(tmp_path) == [STATE_FILE]
    # written through kzoo.atomic with the mode a plain open() gives: 0666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / STATE_FILE).st_mode) == 0o640
    assert Lookahead(STEPS).restore(str(tmp_path / "absent")) is False
    other = Lookahead(STEPS)
    small = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    other.set_model(small)
    with pytest.raises(ValueError, match="does not fit"):
        other.restore(str(tmp_path))
    (tmp_path / STATE_FILE).write_bytes(b"not a zip")
    look2 = Lookahead(STEPS)
    look2.set_model(model)
    with pytest.raises(ValueError, match="damaged"):
        look2.restore(str(tmp_path))


def test_airbench_defaults():
    look = Lookahead(100)
    assert (look.every, look.decay) == (5, AIRBENCH_DECAY) and AIRBENCH_DECAY == pytest.approx(0.95**5)


@pytest.mark.parametrize(
    "kwargs,err,name",
    [
        ({"total_steps": 0}, ValueError, "total_steps"),
        ({"total_steps": 2.5}, TypeError, "total_steps"),
        ({"total_steps": 10, "every": 0}, ValueError, "every"),
        ({"total_steps": 10, "decay": 1.5}, ValueError, "decay"),
        ({"total_steps": 10, "decay": "0.9"}, TypeError, "decay"),
    ],
)
def test_bad_arguments(kwargs, err, name):
    with pytest.raises(err, match=name):
        Lookahead(**kwargs)
