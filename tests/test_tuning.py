"""kzoo.tuning / kzoo tune: placement search with the real keras-tuner on a real
Fashion-MNIST subset (1,200 training images, 400 of them for validation; 500 test)."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras_tuner
import numpy as np
import pytest

import kzoo
from kzoo import tuning
from kzoo.tuning import Range, SearchSpace

SMALL = {"epochs": 1, "validation_size": 400, "batch_size": 64}
ENV = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
ENV.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def _rows(out):
    with open(os.path.join(out, "results.csv")) as f:
        return list(csv.DictReader(f))


def _json(path):
    with open(path) as f:
        return json.load(f)


def _cli(*args):
    return [sys.executable, "-m", "kzoo_command", "tune", *args]


# ----------------------------------------------------------------------------- the space


def test_space_defaults_are_the_papers_choice():
    space = SearchSpace()
    assert space.locations == ("last",) and space.proportions == (0.25, 0.5, 0.75, 1.0)
    assert space.activations == ("relu",) and space.size() == 4
    both = SearchSpace(
        locations=["none", "last"], activations=["relu", "frelu", "prelu"], learning_rates=[0.05, 0.1]
    )
    assert both.size() == (1 + 4) * 3 * 2
    assert SearchSpace(learning_rates=Range(0.01, 0.3)).size() is None
    assert json.loads(json.dumps(both.to_dict()))["locations"] == ["none", "last"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"proportions": [0.5, 1.5]}, ValueError, r"`proportions` must each be in \(0, 1\], got 1.5"),
        ({"proportions": [0]}, ValueError, r"`proportions` must each be in \(0, 1\]"),
        ({"proportions": [-0.25]}, ValueError, r"`proportions`"),
        ({"proportions": [True]}, TypeError, "`proportions` must hold numbers"),
        ({"proportions": []}, TypeError, "`proportions` must be a non-empty list"),
        ({"proportions": [0.5, 0.5]}, ValueError, "must not repeat"),
        ({"locations": []}, TypeError, "`locations`"),
        ({"locations": ["last", "last"]}, ValueError, "`locations` must not repeat"),
        ({"activations": ["swish"]}, ValueError, "`activations` must be among relu, frelu, prelu"),
        ({"learning_rates": [0.1, -1]}, ValueError, "`learning_rates` must be positive"),
        ({"learning_rates": Range(0.3, 0.01)}, ValueError, "`learning_rates` range"),
        ({"learning_rates": Range(0, 0.1)}, ValueError, "`learning_rates` range"),
        ({"weight_decays": [-1e-4]}, ValueError, "`weight_decays` must be non-negative"),
    ],
)
def test_bad_spaces_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        SearchSpace(**kwargs)


def test_a_location_the_architecture_lacks_is_refused_before_training(tmp_path):
    # A post-activation basic block has two ReLUs (first, last): no "third".
    with pytest.raises(ValueError, match=r"`locations`: resnet20 cannot erase 'third'.*'first', 'last'"):
        tuning.tune(
            "resnet20",
            "fashion_mnist",
            space=SearchSpace(locations=["last", "third"]),
            out=str(tmp_path / "s"),
        )
    # An Inception module has "reduce"; a merge-and-run block does not.
    tuning.PlacementHyperModel("inception_v2_cifar", "cifar10", space=SearchSpace(locations=["reduce"]))
    with pytest.raises(ValueError, match="cannot erase 'reduce'.*merge-and-run"):
        tuning.PlacementHyperModel("dfn_mr1", "cifar10", space=SearchSpace(locations=["reduce"]))
    assert not (tmp_path / "s").exists()  # nothing written, nothing trained


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tuner": "evolution"}, "`tuner` must be one of 'random', 'grid', 'bayesian', 'hyperband'"),
        ({"max_trials": 0}, "`max_trials` must be an integer at least 1"),
        ({"tuner": "hyperband", "max_trials": 4}, "`max_trials` does not apply to the hyperband"),
        (
            {"tuner": "hyperband", "protocol": "he_cifar", "dataset": "cifar10"},
            "needs the protocol's length in epochs",
        ),
        ({"validation_size": 0}, "tuning selects on a validation split"),
        # settings that would do nothing in a search
        ({"tta": "flip"}, "`tta`='flip' averages test scores.*would do nothing"),
        ({"epochs": 1, "warmup_steps": 5000}, "`warmup_steps`=5000 is not shorter than the run"),
        ({"ema_every": 3}, "`ema_every`=3 does nothing here: it needs `ema_decay`"),
        ({"model_kwargs": {"erase": "first"}}, "`model_kwargs` must not set erase"),
        (
            {"max_consecutive_failed_trials": 0},
            "`max_consecutive_failed_trials` must be an integer at least 1",
        ),
    ],
)
def test_bad_search_arguments_are_refused(tmp_path, kwargs, match):
    kwargs = {"dataset": "fashion_mnist", **kwargs}
    with pytest.raises(ValueError, match=match):
        tuning.tune("resnet20", out=str(tmp_path / "s"), **kwargs)
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- checked before data

NAN, INF = float("nan"), float("inf")


@pytest.fixture
def no_data(monkeypatch):
    """kzoo.data.load that fails the test: a refused call must not have read any data."""

    def load(*args, **kwargs):
        raise AssertionError("data was read before the arguments were checked")

    monkeypatch.setattr("kzoo.data.load", load)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"learning_rates": [NAN]}, ValueError, "`learning_rates` must hold finite numbers, got nan"),
        ({"learning_rates": [0.1, INF]}, ValueError, "`learning_rates` must hold finite numbers, got inf"),
        ({"weight_decays": [INF]}, ValueError, "`weight_decays` must hold finite numbers, got inf"),
        ({"proportions": [0.5, NAN]}, ValueError, "`proportions` must hold finite numbers, got nan"),
        (
            {"learning_rates": Range(0.01, INF)},
            ValueError,
            r"`learning_rates` range: `high` must be a finite number",
        ),
        (
            {"learning_rates": Range(NAN, 1)},
            ValueError,
            r"`learning_rates` range: `low` must be a finite number",
        ),
        ({"weight_decays": Range(-INF, 1e-3, log=False)}, ValueError, r"`weight_decays` range: `low`"),
        (
            {"learning_rates": Range(0.01, 0.1, log="yes")},
            TypeError,
            r"`learning_rates` range: `log` must be True or False",
        ),
        (
            {"learning_rates": Range(0.0, 0.1, log=False)},
            ValueError,
            r"`learning_rates` range needs 0 < low < high",
        ),
        (
            {"learning_rates": Range("0.01", 0.1)},
            TypeError,
            r"`learning_rates` range: `low` must be a finite number",
        ),
    ],
)
def test_non_finite_and_malformed_spaces_are_refused(kwargs, error, match):
    """nan/inf compare False with every bound, so each number is checked finite."""
    with pytest.raises(error, match=match):
        SearchSpace(**kwargs)


def test_spaces_take_numpy_numbers_and_linear_weight_decay_from_zero():
    """What the checks let through: numpy scalars, a linear weight-decay range from 0."""
    space = SearchSpace(
        proportions=[np.float32(0.5)],
        learning_rates=[np.float64(0.1)],
        weight_decays=Range(0, 1e-3, log=False),
    )
    assert space.proportions == (0.5,) and space.learning_rates == (0.1,)
    assert space.weight_decays == Range(0.0, 1e-3, False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        # A misspelt builder argument is model_kwargs' fault, not the (valid) location's.
        (
            {"model_kwargs": {"stochastik_depth": 0.5}},
            ValueError,
            r"`model_kwargs` has unknown argument\(s\) of resnet20 'stochastik_depth' "
            r"\(did you mean 'stochastic_depth'\?\)",
        ),
        (
            {"model_kwargs": {"stochastik_depth": 0.5}, "space": SearchSpace(locations=["third"])},
            ValueError,
            "`model_kwargs` has unknown",
        ),
        (
            {"model_kwargs": {"stochastic_depth": NAN}},
            ValueError,
            r"`model_kwargs`: resnet20 cannot be built with \{'stochastic_depth': nan\}: "
            r"`stochastic_depth` must be",
        ),
        (
            {"model": "wrn16_8", "model_kwargs": {"dropout_rate": NAN}},
            ValueError,
            r"`model_kwargs`: wrn16_8 cannot be built .*`dropout_rate` must be a finite number .*, got nan",
        ),
        (
            {"model_kwargs": {"classes": 100}},
            ValueError,
            r"`model_kwargs`: classes=100 disagrees with dataset 'fashion_mnist', which has 10 classes",
        ),
        (
            {"model_kwargs": {"input_shape": (32, 32, 3)}},
            ValueError,
            r"`model_kwargs`: input_shape=\(32, 32, 3\) disagrees with dataset 'fashion_mnist'"
            r".*\(28, 28, 1\)",
        ),
        (
            {"model_kwargs": {"include_top": False}},
            ValueError,
            r"`model_kwargs`=.* make resnet20 output shape",
        ),
        # Good model_kwargs, a slot the block lacks: the location's fault.
        (
            {"model_kwargs": {"stochastic_depth": 0.5}, "space": SearchSpace(locations=["last", "third"])},
            ValueError,
            r"`locations`: resnet20 cannot erase 'third'",
        ),
    ],
)
def test_builder_arguments_are_checked_and_blamed_before_data(tmp_path, no_data, kwargs, error, match):
    """model_kwargs are built alone first, then each location: the error names the culprit."""
    kwargs = {"model": "resnet20", "dataset": "fashion_mnist", **kwargs}
    with pytest.raises(error, match=match):
        tuning.tune(out=str(tmp_path / "s"), **kwargs)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"batch_size": 60000},
            r"`batch_size`[= ]60000 is larger than the 55000 training examples of fashion_mnist",
        ),
        (
            {"batch_size": 64, "validation_size": 59990},
            r"`batch_size`[= ]64 is larger than the 10 training examples",
        ),
        (
            {"batch_size": 64, "train_fraction": 1e-4},
            r"`batch_size`[= ]64 is larger than the 6 .*train_fraction=0.0001",
        ),
        ({"epochs": 0}, "`epochs` must be .*at least 1"),
        ({"protocol": "he_cifar", "dataset": "cifar10", "steps": 0}, "`steps` must be .*at least 1"),
        ({"tuner": "hyperband", "epochs": 1}, "the hyperband tuner needs `epochs` .* of at least 3"),
        ({"tuner": "hyperband", "epochs": 2}, "nothing to halve"),
    ],
)
def test_trials_that_would_train_on_nothing_are_refused_up_front(tmp_path, no_data, kwargs, match):
    """0 steps or 0 epochs per trial would record an untrained model as a completed trial."""
    kwargs = {"dataset": "fashion_mnist", **kwargs}
    with pytest.raises(ValueError, match=match):
        tuning.tune("resnet20", out=str(tmp_path / "s"), **kwargs)
    assert not (tmp_path / "s").exists()


def test_the_hypermodel_refuses_an_empty_epoch_too():
    """PlacementHyperModel alone (any keras-tuner tuner) checks the batch against the split."""
    with pytest.raises(ValueError, match="`batch_size`[= ]60000 is larger than the 55000"):
        tuning.PlacementHyperModel("resnet20", "fashion_mnist", batch_size=60000)


def _result(history, metrics=None):
    from kzoo.training.trainer import TrainResult

    return TrainResult(None, history, metrics or {"train_seconds": 1.0}, "run")


@pytest.mark.parametrize(
    "result, match",
    [
        (_result([]), "trained no epoch"),
        (_result([{"val_accuracy": None, "val_cross_entropy": None}]), "no validation score"),
        (_result([{"val_accuracy": NAN, "val_cross_entropy": 1.0}]), "no validation score"),
        (_result([{"accuracy": 0.5}]), "no validation score"),
    ],
)
def test_a_trial_without_a_validation_score_fails(monkeypatch, result, match):
    """Never a completed trial with a made-up (or nan) score."""
    monkeypatch.setattr("kzoo.training.trainer.train_from_config", lambda *a, **k: result)
    model = tuning.PlacementHyperModel("resnet20", "fashion_mnist")
    hp = keras_tuner.HyperParameters()
    model.declare_hyperparameters(hp)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match=match):
        model.fit(hp, None)


def test_a_trial_of_no_epoch_stops_a_plain_tuner(monkeypatch):
    """tuner.search(epochs=0) would train nothing in every trial: a fatal error, not N failures."""
    monkeypatch.setattr("kzoo.training.trainer.train_from_config", lambda *a, **k: pytest.fail("trained"))
    model = tuning.PlacementHyperModel("resnet20", "fashion_mnist")
    hp = keras_tuner.HyperParameters()
    model.declare_hyperparameters(hp)
    with pytest.raises(keras_tuner.errors.FatalValueError, match="`epochs` must be an integer at least 1"):
        model.fit(hp, None, epochs=0)


def _a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    return str(path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"out": "/etc/passwd/x"}, ValueError, r"`out`='/etc/passwd/x' lies under the file '/etc/passwd'"),
        ({"out": _a_file}, ValueError, r"`out`=.*a_file' is a file, not a directory"),
        ({"out": 5}, TypeError, "`out` must be a path"),
        ({"seed": -1}, ValueError, r"`seed` must be an integer in \[0, 4294967295\], got -1"),
        ({"seed": 2**40}, ValueError, r"`seed` must be an integer in \[0, 4294967295\]"),
        ({"verbose": 3}, ValueError, "`verbose` must be 'auto', 0, 1 or 2, got 3"),
        ({"verbose": "loud"}, ValueError, "`verbose` must be 'auto', 0, 1 or 2"),
        ({"tuner": "randm"}, ValueError, "Did you mean 'random'"),
        ({"max_trials": 2.0}, TypeError, "`max_trials` must be an integer at least 1 or None, got 2.0"),
        (
            {"max_consecutive_failed_trials": -1},
            ValueError,
            "`max_consecutive_failed_trials` must be an integer at least 1",
        ),
        ({"mixed_precision": "float64"}, ValueError, "`mixed_precision` must be one of 'auto'"),
        ({"xla": "yes"}, TypeError, "`xla` must be True or False, got 'yes'"),
        ({"data_dir": 5}, TypeError, "`data_dir` must be a path or None"),
        ({"command": ["kzoo", "tune"]}, TypeError, "`command` must be a string or None"),
    ],
)
def test_run_arguments_are_refused_before_data_and_build(
    tmp_path, monkeypatch, no_data, kwargs, error, match
):
    """Each argument fails first, naming itself: no data read, no model built, nothing written."""
    from kzoo.models.registry import ModelInfo

    monkeypatch.setattr(ModelInfo, "build", lambda self, **k: pytest.fail("a model was built"))
    kwargs = {"out": str(tmp_path / "s"), **kwargs}
    if callable(kwargs["out"]):
        kwargs["out"] = kwargs["out"](tmp_path)
    with pytest.raises(error, match=match):
        tuning.tune("resnet20", "fashion_mnist", **kwargs)
    assert not (tmp_path / "s").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_out_that_cannot_be_written_is_refused(tmp_path, no_data):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="`out`=.* cannot be created: .* is not writable"):
        tuning.tune("resnet20", "fashion_mnist", out=str(locked / "s"))


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", r"the search's record '.*search.json' is damaged \(.*\); delete it"),
        ("[1, 2]", r"search.json' is damaged \(expected a JSON object, got list\)"),
        (b"\xff\xfe\x00", r"search.json' is damaged"),
    ],
)
def test_a_damaged_search_record_is_named_before_data(tmp_path, no_data, text, match):
    """search.json is read (and compared) before data is read, and left as it was."""
    out = tmp_path / "s"
    out.mkdir()
    record = out / "search.json"
    record.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=match):
        tuning.tune("resnet20", "fashion_mnist", out=str(out))
    assert record.read_bytes() == (text if isinstance(text, bytes) else text.encode())
    assert sorted(os.listdir(out)) == ["search.json"]


@pytest.mark.parametrize("name", ["oracle.json", "trial_0/trial.json"])
def test_damaged_keras_tuner_records_are_named_before_data(tmp_path, no_data, name):
    """keras-tuner would die on them with a bare JSONDecodeError when reloading."""
    path = tmp_path / "s" / "tuner" / name
    path.parent.mkdir(parents=True)
    path.write_text("{oops")
    with pytest.raises(ValueError, match=rf"keras-tuner's record '.*{name}' is damaged .*delete '.*tuner'"):
        tuning.tune("resnet20", "fashion_mnist", out=str(tmp_path / "s"))


class _Hypermodel:
    def __init__(self, out):
        self.out = out

    def run_dir(self, values):
        return os.path.join(self.out, "trials", "last-p0.5-relu-abc123")


@pytest.mark.parametrize(
    "where, text, match",
    [
        (
            "best",
            "{broken",
            r"the best run's metrics '.*best/metrics.json' is damaged .*delete '.*best' and re-run",
        ),
        ("best", '"a string"', r"best/metrics.json' is damaged \(expected a JSON object, got str\)"),
        (
            "trial",
            "{broken",
            r"the selected trial's metrics '.*abc123/metrics.json' is damaged .*delete the trial's folder",
        ),
        ("trial", None, r"the selected trial's metrics '.*abc123/metrics.json' is missing"),
    ],
)
def test_damaged_results_are_named_when_publishing_the_best(tmp_path, where, text, match):
    """best/metrics.json and the selected trial's metrics, read back by _publish_best."""
    out = tmp_path / "s"
    hypermodel = _Hypermodel(str(out))
    source = hypermodel.run_dir({})
    os.makedirs(source)
    if where == "best":
        (out / "best").mkdir()
        (out / "best" / "metrics.json").write_text(text)
    elif text is not None:
        with open(os.path.join(source, "metrics.json"), "w") as f:
            f.write(text)
    trial = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id="0")
    with pytest.raises(ValueError if text is not None else FileNotFoundError, match=match):
        tuning.search._publish_best(str(out), hypermodel, trial, {"erase": "last"})
    assert not os.path.exists(os.path.join(out, "best", "last.keras"))


