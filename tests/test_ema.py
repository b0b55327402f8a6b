"""WeightEMA against a by-hand numpy average (weights and BN statistics, warm-up,
``every``), the swap that evaluation uses, resuming from a backup, the checkpoints it
writes, its argument checks, and a MirroredStrategy run."""

import json
import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import CutAtEpoch

from kzoo.training import callbacks as cb
from kzoo.training.ema import STATE_FILE, WeightEMA
from kzoo.training.precision import dtype_policy

STEPS = 4  # batches per epoch
BATCH = 8


def _data(n=STEPS * BATCH, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32") * 3 + 1
    y = (x[:, 0] + x[:, 1] > 2).astype("int32")
    return x, y


def _model(seed=0, bn=True):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((6,)), keras.layers.Dense(5, activation="relu")]
    if bn:  # a fast momentum: the moving statistics move a lot in a few steps
        layers.append(keras.layers.BatchNormalization(momentum=0.5))
    layers.append(keras.layers.Dense(2, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _float_values(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.variables if "float" in str(v.dtype)]


def _float_paths(model):
    return [v.path for v in model.variables if "float" in str(v.dtype)]


class Recorder(keras.callbacks.Callback):
    """The raw float variables when training starts and after every step (place it
    before the EMA, whose batch-end update must see the step's weights)."""

    def __init__(self):
        super().__init__()
        self.start = None
        self.steps = []

    def on_train_batch_begin(self, batch, logs=None):
        if self.start is None:
            self.start = _float_values(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(_float_values(self.model))


def _by_hand(start, steps, decay, every=1):
    """The warm-up EMA of ``steps`` (updated after steps every, 2*every, ...)."""
    avg = [a.astype("float64") for a in start]
    n = 0
    for k, weights in enumerate(steps, start=1):
        if k % every:
            continue
        d = min(decay, (1 + n) / (10 + n))
        avg = [d * a + (1 - d) * w for a, w in zip(avg, weights)]
        n += 1
    return avg, n


def _assert_close(got, want, atol=1e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=atol, rtol=1e-5)


def _differs(a, b, atol=1e-4):
    return any(not np.allclose(x, y, atol=atol) for x, y in zip(a, b))


@pytest.mark.parametrize("decay", [0.9, 0.3])  # 0.3: the warm-up reaches the decay after 3 updates
def test_weights_are_the_by_hand_average(decay):
    model, (x, y) = _model(), _data()
    rec, ema = Recorder(), WeightEMA(decay)
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[rec, ema])
    assert len(rec.steps) == 2 * STEPS and ema.updates == 2 * STEPS
    want, _ = _by_hand(rec.start, rec.steps, decay)
    final = _float_values(model)
    _assert_close(final, want)
    _assert_close(ema.averages, want)
    assert _differs(final, rec.steps[-1])  # the model is the average, not the last step
    # BN's moving statistics are averaged too, and they did move
    paths = _float_paths(model)
    for name in ("moving_mean", "moving_variance"):
        i = next(j for j, p in enumerate(paths) if p.endswith(name))
        assert not np.allclose(rec.steps[-1][i], rec.start[i], atol=1e-3)
        assert not np.allclose(final[i], rec.steps[-1][i], atol=1e-4)
        np.testing.assert_allclose(final[i], want[i], atol=1e-5, rtol=1e-5)


def test_every_third_step():
    model, (x, y) = _model(), _data()
    rec, ema = Recorder(), WeightEMA(0.9, every=3)
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[rec, ema])
    want, n = _by_hand(rec.start, rec.steps, 0.9, every=3)
    assert n == 2 and ema.updates == 2  # after steps 3 and 6 of 8
    _assert_close(_float_values(model), want)
    every_step, _ = _by_hand(rec.start, rec.steps, 0.9)
    assert _differs(want, every_step)


def test_no_update_leaves_the_weights():
    model, (x, y) = _model(), _data()
    rec, ema = Recorder(), WeightEMA(0.9, every=100)
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        verbose=0,
        validation_data=(x, y),
        callbacks=[rec, ema],
    )
    assert ema.built and ema.updates == 0
    for got, want in zip(_float_values(model), rec.steps[-1]):
        np.testing.assert_array_equal(got, want)  # not the weights training started from


def test_mixed_precision_keeps_float32_averages():
    with dtype_policy("mixed_float16"):
        model, (x, y) = _model(), _data()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)

    class Steps(Recorder):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            self.iterations = getattr(self, "iterations", []) + [int(self.model.optimizer.iterations.numpy())]

    rec, ema = Steps(), WeightEMA(0.9)
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[rec, ema])
    assert all(s.dtype == np.float32 for s in ema.averages)
    # a step the loss-scale optimizer skips (non-finite gradients) is no update
    applied = [w for k, w in enumerate(rec.steps) if rec.iterations[k] > (rec.iterations[k - 1] if k else 0)]
    assert ema.updates == rec.iterations[-1] == len(applied) > 0
    want, _ = _by_hand(rec.start, applied, 0.9)
    _assert_close(_float_values(model), want, atol=1e-4)


