"""Protocols as data: every schedule at its boundary steps, overrides, validation, and
weight decay with the papers' (coupled, through momentum) semantics."""

import keras
import numpy as np
import pytest

from kzoo.training import Protocol, apply_weight_decay, get_protocol, list_protocols

STEPS = 100  # steps per epoch used to turn epoch milestones into iterations


def _lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def _boundaries(p):
    """(step, expected rate) pairs just before and at each milestone."""
    total = p.total_epochs(STEPS) * STEPS
    if p.milestone_unit == "step":
        steps = list(p.milestones)
    elif p.milestone_unit == "fraction":
        steps = [round(m * total) for m in p.milestones]
    else:
        steps = [m * STEPS for m in p.milestones]
    pairs = []
    for i, s in enumerate(steps):
        pairs += [(s - 1, p.lr * p.gamma**i), (s, p.lr * p.gamma ** (i + 1))]
    return pairs


@pytest.mark.parametrize("name", [n for n in list_protocols() if get_protocol(n).schedule == "step"])
def test_step_schedules_at_their_boundaries(name):
    p = get_protocol(name)
    schedule = p.learning_rate(STEPS)
    assert p.milestones, name
    first = p.warmup_steps
    assert _lr(schedule, first) == pytest.approx(p.lr)
    for step, rate in _boundaries(p):
        assert _lr(schedule, step) == pytest.approx(rate), (name, step)
    assert _lr(schedule, 10**7) == pytest.approx(p.lr * p.gamma ** len(p.milestones))


def test_papers_numbers():
    he = get_protocol("he_cifar")
    assert (he.steps, he.milestones, he.batch_size, he.weight_decay, he.validation_size) == (
        64000,
        (32000, 48000),
        128,
        1e-4,
        5000,
    )
    assert he.total_epochs(352) == 182  # 45k images / 128 -> 352 steps; 64k iterations fall in epoch 182
    warm = get_protocol("he_cifar_warmup").learning_rate(352)
    assert _lr(warm, 0) == _lr(warm, 399) == pytest.approx(0.01)
    assert _lr(warm, 400) == pytest.approx(0.1)
    wrn = get_protocol("wrn_cifar")
    assert _lr(wrn.learning_rate(STEPS), 160 * STEPS) == pytest.approx(0.1 * 0.2**3)
    assert get_protocol("wrn_svhn").model_kwargs == {"dropout_rate": 0.4}
    assert not get_protocol("wrn_svhn").augment
    dfn = get_protocol("dfn_mr_cifar")
    assert dfn.milestone_steps(STEPS) == [200 * STEPS, 300 * STEPS, 350 * STEPS]
    assert get_protocol("fb_resnet_cifar").nesterov and get_protocol("fb_resnet_cifar").milestones == (
        81,
        122,
    )
    assert get_protocol("smallnet_frelu").lr == 0.01 and get_protocol("smallnet_frelu_bn").lr == 0.1
    assert get_protocol("stochastic_depth_cifar").model_kwargs == {"stochastic_depth": 0.5}