@pytest.mark.parametrize("name", ["metrics.json", "config.json"])
def test_a_damaged_trial_run_stops_the_search_with_its_name(tmp_path, monkeypatch, name):
    """A damaged file of a trial's run is a fatal ValueError naming it, not a failed trial."""
    monkeypatch.setattr("kzoo.training.trainer.train_from_config", lambda *a, **k: pytest.fail("trained"))
    model = tuning.PlacementHyperModel("resnet20", "fashion_mnist", out=str(tmp_path / "s"))
    hp = keras_tuner.HyperParameters()
    model.declare_hyperparameters(hp)
    run = model.run_dir(hp.values)
    os.makedirs(run)
    with open(os.path.join(run, name), "w") as f:
        f.write("{")
    with pytest.raises(
        keras_tuner.errors.FatalValueError, match=rf"'.*{name}' is damaged .*delete the trial's folder"
    ):
        model.fit(hp, None)


def test_keras_tuner_environment_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    with pytest.raises(ValueError, match="KERASTUNER_ORACLE_PORT is not"):
        tuning.tune("resnet20", "fashion_mnist", out=str(tmp_path / "s"))
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "http")
    with pytest.raises(ValueError, match="KERASTUNER_ORACLE_PORT must be a port number"):
        tuning.distributed_role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    assert tuning.distributed_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker3")
    assert tuning.distributed_role() == "worker"