def _interrupted_fit(ema, callbacks=(), epochs=2, validation=None):
    """Train ``epochs`` epochs and stop before fit's end: the model keeps its raw weights."""
    model, (x, y) = _model(), _data()
    rec = Recorder()
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=epochs + 1,
            shuffle=False,
            verbose=0,
            validation_data=validation,
            callbacks=[rec, ema, *callbacks, CutAtEpoch(epochs)],
        )
    return model, rec


def test_swapped_holds_the_average_and_restores_exactly():
    ema = WeightEMA(0.9)
    model, rec = _interrupted_fit(ema)
    raw = _float_values(model)
    for got, want in zip(raw, rec.steps[-1]):
        np.testing.assert_array_equal(got, want)
    with ema.swapped():
        _assert_close(_float_values(model), ema.averages, atol=0)
        assert _differs(_float_values(model), raw)
        with ema.swapped():  # nested: still the average, and the outer end restores
            _assert_close(_float_values(model), ema.averages, atol=0)
        _assert_close(_float_values(model), ema.averages, atol=0)
    for got, want in zip(_float_values(model), raw):
        np.testing.assert_array_equal(got, want)  # bit for bit
    # an evaluation with the callback scores the average and leaves the raw weights
    x, y = _data(seed=1)
    with_ema = model.evaluate(x, y, verbose=0, callbacks=[ema], return_dict=True)
    plain = model.evaluate(x, y, verbose=0, return_dict=True)
    with ema.swapped():
        averaged = model.evaluate(x, y, verbose=0, return_dict=True)
    assert with_ema["loss"] == pytest.approx(averaged["loss"], rel=1e-6)
    assert with_ema["loss"] != pytest.approx(plain["loss"], rel=1e-3)
    for got, want in zip(_float_values(model), raw):
        np.testing.assert_array_equal(got, want)


def test_swapped_before_any_average_does_nothing():
    model, ema = _model(), WeightEMA(0.9)
    ema.set_model(model)
    before = _float_values(model)
    with ema.swapped():
        for got, want in zip(_float_values(model), before):
            np.testing.assert_array_equal(got, want)
    assert not ema.built and ema.updates == 0


def test_validation_and_test_curve_score_the_average():
    val = _data(16, seed=1)
    test_x, test_y = _data(16, seed=2)
    ema = WeightEMA(0.9)
    # the test curve's own evaluate sees the EMA through its callbacks
    test_ds = tf.data.Dataset.from_tensor_slices((test_x, test_y)).batch(8)
    curve = cb.TestCurve(test_ds, callbacks=[ema])
    history = keras.callbacks.History()
    model, rec = _interrupted_fit(ema, callbacks=[curve, history], epochs=1, validation=val)
    logs = {k: v[-1] for k, v in history.history.items()}
    raw = model.evaluate(*val, verbose=0, return_dict=True)
    with ema.swapped():
        averaged = model.evaluate(*val, verbose=0, return_dict=True)
        test = model.evaluate(test_x, test_y, verbose=0, return_dict=True)
    assert logs["val_loss"] == pytest.approx(averaged["loss"], rel=1e-5)
    assert logs["val_loss"] != pytest.approx(raw["loss"], rel=1e-3)
    assert logs["test_loss"] == pytest.approx(test["loss"], rel=1e-5)
    for got, want in zip(_float_values(model), rec.steps[-1]):
        np.testing.assert_array_equal(got, want)  # evaluations swapped back


def _resumable_fit(folder, ema, epochs=3, interrupt_at=None, extra=True):
    model, (x, y) = _model(), _data()
    callbacks = [ema, cb.Backup(str(folder), extra_state=[ema] if extra else [])]
    if interrupt_at is not None:
        callbacks.append(CutAtEpoch(interrupt_at))
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return model


@pytest.mark.parametrize("every", [1, 3])  # 3: the updates fall at the same steps after the resume
def test_resume_continues_the_average(tmp_path, every):
    whole = _float_values(_resumable_fit(tmp_path / "whole", WeightEMA(0.9, every)))
    with pytest.raises(KeyboardInterrupt):
        _resumable_fit(tmp_path / "parts", WeightEMA(0.9, every), interrupt_at=1)
    backups = os.listdir(tmp_path / "parts")
    assert backups == ["epoch-0001"] and STATE_FILE in os.listdir(tmp_path / "parts" / "epoch-0001")
    ema = WeightEMA(0.9, every)
    resumed = _float_values(_resumable_fit(tmp_path / "parts", ema))
    assert ema.updates == (3 * STEPS) // every
    _assert_close(resumed, whole, atol=1e-6)
    # without the EMA state the resumed run restarts its average: not the same model
    with pytest.raises(KeyboardInterrupt):
        _resumable_fit(tmp_path / "lost", WeightEMA(0.9, every), interrupt_at=1, extra=False)
    lost = _float_values(_resumable_fit(tmp_path / "lost", WeightEMA(0.9, every), extra=False))
    assert _differs(lost, whole)