def test_cosine_protocols():
    p = get_protocol("fashion_mnist_demo")
    total = p.epochs * STEPS
    s = p.learning_rate(STEPS)
    assert _lr(s, 0) == pytest.approx(p.lr / p.warmup_steps)
    assert _lr(s, p.warmup_steps) == pytest.approx(p.lr)
    assert _lr(s, total) == pytest.approx(0.0, abs=1e-9)
    assert _lr(s, (total + p.warmup_steps) // 2) == pytest.approx(p.lr / 2, rel=1e-2)


def test_overrides_and_serialization():
    p = get_protocol("he_cifar", epochs=3, lr=0.05)
    assert (p.epochs, p.steps, p.lr, p.name) == (3, None, 0.05, "he_cifar")
    assert get_protocol(p) == p
    schedule = p.learning_rate(10)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert [_lr(clone, s) for s in (0, 5000)] == [_lr(schedule, s) for s in (0, 5000)]
    custom = Protocol(
        "mine", "a test", "me", "cifar10", epochs=2, milestones=(0.5,), milestone_unit="fraction"
    )
    assert custom.milestone_steps(10) == [10]


@pytest.mark.parametrize(
    "args, err, match",
    [
        (("nope",), ValueError, "Unknown `protocol`"),
        (("wrn_cifr",), ValueError, "wrn_cifar"),
        ((3,), TypeError, "protocol"),
        (("he_cifar",), ValueError, "unknown protocol field.*'momentun' \\(did you mean 'momentum'"),
    ],
)
def test_bad_protocols(args, err, match):
    kwargs = {"momentun": 0.9} if "momentun" in match else {}
    with pytest.raises(err, match=match):
        get_protocol(*args, **kwargs)


@pytest.mark.parametrize(
    "field, value, err",
    [
        ("epochs", -1, ValueError),
        ("epochs", 2.5, TypeError),
        ("batch_size", 0, ValueError),
        ("lr", -0.1, ValueError),
        ("weight_decay", -1e-4, ValueError),
        ("nesterov", "yes", TypeError),
        ("schedule", "linear", ValueError),
        ("milestones", (5, 2), ValueError),
        ("validation_size", -5, ValueError),
        ("momentum", 1.0, ValueError),
        ("momentum", -0.1, ValueError),
        ("train_fraction", 0, ValueError),
        ("train_fraction", 1.5, ValueError),
        ("train_fraction", "10%", TypeError),
        # a run of nothing, and non-finite numbers: each compares False with every bound
        ("epochs", 0, ValueError),
        ("steps", 0, ValueError),
        ("lr", float("nan"), ValueError),
        ("lr", float("inf"), ValueError),
        ("weight_decay", float("inf"), ValueError),
        ("weight_decay", float("nan"), ValueError),
        ("momentum", float("nan"), ValueError),
        ("gamma", float("inf"), ValueError),
        ("train_fraction", float("nan"), ValueError),
        ("warmup_lr", float("nan"), ValueError),
        ("milestones", (1, float("nan")), ValueError),
        ("lr", "0.1", TypeError),
        ("schedule", "cosin", ValueError),
    ],
)
def test_bad_fields(field, value, err):
    with pytest.raises(err, match=field):
        get_protocol("wrn_cifar", **{field: value})


def test_integer_rates_become_floats():
    """keras' SGD refuses momentum=0 (an int): the protocol hands it floats."""
    p = get_protocol("wrn_cifar", momentum=0, lr=1, weight_decay=0, gamma=1)
    assert all(type(getattr(p, f)) is float for f in ("momentum", "lr", "weight_decay", "gamma"))
    keras.optimizers.SGD(p.learning_rate(10), momentum=p.momentum)


def test_weight_decay_goes_through_momentum():
    """Two SGD steps with momentum match Torch's rule: g' = g + wd * w, v = m v + g',
    w -= lr v (not keras' decoupled decay)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    wd, lr, m = 0.1, 0.5, 0.9
    assert apply_weight_decay(model, wd) == 1
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=m), loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    w = model.get_weights()[0].astype("float64")
    v = np.zeros_like(w)
    for _ in range(2):
        pred = x @ w
        g = x.T @ (2 * (pred - y) / pred.size) + wd * w
        v = m * v + g
        w = w - lr * v
        model.train_on_batch(x, y)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5)


@pytest.mark.parametrize(
    "protocol, fields, match",
    [
        # a field that acts only through another one, set while that one is off
        ("fashion_mnist_cpu", {"warmup_lr": 0.01}, "`warmup_lr`.*cosine.*warms up from 0"),
        ("he_cifar", {"warmup_lr": 0.01}, "`warmup_lr`.*`warmup_steps` > 0"),
        (
            "fashion_mnist_cpu",
            {"schedule": "onecycle", "warmup_steps": 0, "warmup_lr": 0.01},
            "`warmup_steps`",
        ),
        ("he_cifar_warmup", {"schedule": "cosine", "warmup_lr": 0.01}, "`warmup_lr`.*schedule"),
        ("wrn_cifar", {"ema_every": 5}, "`ema_every`.*`ema_decay`"),
        ("fashion_mnist_cpu", {"milestones": (1,)}, "`milestones`.*'step'"),
        ("wrn_cifar", {"nesterov": True, "momentum": 0.0}, "`nesterov`.*`momentum` > 0"),
        # a field with a default, named by the caller while what it shapes is off
        ("fashion_mnist_cpu", {"gamma": 0.5}, "`gamma`.*`milestones`"),
        ("he_cifar", {"milestones": (), "gamma": 0.2}, "`gamma`.*`milestones`"),
        ("fashion_mnist_cpu", {"milestone_unit": "step"}, "`milestone_unit`.*`milestones`"),
        ("wrn_cifar", {"weight_decay": 0, "decay_all": False}, "`decay_all`.*`weight_decay` > 0"),
    ],
)
def test_settings_that_would_do_nothing_are_refused(protocol, fields, match):
    with pytest.raises(ValueError, match=f"{match}.*drop it or set what it needs"):
        get_protocol(protocol, **fields)


@pytest.mark.parametrize(
    "protocol, fields, expected",
    [
        ("he_cifar_warmup", {"warmup_steps": 0}, {"warmup_lr": None}),
        ("he_cifar", {"schedule": "cosine"}, {"milestones": ()}),
        ("wrn_cifar", {"momentum": 0.0}, {"nesterov": False}),
        ("he_cifar_warmup", {"schedule": "onecycle"}, {"warmup_lr": 0.01, "warmup_steps": 400}),
    ],
)
def test_turning_a_setting_off_turns_off_what_only_acts_through_it(protocol, fields, expected):
    p = get_protocol(protocol, **fields)
    assert {k: getattr(p, k) for k in expected} == expected


def test_turning_the_average_off_drops_its_period():
    with_ema = Protocol("ema_every_test", "", "", "cifar10", epochs=1, ema_decay=0.99, ema_every=5)
    assert get_protocol(with_ema, ema_decay=None).ema_every == 1
    with pytest.raises(ValueError, match="`ema_every`.*`ema_decay`"):
        get_protocol(with_ema, ema_decay=None, ema_every=5)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"warmup_steps": 2000, "warmup_lr": 0.01}, "`warmup_steps`=2000 is not shorter than the run"),
        ({"schedule": "onecycle", "warmup_steps": 1000}, "`warmup_steps`=1000 is not shorter"),
        ({"ema_decay": 0.99, "ema_every": 1001}, "`ema_every`=1001 would never update"),
    ],
)
def test_a_warmup_or_average_the_run_is_too_short_for_is_refused(fields, match):
    p = get_protocol("wrn_cifar", epochs=10, **fields)
    with pytest.raises(ValueError, match=match + ".*1000 steps"):
        p.check_length(100)
    get_protocol("wrn_cifar", epochs=30, **fields).check_length(100)  # long enough


def test_kzoos_schedules_against_keras_own():
    """Where kzoo's schedules give keras' rates and where (and how) they do not, as their
    docstrings say: StepSchedule starts a rate at its boundary, PiecewiseConstantDecay
    one step later; WarmupCosine without a warm-up is CosineDecay, and with one its warm-up
    runs a step ahead of keras' (which starts at 0) before the same cosine."""
    from kzoo.training import StepSchedule, WarmupCosine

    def rates(schedule, steps):
        return np.array([float(keras.ops.convert_to_numpy(schedule(s))) for s in steps])

    steps = range(0, 60)
    ours = rates(StepSchedule([20, 40], [0.1, 0.01, 0.001]), steps)
    theirs = rates(keras.optimizers.schedules.PiecewiseConstantDecay([20, 40], [0.1, 0.01, 0.001]), steps)
    differ = [s for s in steps if not np.isclose(ours[s], theirs[s])]
    assert differ == [20, 40]  # keras keeps the old rate at the boundary itself
    np.testing.assert_allclose(ours[20:40], 0.01)

    steps = range(0, 101)
    np.testing.assert_allclose(
        rates(WarmupCosine(0.4, 100), steps),
        rates(keras.optimizers.schedules.CosineDecay(0.4, 100), steps),
        rtol=1e-6,
        atol=1e-7,
    )
    ours = rates(WarmupCosine(0.4, 100, warmup_steps=10), steps)
    theirs = rates(keras.optimizers.schedules.CosineDecay(0.0, 90, warmup_target=0.4, warmup_steps=10), steps)
    np.testing.assert_allclose(ours[10:], theirs[10:], rtol=1e-6, atol=1e-7)  # the same cosine
    np.testing.assert_allclose(ours[:10], theirs[1:11], rtol=1e-6)  # the warm-up a step ahead
    assert theirs[0] == 0.0 and ours[0] == pytest.approx(0.04)