def test_cli_refuses_a_bad_space_with_a_clear_message(tmp_path):
    out = subprocess.run(
        _cli("resnet20", "--proportions", "0.5,2", "--out", str(tmp_path / "s")),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert out.returncode == 2
    assert "kzoo: error: `proportions` must each be in (0, 1], got 2.0" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "s").exists()


def test_the_space_declares_keras_tuner_hyperparameters():
    hp = keras_tuner.HyperParameters()
    SearchSpace(
        locations=["none", "last"],
        activations=["relu", "frelu"],
        learning_rates=Range(0.01, 0.3),
        weight_decays=[1e-4],
    ).declare(hp)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {
        "erase": "Choice",
        "proportion": "Choice",
        "activation": "Choice",
        "learning_rate": "Float",
        "weight_decay": "Fixed",
    }
    assert hp.space[1].conditions  # proportion only exists when something is erased
    settings = tuning.trial_settings({"erase": "none", "activation": "frelu", "learning_rate": 0.05})
    assert settings == ({"activation": "frelu"}, {"lr": 0.05})


# ----------------------------------------------------------------------------- searches


def test_grid_search_selects_on_validation_and_tests_the_best_once(fmnist_subset_dir, tmp_path):
    out = str(tmp_path / "grid")
    space = SearchSpace(locations=["none", "last"], proportions=[0.5, 1.0])
    result = tuning.tune(
        "resnet20",
        "fashion_mnist",
        space=space,
        tuner="grid",
        out=out,
        data_dir=fmnist_subset_dir,
        verbose=0,
        **SMALL,
    )
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3
    assert {(r["erase"], r["proportion"]) for r in rows} == {("none", ""), ("last", "0.5"), ("last", "1.0")}
    for row in rows:  # each trial: a kzoo run, scored on its last epoch's validation top-1, test untouched
        run = os.path.join(out, row["run"])
        last_epoch = kzoo.training.callbacks.EpochLog(os.path.join(run, "epochs.csv")).read()[-1]
        assert float(row["val_accuracy"]) == pytest.approx(last_epoch["val_accuracy"])
        metrics = _json(os.path.join(run, "metrics.json"))
        assert metrics["test_top1"] is None and metrics["test_loss"] is None
        assert _json(os.path.join(run, "config.json"))["model_kwargs"].get("proportion") == (
            float(row["proportion"]) if row["proportion"] else None
        )
    # Highest validation top-1; a tie goes to the lower validation loss, then the earlier trial.
    best_row = min(rows, key=lambda r: (-float(r["val_accuracy"]), float(r["val_loss"]), r["trial"]))
    assert result.best_hyperparameters["erase"] == best_row["erase"]
    best = _json(os.path.join(out, "best", "metrics.json"))
    assert best["selected"]["run"] == os.path.basename(best_row["run"])
    assert best["selected"]["val_top1"] == pytest.approx(float(best_row["val_accuracy"]))
    scores = kzoo.evaluate(result.best_run_dir, data_dir=fmnist_subset_dir)
    assert scores["examples"] == 500 and best["test_top1"] == pytest.approx(scores["test_top1"])
    assert best["test_loss"] == pytest.approx(scores["test_loss"], rel=1e-5)
    assert "(best)" in open(os.path.join(out, "results.md")).read()
    # The best run exports like any other finished run.
    exported = kzoo.export(result.best_run_dir, str(tmp_path / "serving"), "tuned", warmup=False)
    assert exported.card["test_top1"] == pytest.approx(best["test_top1"])

    # Re-running the same search trains nothing again and tests nothing again.
    stamps = {r["run"]: os.path.getmtime(os.path.join(out, r["run"], "last.keras")) for r in rows}
    best_stamp = os.path.getmtime(os.path.join(out, "best", "metrics.json"))
    again = tuning.tune(
        "resnet20",
        "fashion_mnist",
        space=space,
        tuner="grid",
        out=out,
        data_dir=fmnist_subset_dir,
        verbose=0,
        **SMALL,
    )
    assert again.best_hyperparameters == result.best_hyperparameters
    assert {
        r["run"]: os.path.getmtime(os.path.join(out, r["run"], "last.keras")) for r in _rows(out)
    } == stamps
    assert os.path.getmtime(os.path.join(out, "best", "metrics.json")) == best_stamp
    # ... and a different search in the same folder is refused.
    with pytest.raises(ValueError, match="holds a different search .*space"):
        tuning.tune(
            "resnet20",
            "fashion_mnist",
            space=SearchSpace(proportions=[0.25]),
            tuner="grid",
            out=out,
            data_dir=fmnist_subset_dir,
            verbose=0,
            **SMALL,
        )


