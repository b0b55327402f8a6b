"""The fast-training tools as protocol fields: each off by default, checked before any
data is read, and doing what it says (the one-cycle rate at its corners, label smoothing's
loss against the formula, the CLI flags reaching the protocol, a run's .keras file
loading in a fresh process), and a run using all of them at once."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import CutAtEpoch

from kzoo import cli
from kzoo.training import OneCycle, SparseLabelSmoothingCrossentropy, get_protocol, list_protocols

TOOLS = {
    "label_smoothing": 0.0,
    "ema_decay": None,
    "ema_every": 1,
    "random_erasing": 0.0,
    "alternating_flip": False,
    "lookahead": False,
    "tta": None,
}


def _lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize("name", list_protocols())
def test_every_registered_protocol_leaves_the_tools_off(name):
    p = get_protocol(name)
    assert {k: getattr(p, k) for k in TOOLS} == TOOLS
    assert p.schedule != "onecycle"


def test_one_cycle_rate_at_its_corners():
    p = get_protocol("fashion_mnist_cpu", schedule="onecycle", epochs=10, warmup_steps=200, warmup_lr=0.02)
    s = p.learning_rate(100)  # 1000 steps
    assert isinstance(s, OneCycle)
    assert _lr(s, 0) == pytest.approx(0.02 + 0.08 / 200)
    assert _lr(s, 99) == pytest.approx(0.02 + 0.08 * 100 / 200)
    assert _lr(s, 199) == pytest.approx(0.1)
    assert _lr(s, 200) == pytest.approx(0.1)
    assert _lr(s, 600) == pytest.approx(0.05)
    assert _lr(s, 1000) == pytest.approx(0.0, abs=1e-9) and _lr(s, 5000) == pytest.approx(0.0, abs=1e-9)
    rates = [_lr(s, t) for t in range(0, 1001, 25)]
    peak = rates.index(max(rates))
    assert all(a <= b + 1e-9 for a, b in zip(rates[:peak], rates[1 : peak + 1]))  # up, then down
    assert all(a >= b - 1e-9 for a, b in zip(rates[peak:], rates[peak + 1 :]))
    no_warmup = get_protocol("fashion_mnist_cpu", schedule="onecycle", epochs=10, warmup_steps=0)
    assert _lr(no_warmup.learning_rate(100), 0) == pytest.approx(0.1)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert [_lr(clone, t) for t in (0, 150, 700)] == [_lr(s, t) for t in (0, 150, 700)]


def test_label_smoothing_loss_is_the_smoothed_cross_entropy():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), 16).astype("float32")
    labels = rng.integers(0, 10, 16)
    eps = 0.2
    target = np.full((16, 10), eps / 10) + (1 - eps) * np.eye(10)[labels]
    expected = -(target * np.log(np.clip(probs, 1e-7, 1))).sum(1).mean()
    loss = SparseLabelSmoothingCrossentropy(eps)
    assert float(loss(labels, probs)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(labels[:, None], probs)) == pytest.approx(expected, rel=1e-5)  # [B, 1] labels
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    assert float(SparseLabelSmoothingCrossentropy(0.0)(labels, probs)) == pytest.approx(
        float(plain), rel=1e-5
    )
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert clone.label_smoothing == eps


@pytest.mark.parametrize(
    "field, value, err",
    [
        ("label_smoothing", 1.0, ValueError),
        ("label_smoothing", -0.1, ValueError),
        ("label_smoothing", float("nan"), ValueError),
        ("label_smoothing", "0.1", TypeError),
        ("ema_decay", 0.0, ValueError),
        ("ema_decay", 1.0, ValueError),
        ("ema_decay", float("nan"), ValueError),
        ("ema_every", 0, ValueError),
        ("ema_every", 2.5, TypeError),
        ("random_erasing", 1.5, ValueError),
        ("random_erasing", -0.5, ValueError),
        ("alternating_flip", 1, TypeError),
        ("lookahead", "yes", TypeError),
        ("tta", "flips", ValueError),
        ("tta", 1, ValueError),
        ("schedule", "one_cycle", ValueError),
    ],
)
def test_bad_tool_fields(field, value, err):
    with pytest.raises(err, match=field):
        get_protocol("fashion_mnist_cpu", **{field: value})


def test_tools_that_contradict_the_protocol_are_refused():
    with pytest.raises(ValueError, match="`random_erasing`.*`augment`"):
        get_protocol("wrn_svhn", random_erasing=0.5)
    with pytest.raises(ValueError, match="`alternating_flip`.*`augment`"):
        get_protocol("wrn_svhn", alternating_flip=True)
    with pytest.raises(ValueError, match="`warmup_lr`"):
        get_protocol("fashion_mnist_cpu", schedule="onecycle", warmup_lr=0.5)


@pytest.mark.parametrize("tool", [{"tta": "flip"}, {"alternating_flip": True}])
def test_flips_are_refused_for_a_dataset_that_does_not_flip(tmp_path, tool):
    from kzoo.training import train

    with pytest.raises(ValueError, match=f"`{next(iter(tool))}`"):
        train("resnet20", "mnist", "fashion_mnist_cpu", **tool, out=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists()


def test_the_cli_flags_reach_the_protocol(monkeypatch):
    seen = {}

    def fake_train(config):
        seen.update(config.protocol.to_dict())
        raise ValueError("stop here")

    monkeypatch.setattr("kzoo.training.trainer.train_from_config", fake_train)
    flags = [
        "--schedule", "onecycle", "--warmup-steps", "100", "--weight-decay", "1e-4",
        "--label-smoothing", "0.1", "--ema-decay", "0.99", "--ema-every", "5",
        "--random-erasing", "0.5", "--alternating-flip", "--lookahead", "--tta", "flip", "--lr", "0.2",
    ]  # fmt: skip
    assert cli.main(["train", "resnet20", *flags]) == 2
    assert {k: seen[k] for k in ("schedule", "warmup_steps", "weight_decay", "lr")} == {
        "schedule": "onecycle",
        "warmup_steps": 100,
        "weight_decay": 1e-4,
        "lr": 0.2,
    }
    assert {k: seen[k] for k in TOOLS} == {
        "label_smoothing": 0.1,
        "ema_decay": 0.99,
        "ema_every": 5,
        "random_erasing": 0.5,
        "alternating_flip": True,
        "lookahead": True,
        "tta": "flip",
    }
    seen.clear()
    assert cli.main(["train", "resnet20"]) == 2
    protocol = get_protocol("fashion_mnist_demo")
    assert {k: seen[k] for k in TOOLS} == {k: getattr(protocol, k) for k in TOOLS}  # the protocol's


def test_a_runs_model_file_loads_in_a_fresh_process(tmp_path):
    """A .keras file compiled with kzoo's schedules and loss names them; kzoo.load_model
    registers them itself (before, a fresh process needed kzoo.training imported)."""
    from kzoo.training import WarmupCosine

    path = str(tmp_path / "m.keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        keras.optimizers.SGD(WarmupCosine(0.1, 100, 10)),
        SparseLabelSmoothingCrossentropy(0.1),
    )
    model.fit(np.ones((8, 4), "float32"), np.zeros(8), verbose=0)
    model.save(path)
    code = (
        f"import json, kzoo; m = kzoo.load_model({path!r}); "
        "print(json.dumps([type(m.loss).__name__, m.optimizer.get_config()['learning_rate']['class_name']]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == ["SparseLabelSmoothingCrossentropy", "WarmupCosine"]


ALL_TOOLS = {
    "label_smoothing": 0.1,
    "ema_decay": 0.9,
    "ema_every": 2,
    "random_erasing": 0.5,
    "alternating_flip": True,
    "lookahead": True,
    "tta": "flip",
    "schedule": "onecycle",
    "warmup_steps": 10,
}


def test_a_run_with_every_tool_scores_saves_and_resumes_the_average(fmnist_like_dir, tmp_path):
    """Label smoothing, random erasing, alternating flips, lookahead, the one-cycle rate,
    the weights' average and test-time flips in one run: its test score is the saved
    model's own, flip-averaged, and a run interrupted after an epoch resumes to the same
    model and curve."""
    import kzoo
    from kzoo.training import train

    kwargs = dict(
        epochs=3,
        batch_size=64,
        validation_size=64,
        data_dir=fmnist_like_dir,
        verbose=0,
        test_curve=True,
        **ALL_TOOLS,
    )
    args = ("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu")
    whole = train(*args, out=str(tmp_path / "whole"), **kwargs)
    m = whole.metrics
    assert m["tta"] == "flip" and m["ema_decay"] == 0.9
    config = json.loads((tmp_path / "whole" / "config.json").read_text())["protocol_fields"]
    assert {k: config[k] for k in ALL_TOOLS} == ALL_TOOLS
    assert isinstance(whole.model.loss, SparseLabelSmoothingCrossentropy)
    again = kzoo.evaluate(str(tmp_path / "whole"), data_dir=fmnist_like_dir, tta="flip")
    assert again["test_top1"] == pytest.approx(m["test_top1"]) and again["test_loss"] == pytest.approx(
        m["test_loss"], rel=1e-4
    )
    with pytest.raises(KeyboardInterrupt):
        train(*args, out=str(tmp_path / "cut"), callbacks=[CutAtEpoch(2)], **kwargs)
    backups = sorted((tmp_path / "cut" / "backup").iterdir())
    assert {"ema.npz", "lookahead.npz"} <= set(os.listdir(backups[-1]))  # both are part of the backup
    resumed = train(*args, out=str(tmp_path / "cut"), **kwargs)
    # The resumed run is the uninterrupted one: the same curve, epoch after epoch (the input
    # pipeline, the alternating flips, the slow weights and the average all resume exactly).
    assert [r["test_accuracy"] for r in resumed.history] == [r["test_accuracy"] for r in whole.history]
    assert len(resumed.history) == 3 and resumed.metrics["tta"] == "flip"
    cut = kzoo.evaluate(str(tmp_path / "cut"), data_dir=fmnist_like_dir, tta="flip")
    assert cut["test_top1"] == pytest.approx(resumed.metrics["test_top1"])