def test_save_and_restore(tmp_path):
    ema = WeightEMA(0.9)
    model, _ = _interrupted_fit(ema, epochs=1)
    umask = os.umask(0o027)
    try:
        ema.save(str(tmp_path))
    finally:
        os.umask(umask)
    assert os.listdir(tmp_path) == [STATE_FILE]  # no temporary file left
    # written through kzoo.atomic with the mode a plain open() gives: 0666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / STATE_FILE).st_mode) == 0o640
    other = WeightEMA(0.9)
    other.set_model(model)
    assert other.restore(str(tmp_path)) is True
    assert other.updates == ema.updates == STEPS
    _assert_close(other.averages, ema.averages, atol=0)
    fresh = WeightEMA(0.9)
    fresh.set_model(model)
    assert fresh.restore(str(tmp_path / "absent")) is False and fresh.updates == 0
    # another model's average is refused
    small = _model(bn=False)
    wrong = WeightEMA(0.9)
    wrong.set_model(small)
    with pytest.raises(ValueError, match="does not fit"):
        wrong.restore(str(tmp_path))
    (tmp_path / STATE_FILE).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="damaged"):
        other.restore(str(tmp_path))


def test_checkpoints_hold_the_average(tmp_path):
    ema = WeightEMA(0.9)
    val = _data(16, seed=1)
    after = Recorder()  # after the checkpoints: training goes on from the raw weights

    class AtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after.steps.append(_float_values(self.model))

    checkpoints = cb.Checkpoints(str(tmp_path), "val_accuracy", ema=ema)
    model, rec = _interrupted_fit(ema, callbacks=[checkpoints, AtEpochEnd()], epochs=2, validation=val)
    last = keras.models.load_model(tmp_path / "last.keras")
    _assert_close(_float_values(last), ema.averages, atol=0)
    assert _differs(_float_values(last), rec.steps[-1])
    assert os.path.exists(tmp_path / "best.keras")
    for epoch_end, step in zip(after.steps, (rec.steps[STEPS - 1], rec.steps[-1])):
        for got, want in zip(epoch_end, step):
            np.testing.assert_array_equal(got, want)
    # without an ema the checkpoint is the raw model
    plain = cb.Checkpoints(str(tmp_path / "plain"), None)
    os.makedirs(tmp_path / "plain")
    plain.set_model(model)
    plain.on_epoch_end(0, {})
    for got, want in zip(
        _float_values(keras.models.load_model(tmp_path / "plain" / "last.keras")), rec.steps[-1]
    ):
        np.testing.assert_array_equal(got, want)


BAD_DECAY = [
    (0, ValueError),
    (1, ValueError),
    (-1, ValueError),
    (1.5, ValueError),
    (float("nan"), ValueError),
]
BAD_DECAY += [("x", TypeError), (True, TypeError), (None, TypeError)]


@pytest.mark.parametrize("decay, error", BAD_DECAY)
def test_bad_decay(decay, error):
    with pytest.raises(error, match="ema_decay"):
        WeightEMA(decay)


@pytest.mark.parametrize(
    "every, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("3", TypeError)]
)
def test_bad_every(every, error):
    with pytest.raises(error, match="ema_every"):
        WeightEMA(0.9, every)


MIRRORED = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kzoo.training import distribute
from kzoo.training.ema import WeightEMA

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((x, (x[:, 0] > 0).astype("int32"))).batch(16)
with strategy.scope():
    inputs = keras.Input((4,))
    bn = keras.layers.BatchNormalization(name="bn", momentum=0.5)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(bn(inputs)))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
ema = WeightEMA(0.9)
with distribute.distributed_fit_fixes(model):
    model.fit(ds, epochs=2, verbose=0, validation_data=ds,
              callbacks=[distribute.SyncMovingStatistics(), ema])
replicas = [[np.asarray(r).tolist() for r in strategy.experimental_local_results(v.value)]
            for v in model.variables if "float" in str(v.dtype)]
print(json.dumps({"updates": ema.updates, "replicas": replicas,
                  "averages": [a.tolist() for a in ema.averages]}))
"""


def test_mirrored_strategy(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["updates"] == 8
    for replicas, average in zip(result["replicas"], result["averages"]):
        for r in replicas:  # every replica holds the average at the end
            np.testing.assert_allclose(r, average, atol=1e-6)