def test_a_diverging_trial_is_recorded_as_failed_and_the_search_goes_on(fmnist_subset_dir, tmp_path):
    out = str(tmp_path / "nan")
    space = SearchSpace(proportions=[1.0], learning_rates=[1e12, 0.05])
    result = tuning.tune(
        "resnet20",
        "fashion_mnist",
        space=space,
        tuner="grid",
        out=out,
        data_dir=fmnist_subset_dir,
        verbose=0,
        **SMALL,
    )
    rows = {float(r["learning_rate"]): r for r in _rows(out)}
    assert rows[1e12]["status"] == "FAILED" and "diverged" in rows[1e12]["message"]
    assert rows[1e12]["val_accuracy"] == ""
    assert rows[0.05]["status"] == "COMPLETED"
    assert result.best_hyperparameters["learning_rate"] == 0.05
    assert "FAILED" in open(os.path.join(out, "results.md")).read()
    # Too many failures in a row stop the search with a clear error and the table written.
    with pytest.raises(tuning.SearchFailedError, match="1 failed trials in a row"):
        tuning.tune(
            "resnet20",
            "fashion_mnist",
            space=SearchSpace(proportions=[1.0], learning_rates=[1e12]),
            tuner="random",
            out=str(tmp_path / "all_nan"),
            data_dir=fmnist_subset_dir,
            max_consecutive_failed_trials=1,
            verbose=0,
            **SMALL,
        )
    assert _rows(str(tmp_path / "all_nan"))[0]["status"] == "FAILED"


def test_keras_tuners_checkpoint_is_recognised_by_its_class():
    """The trial checkpoint keras-tuner adds is its class, not any callback named like it."""
    import keras
    from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

    from kzoo.tuning.hypermodel import _is_best_epoch_saver

    look_alike = type("SaveBestEpoch", (keras.callbacks.Callback,), {"filepath": "w.weights.h5"})
    assert _is_best_epoch_saver(SaveBestEpoch(keras_tuner.Objective("val_accuracy", "max"), "w.weights.h5"))
    assert not _is_best_epoch_saver(look_alike())


def test_out_of_memory_fails_the_trial(monkeypatch):
    import tensorflow as tf

    def oom(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, "OOM when allocating tensor with shape [512,64,32,32]"
        )

    monkeypatch.setattr("kzoo.training.trainer.train_from_config", oom)
    model = tuning.PlacementHyperModel("resnet20", "fashion_mnist")
    hp = keras_tuner.HyperParameters()
    model.declare_hyperparameters(hp)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="out of memory: OOM when allocating"):
        model.fit(hp, None)


@pytest.mark.parametrize(
    "tuner",
    ["random", "bayesian", pytest.param("hyperband", marks=pytest.mark.slow)],  # 28 s
)
def test_every_tuner_runs_a_search(fmnist_subset_dir, tmp_path, tuner):
    # A small registered architecture from another family: any registered model tunes.
    space = SearchSpace(proportions=[0.5, 1.0], activations=["relu", "frelu"])
    kwargs = {**SMALL, "epochs": 3} if tuner == "hyperband" else {"max_trials": 2, **SMALL}
    result = tuning.tune(
        "smallnet_bn",
        "fashion_mnist",
        space=space,
        tuner=tuner,
        out=str(tmp_path / tuner),
        data_dir=fmnist_subset_dir,
        verbose=0,
        **kwargs,
    )
    rows = _rows(result.out)
    assert rows and all(r["status"] == "COMPLETED" for r in rows)
    assert result.metrics["test_top1"] > 0.1 and result.best_run_dir.endswith("best")
    if tuner == "hyperband":  # each trial trains from scratch for its own budget
        for row in rows:
            assert len(
                kzoo.training.callbacks.EpochLog(os.path.join(result.out, row["run"], "epochs.csv")).read()
            ) == int(row["tuner/epochs"])
    else:
        assert len(rows) == 2 and len({(r["proportion"], r["activation"]) for r in rows}) == 2


def test_the_hypermodel_drives_a_plain_keras_tuner(fmnist_subset_dir, tmp_path):
    hypermodel = tuning.PlacementHyperModel(
        "resnet20",
        "fashion_mnist",
        space=SearchSpace(proportions=[0.5]),
        out=str(tmp_path / "hm"),
        data_dir=fmnist_subset_dir,
        verbose=0,
        **SMALL,
    )
    tuner = keras_tuner.RandomSearch(
        hypermodel, objective="val_accuracy", max_trials=1, directory=str(tmp_path), project_name="plain"
    )
    tuner.search()
    trial = tuner.oracle.get_best_trials(1)[0]
    run = hypermodel.run_dir(trial.hyperparameters.values)
    # keras-tuner's best model is the model the trial was scored on: the run's last.keras.
    best = tuner.get_best_models(1)[0]
    last = kzoo.load_model(os.path.join(run, "last.keras"))
    for a, b in zip(best.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert trial.score == pytest.approx(
        kzoo.training.callbacks.EpochLog(os.path.join(run, "epochs.csv")).read()[-1]["val_accuracy"]
    )


# ----------------------------------------------------------------------------- resume, distribution


def _wait_for(predicate, proc, timeout, log):
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"gave up waiting (exit {proc.poll()}):\n{open(log).read()[-3000:]}")
        time.sleep(0.5)


def test_a_killed_search_resumes_without_redoing_finished_trials(fmnist_subset_dir, tmp_path):
    out = str(tmp_path / "killed")
    args = _cli(
        "resnet20",
        "--tuner",
        "grid",
        "--proportions",
        "0.5,1",
        "--epochs",
        "3",
        "--validation-size",
        "400",
        "--batch-size",
        "64",
        "--data-dir",
        fmnist_subset_dir,
        "--out",
        out,
        "--quiet",
    )
    log = str(tmp_path / "first.log")
    with open(log, "w") as f:
        proc = subprocess.Popen(args, env=ENV, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    trials = os.path.join(out, "trials")

    def second_trial_mid_way():
        runs = sorted(os.listdir(trials)) if os.path.isdir(trials) else []
        done = [r for r in runs if os.path.exists(os.path.join(trials, r, "metrics.json"))]
        going = [
            r
            for r in runs
            if r not in done
            and os.path.isdir(os.path.join(trials, r, "backup"))
            and os.listdir(os.path.join(trials, r, "backup"))
        ]
        return len(done) == 1 and going

    try:
        _wait_for(second_trial_mid_way, proc, 240, log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = [r for r in os.listdir(trials) if os.path.exists(os.path.join(trials, r, "metrics.json"))][0]
    stamp = os.path.getmtime(os.path.join(trials, finished, "last.keras"))

    again = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "best run:" in again.stdout and "test top-1" in again.stdout
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["COMPLETED", "COMPLETED"]
    assert os.path.getmtime(os.path.join(trials, finished, "last.keras")) == stamp  # not trained again
    for row in rows:  # the interrupted trial resumed: every epoch once
        epochs = kzoo.training.callbacks.EpochLog(os.path.join(out, row["run"], "epochs.csv")).read()
        assert [int(e["epoch"]) for e in epochs] == [0, 1, 2]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 47 s, three processes; make test-slow runs it
def test_distributed_search_with_a_chief_and_two_workers(fmnist_subset_dir, tmp_path):
    out = str(tmp_path / "dist")
    args = _cli(
        "resnet20",
        "--tuner",
        "grid",
        "--epochs",
        "1",
        "--validation-size",
        "400",
        "--batch-size",
        "64",
        "--data-dir",
        fmnist_subset_dir,
        "--out",
        out,
        "--quiet",
    )
    port = str(_free_port())
    procs, logs = {}, {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = dict(
                ENV,
                KERASTUNER_TUNER_ID=tuner_id,
                KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=port,
            )
            logs[tuner_id] = str(tmp_path / f"{tuner_id}.log")
            with open(logs[tuner_id], "w") as f:
                procs[tuner_id] = subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT)
        for tuner_id, proc in procs.items():
            assert proc.wait(timeout=400) == 0, open(logs[tuner_id]).read()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    rows = _rows(out)
    assert sorted(float(r["proportion"]) for r in rows) == [0.25, 0.5, 0.75, 1.0]
    assert all(r["status"] == "COMPLETED" for r in rows)
    # The workers trained (one progress line per epoch), the chief only served the oracle.
    epochs = {t: sum(" - val_accuracy: " in line for line in open(logs[t])) for t in procs}
    assert epochs["chief"] == 0 and epochs["tuner0"] >= 1 and epochs["tuner1"] >= 1
    assert epochs["tuner0"] + epochs["tuner1"] == 4
    chief = open(logs["chief"]).read()
    assert "best run:" in chief and "no trials left" in open(logs["tuner0"]).read()
    assert _json(os.path.join(out, "best", "metrics.json"))["test_top1"] is not None


def test_cli_reads_ranges_and_lists():
    from kzoo import cli_parser

    assert cli_parser._rates("0.01:0.3") == Range(0.01, 0.3)
    assert cli_parser._rates("0.05,0.1") == (0.05, 0.1)
    assert cli_parser._strings("none, last") == ("none", "last")
    with pytest.raises(Exception, match="LOW:HIGH"):
        cli_parser._rates("a:b")


def test_trial_folders_are_readable_and_distinct():
    a = tuning.trial_slug(
        {"erase": "last", "proportion": 0.5, "activation": "relu", "learning_rate": 0.0123451}
    )
    b = tuning.trial_slug(
        {"erase": "last", "proportion": 0.5, "activation": "relu", "learning_rate": 0.0123452}
    )
    assert a.startswith("last-p0.5-relu-lr0.0123-") and a != b
    assert tuning.trial_slug({"erase": "none", "activation": "frelu"}).startswith("none-frelu-")


def test_ties_are_broken_by_validation_loss_then_trial_order():
    from keras_tuner.engine.trial import Trial

    def trial(trial_id, acc, loss, status="COMPLETED"):
        t = Trial(keras_tuner.HyperParameters(), trial_id=trial_id, status=status)
        t.metrics.register("val_accuracy", "max")
        t.metrics.update("val_accuracy", acc)
        t.metrics.register("val_loss", "min")
        t.metrics.update("val_loss", loss)
        t.score = acc
        return t

    a, b, c = trial("0", 0.9, 0.30), trial("1", 0.9, 0.25), trial("2", 0.9, 0.25)
    failed = trial("3", 0.95, 0.1, status="FAILED")
    for order in ([a, b, c, failed], [failed, c, b, a]):
        assert tuning.select_best(order).trial_id == "1"
    assert tuning.select_best([failed]) is None
