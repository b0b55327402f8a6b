"""``kzoo publish`` (kzoo.serving.publish): finished runs of one command become a
pretrained tag (median seed's weights, record, SavedModel, generated tables) that the
builders load; bad requests are refused before anything is scored or written."""

import csv
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types

import numpy as np
import pytest

import kzoo
from kzoo import atomic, cli
from kzoo.models import pretrained
from kzoo.serving import publish as publishing


def _train(folder, seed, data_dir, **model_kwargs):
    return kzoo.train(
        "resnet20",
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=1,
        batch_size=64,
        validation_size=0,
        data_dir=data_dir,
        out=str(folder),
        seed=seed,
        verbose=0,
        model_kwargs=model_kwargs,
        command=f"kzoo train resnet20 --erase last --seed {seed}",
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fmnist_like_dir):
    base = tmp_path_factory.mktemp("runs")
    return [str(_train(base / f"seed{s}", s, fmnist_like_dir, erase="last").run_dir) for s in (0, 1, 2)]


@pytest.fixture
def places(tmp_path, monkeypatch):
    weights, served = tmp_path / "weights", tmp_path / "saved_models"
    weights.mkdir()
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", str(weights))
    pretrained.reload()
    yield str(weights), str(served)
    monkeypatch.undo()
    pretrained.reload()


def test_publish_ships_the_median_seed(runs, places, fmnist_like_dir):
    weights, served = places
    record = publishing.publish(
        runs, "resnet20.fashion_mnist_eraserelu", saved_models=served, companions=False, verbose=False
    )
    top1s = sorted(s["top1"] for s in record.seeds)
    shipped = [s for s in record.seeds if s["shipped"]]
    assert len(record.seeds) == 3 and len(shipped) == 1 and shipped[0]["top1"] == top1s[1] == record.top1
    assert record.source["seed"] == shipped[0]["seed"] and record.options == {"erase": "last"}
    assert record.source["top1_mean"] == pytest.approx(np.mean(top1s), abs=1e-6)
    assert record.input_shape == (28, 28, 1) and record.classes == 10 and record.epochs == 1
    assert record.command == f"kzoo train resnet20 --erase last --seed {record.source['seed']}"
    path = os.path.join(weights, record.file)
    assert pretrained.sha256(path) == record.sha256
    assert set(os.listdir(weights)) == {record.file, pretrained.MANIFEST}
    assert os.path.getsize(path) < 1.5e6  # weights only, no optimiser state
    for name in os.listdir(weights):  # readable by everyone, as a package's files are
        assert os.stat(os.path.join(weights, name)).st_mode & 0o777 == 0o644

    # The builders load it, and it scores what the record says (a fresh build, float32).
    model = kzoo.ResNet20(weights="fashion_mnist", erase="last")
    scores = kzoo.evaluate(model, "fashion_mnist", data_dir=fmnist_like_dir)
    assert scores["test_top1"] == pytest.approx(record.top1, abs=1e-6)

    # The SavedModel's card and the generated tables say the same.
    version = os.path.join(served, "resnet20_fashion_mnist_eraserelu", "1")
    card = json.load(open(os.path.join(version, "model_card.json")))
    assert card["pretrained_tag"] == record.tag and card["test_top1"] == record.top1
    assert card["tta"] is None and card["seed"] == record.source["seed"]
    rows = list(csv.DictReader(open(os.path.join(served, "results.csv"))))
    assert [r["tag"] for r in rows] == [record.tag] and rows[0]["top1"] == f"{100 * record.top1:.2f}"
    assert rows[0]["saved_model"] == "resnet20_fashion_mnist_eraserelu/1" and rows[0]["seeds"] == "3"
    readme = open(os.path.join(served, "README.md")).read()
    assert f"`{record.tag}`" in readme and record.command in readme


def test_publish_again_is_refused_unless_asked_and_says_what_changes(runs, places, capsys):
    weights, served = places
    first = publishing.publish(
        runs[:1], "resnet20.fashion_mnist_eraserelu", saved_models=served, companions=False, verbose=False
    )
    before = {name: open(os.path.join(weights, name), "rb").read() for name in os.listdir(weights)}
    with pytest.raises(
        ValueError,
        match=r"already published in .*pretrained.json .*What changes: seeds \[0\] -> \[1, 2\]\. Pass replace=True",
    ):
        publishing.publish(runs[1:], "resnet20.fashion_mnist_eraserelu", saved_models=served, verbose=False)
    assert {name: open(os.path.join(weights, name), "rb").read() for name in os.listdir(weights)} == before
    assert cli.main(["publish", *runs[1:], "--tag", "resnet20.fashion_mnist_eraserelu", "--no-export"]) == 2
    assert "Pass replace=True (kzoo publish --replace)" in capsys.readouterr().err
    again = publishing.publish(
        runs[1:], "resnet20.fashion_mnist_eraserelu", saved_models=served, companions=False, replace=True
    )
    said = capsys.readouterr().out
    assert (
        "replaced its record: seeds [0] -> [1, 2];" in said
        and f"file {first.file!r} -> {again.file!r}" in said
    )
    records = pretrained.read_manifest(weights)
    assert list(records) == [again.tag] and records[again.tag] == again and len(again.seeds) == 2
    # a new file under a new name; the one the old record named is gone
    assert again.file == f"{again.tag}-{again.sha256[:8]}.weights.h5"
    assert set(os.listdir(weights)) == {again.file, pretrained.MANIFEST}
    assert sorted(os.listdir(os.path.join(served, "resnet20_fashion_mnist_eraserelu"))) == ["1", "2"]


def test_cli_publish_and_list(runs, places, capsys):
    weights, _ = places
    assert cli.main(["publish", runs[0], "--tag", "resnet20.fashion_mnist_eraserelu", "--no-export"]) == 0
    assert "published resnet20.fashion_mnist_eraserelu: test top-1" in capsys.readouterr().out
    assert cli.main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "resnet20.fashion_mnist_eraserelu" in out and "{'erase': 'last'}" in out
    assert cli.main(["list", "resnet56*", "--pretrained"]) == 1


def test_a_published_tag_exports_again_from_its_shipped_weights(runs, places, fmnist_like_dir, capsys):
    weights, served = places
    tag = "resnet20.fashion_mnist_eraserelu"
    record = publishing.publish(runs, tag, saved_models=None, verbose=False)
    assert not os.path.exists(served)
    again = publishing.export_tag(
        tag, saved_models=served, data_dir=fmnist_like_dir, companions=False, verbose=False
    )
    assert again == record and pretrained.read_manifest(weights) == {tag: record}  # the record is untouched
    card = json.load(open(os.path.join(served, "resnet20_fashion_mnist_eraserelu", "1", "model_card.json")))
    assert card["pretrained_tag"] == tag and card["tta"] is None and card["model"] == "resnet20"
    assert (card["test_top1"], card["test_top5"]) == (record.top1, record.top5)
    assert card["seed"] == record.source["seed"] and card["command"] == record.command
    assert card["model_kwargs"] == {"erase": "last"} and "run_dir" not in card  # the command has no --out
    assert card["activation_stats"]["images"] == 200 and card["activation_stats"]["summary"]["erased"] == 9
    version = os.path.join(served, "resnet20_fashion_mnist_eraserelu", "1")
    assert {"activation_stats.json", "activation_stats.csv"} <= set(os.listdir(version))
    rows = list(csv.DictReader(open(os.path.join(served, "results.csv"))))
    assert [(r["tag"], r["saved_model"]) for r in rows] == [(tag, "resnet20_fashion_mnist_eraserelu/1")]
    # `kzoo publish --tag T` without runs: a new version
    args = [
        "publish",
        "--tag",
        tag,
        "--saved-models",
        served,
        "--no-companions",
        "--data-dir",
        fmnist_like_dir,
    ]
    assert cli.main(args) == 0 and f"exported {tag} again" in capsys.readouterr().out
    assert sorted(os.listdir(os.path.join(served, "resnet20_fashion_mnist_eraserelu"))) == ["1", "2"]
    assert cli.main(["publish", "--tag", "resnet20.fashion_mnist_nope", "--saved-models", served]) == 2
    assert "Unknown pretrained tag 'resnet20.fashion_mnist_nope'" in capsys.readouterr().err
    assert cli.main(["publish", "--tag", tag, "--no-export"]) == 2
    assert "`runs` are needed with --no-export" in capsys.readouterr().err
    assert (
        publishing._run_dir_of("kzoo train resnet20 --seed 2 --out runs/publish/t/seed2")
        == "runs/publish/t/seed2"
    )
    assert publishing._run_dir_of("kzoo train resnet20 --out='a b'") == "a b"


def _first_test_images(data_dir, count=1000):
    """The first ``count`` test images, preprocessed as ``kzoo evaluate`` does."""
    from kzoo import data

    test = data.load("fashion_mnist", "test", data_dir=data_dir).take(count)
    batches = data.pipeline(test, "fashion_mnist", training=False, batch_size=100)
    return np.concatenate([x for x, _ in batches.as_numpy_iterator()])


def test_the_tags_card_carries_its_activation_stats(runs, places, fmnist_like_dir):
    """The SavedModel's card holds what kzoo.activation_stats gives on the first 1,000 test
    images (the fixture's 200 here) of the shipped weights, measured against the network
    before its erasure: a row per slot, the erased ones saying what their ReLU would have
    zeroed, a summary; the full table is beside the card."""
    _, served = places
    tag = "resnet20.fashion_mnist_eraserelu"
    record = publishing.publish(runs[:1], tag, saved_models=served, companions=False, verbose=False)
    version = os.path.join(served, "resnet20_fashion_mnist_eraserelu", "1")
    card = json.load(open(os.path.join(version, "model_card.json")))
    entry = card["activation_stats"]

    model = kzoo.create_model(tag, pretrained=True)
    original = kzoo.create_model("resnet20", erase=None, input_shape=(28, 28, 1), classes=10)
    expected = kzoo.activation_stats(model, _first_test_images(fmnist_like_dir), original=original, verbose=0)
    assert entry["images"] == expected.images == 200 and entry["dataset"] == record.dataset
    assert entry["split"] == "test" and entry["original"] == "the builder without the erasure"
    assert [(r["module"], r["slot"], r["layer"], r["kind"], r["erased"]) for r in entry["slots"]] == [
        (r["module"], r["slot"], r["layer"], r["kind"], r["erased"]) for r in expected.rows
    ]
    for got, want in zip(entry["slots"], expected.rows):
        assert got["zero_fraction"] == pytest.approx(want["zero_fraction"], abs=1e-6), got
        assert got["dead_fraction"] == pytest.approx(want["dead_fraction"], abs=1e-6), got
        assert got["channels"] == want["channels"] and got["frelu_bias_mean"] is None
    erased = [r for r in expected.rows if r["erased"]]
    kept = [r["zero_fraction"] for r in expected.rows if not r["erased"]]
    assert len(erased) == 9 and all(r["slot"] == "last" for r in erased)  # each block's last ReLU
    summary = entry["summary"]
    assert summary["erased"] == 9 and summary["kept_count"] == {"relu": len(kept)} == {"relu": 10}
    assert summary["kept_zero_fraction_mean"]["relu"] == pytest.approx(np.mean(kept), abs=1e-6)
    assert summary["erased_would_have_zeroed_mean"] == pytest.approx(
        np.mean([r["zero_fraction"] for r in erased]), abs=1e-6
    )
    assert entry["summary_line"].startswith("10 activations on 200 test images: 10 relu zero ")
    assert "9 erased slots, whose removed ReLU would have zeroed" in entry["summary_line"]

    # The full table beside the card: kzoo stats' JSON and CSV.
    assert entry["files"] == ["activation_stats.csv", "activation_stats.json"]
    full = json.load(open(os.path.join(version, "activation_stats.json")))
    assert (full["source"], full["dataset"], full["split"], full["images"]) == (
        tag,
        "fashion_mnist",
        "test",
        200,
    )
    for got, want in zip(full["rows"], expected.to_dict()["rows"]):
        assert {k: v for k, v in got.items() if not isinstance(v, float)} == {
            k: v for k, v in want.items() if not isinstance(v, float)
        }
        for key in ("zero_fraction", "dead_fraction", "in_mean", "in_std", "out_mean", "out_std"):
            assert got[key] == pytest.approx(want[key], abs=1e-6, nan_ok=True), (got["layer"], key)
    table = list(csv.DictReader(open(os.path.join(version, "activation_stats.csv"))))
    assert [r["layer"] for r in table] == [r["layer"] for r in expected.rows]
    page = open(os.path.join(version, "model_card.md")).read()
    assert "## Activation statistics" in page and entry["summary_line"] in page
    assert re.search(r"\| 1 \| last \| relu \(erased\) \| - \| - \| - \| \d+\.\d% \|", page)
    assert re.search(r"\| 1 \| first \| relu \| \d+\.\d% \| \d+/16 \| - \| - \|", page)


def test_a_failed_measure_publishes_nothing(runs, places, monkeypatch):
    from kzoo.serving import card_stats

    weights, served = places

    def failing(*args, **kwargs):
        raise RuntimeError("the measure failed")

    monkeypatch.setattr(card_stats, "measure", failing)
    with pytest.raises(RuntimeError, match="the measure failed"):
        publishing.publish(
            runs[:1], "resnet20.fashion_mnist_eraserelu", saved_models=served, companions=False, verbose=False
        )
    assert os.listdir(weights) == [] and not os.path.exists(served)


def test_card_stats_summarise_frelu_and_fused_rows():
    """The compact rows and the summary of a table with FReLU (its bias per channel, mean
    shown) and a fused activation (no fraction measured)."""
    from kzoo.serving import card, card_stats
    from kzoo.transform.stats_table import ActivationStats

    table = ActivationStats(
        "m",
        50,
        [
            {
                "module": 1,
                "slot": "first",
                "layer": "a",
                "kind": "frelu",
                "erased": False,
                "channels": 4,
                "zero_fraction": 0.5,
                "dead_fraction": 0.25,
                "frelu_bias": [-0.2, 0.0, 0.2, -0.4],
            },
            {
                "module": 1,
                "slot": "last",
                "layer": "b",
                "kind": "frelu",
                "erased": False,
                "channels": 4,
                "zero_fraction": 0.7,
                "dead_fraction": 0.0,
                "frelu_bias": 0.1,
            },
            {
                "module": None,
                "slot": "outside",
                "layer": "c",
                "kind": "elu",
                "fused": True,
                "erased": False,
                "channels": None,
                "zero_fraction": float("nan"),
                "dead_fraction": float("nan"),
            },
        ],
    )
    entry = card_stats.card_entry(table, types.SimpleNamespace(dataset="fashion_mnist"))
    assert [r["frelu_bias_mean"] for r in entry["slots"]] == [pytest.approx(-0.1), 0.1, None]
    assert entry["slots"][2]["zero_fraction"] is None and entry["original"] is None
    assert entry["summary"] == {
        "activations": 3,
        "kept_zero_fraction_mean": {"frelu": pytest.approx(0.6)},
        "kept_count": {"frelu": 2},
        "erased": 0,
        "erased_would_have_zeroed_mean": None,
        "dead_units": 1,
        "units": 8,
        "frelu_bias_mean": pytest.approx(0.0),
    }
    assert entry["summary_line"] == (
        "3 activations on 50 test images: 2 frelu zero 60.0% on average; no erased slot; "
        "1 of 8 units dead; FReLU bias +0.000 on average."
    )
    lines = card_stats.markdown_lines(entry)
    assert "| 1 | first | frelu | 50.0% | 1/4 | -0.100 | - |" in lines
    assert "| - | outside | elu | - | - | - | - |" in lines
    assert card_stats.markdown_lines(None) == [] and card.card_stats is card_stats


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory, fmnist_like_dir, runs):
    base = tmp_path_factory.mktemp("other")
    plain = str(_train(base / "plain", 5, fmnist_like_dir).run_dir)
    unfinished = base / "unfinished"
    shutil.copytree(runs[0], unfinished)
    os.remove(unfinished / "metrics.json")
    return {"plain": plain, "unfinished": str(unfinished)}


@pytest.mark.parametrize(
    "pick, tag, error, match",
    [
        (lambda r, o: r, "resnet20", ValueError, r"`tag` must be architecture.variant"),
        (
            lambda r, o: r,
            "ResNet20.Fashion_MNIST",
            ValueError,
            r"`tag` must be architecture.variant in lower",
        ),
        (lambda r, o: r, "resnet21.fashion_mnist", ValueError, r"Unknown model 'resnet21'"),
        (lambda r, o: r, "resnet56.fashion_mnist", ValueError, r"is for resnet56, but .* trained resnet20"),
        (
            lambda r, o: r,
            "resnet20.cifar10_eraserelu",
            ValueError,
            r"variant must be the dataset, or start with it",
        ),
        (
            lambda r, o: [r[0], o["plain"]],
            "resnet20.fashion_mnist_x",
            ValueError,
            r"seeds of one command: .*model_kwargs",
        ),
        (lambda r, o: [r[0], r[0]], "resnet20.fashion_mnist_x", ValueError, r"different seeds .* \[0, 0\]"),
        (lambda r, o: [o["unfinished"]], "resnet20.fashion_mnist_x", FileNotFoundError, r"metrics"),
        (
            lambda r, o: ["no/such/run"],
            "resnet20.fashion_mnist_x",
            FileNotFoundError,
            r"is not a run directory",
        ),
        (lambda r, o: [], "resnet20.fashion_mnist_x", TypeError, r"`runs` must be a run directory"),
        (lambda r, o: r, 20, TypeError, r"`tag` must be a string"),
    ],
)
def test_bad_requests_write_nothing(runs, other_runs, places, pick, tag, error, match):
    weights, served = places
    with pytest.raises(error, match=match):
        publishing.publish(pick(runs, other_runs), tag, saved_models=served, verbose=False)
    assert os.listdir(weights) == [] and not os.path.exists(served)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"companions": "no"}, TypeError, r"`companions` must be True or False, got 'no'"),
        ({"verbose": 2}, TypeError, r"`verbose` must be True or False, got 2"),
        ({"replace": 1}, TypeError, r"`replace` must be True or False, got 1"),
        ({"saved_models": None, "companions": False}, ValueError, r"`companions`=False does nothing"),
    ],
)
def test_switches_are_checked_like_every_argument(runs, places, kwargs, error, match):
    weights, served = places
    with pytest.raises(error, match=match):
        publishing.publish(runs, "resnet20.fashion_mnist_eraserelu", **{"saved_models": served, **kwargs})
    if "replace" not in kwargs:  # export_tag takes the others
        with pytest.raises(error, match=match):
            publishing.export_tag("resnet20.fashion_mnist_eraserelu", **{"saved_models": served, **kwargs})
    assert os.listdir(weights) == [] and not os.path.exists(served)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--no-export", "--no-companions"], r"--no-companions does nothing with --no-export"),
        (["--no-export", "--saved-models", "x"], r"--saved-models does nothing with --no-export"),
        (["--replace"], r"`runs` are needed with --no-export, --weights-dir or --replace"),
    ],
)
def test_cli_options_that_would_do_nothing_are_refused(runs, places, capsys, args, match):
    weights, served = places
    given = [] if "--replace" in args else [runs[0]]
    assert cli.main(["publish", *given, "--tag", "resnet20.fashion_mnist_eraserelu", *args]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert os.listdir(weights) == []


def test_output_folders_are_made_and_stale_temporaries_cleared(runs, places, tmp_path):
    weights, _ = places
    folder = tmp_path / "new" / "weights"  # not there yet: made, not an error after scoring
    publishing.publish(
        runs[:1], "resnet20.fashion_mnist_x", weights_dir=str(folder), saved_models=None, verbose=False
    )
    assert sorted(os.listdir(folder)) == sorted(
        [pretrained.MANIFEST, pretrained.read_manifest(str(folder))["resnet20.fashion_mnist_x"].file]
    )
    # what killed publications left: this host's with its process gone, and an older kzoo's
    # nameless one a day old, are removed; a live process's is not
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [f".tmp-{atomic.host()}-{dead.pid}-abc123.weights.h5", ".tmp-hdp1oijp.weights.h5", ".tmp-k3j2_x9"]
    live = f".tmp-{atomic.host()}-{os.getpid()}-def456.weights.h5"
    for name in [*stale, live]:
        (folder / name).write_bytes(b"half a file")
    day_ago = time.time() - atomic.STALE_AGE_S - 60
    for name in stale[1:]:
        os.utime(folder / name, (day_ago, day_ago))
    publishing.publish(
        runs[1:2], "resnet20.fashion_mnist_y", weights_dir=str(folder), saved_models=None, verbose=False
    )
    left = {n for n in os.listdir(folder) if n.startswith(".")}
    assert left == {live}


def test_a_damaged_manifest_is_refused_before_anything_is_scored(runs, places):
    weights, served = places
    (open(os.path.join(weights, pretrained.MANIFEST), "w")).write('[{"tag": "resnet20.fashion_mnist"')
    with pytest.raises(
        ValueError, match=re.escape(os.path.join(weights, pretrained.MANIFEST)) + r" cannot be read"
    ):
        publishing.publish(runs, "resnet20.fashion_mnist_eraserelu", saved_models=served, verbose=False)
    assert not os.path.exists(served)


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory, fmnist_like_dir):
    """Two seeds of MLP-12 (Dropout after every layer: Keras' seed generators), one epoch."""
    base = tmp_path_factory.mktemp("mlp")
    return [
        str(
            kzoo.train(
                "mlp12",
                "fashion_mnist",
                "fashion_mnist_cpu",
                epochs=1,
                batch_size=64,
                validation_size=0,
                data_dir=fmnist_like_dir,
                out=str(base / f"seed{seed}"),
                seed=seed,
                verbose=0,
                model_kwargs={"units": 32},
                command=f"kzoo train mlp12 --units 32 --seed {seed}",
            ).run_dir
        )
        for seed in (0, 1)
    ]


def _tree(folder):
    """Every path under ``folder`` (hidden ones too), relative to it."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
    )


_KILLED_AT_LITERT = """
import importlib, os, sys
exporting = importlib.import_module("kzoo.serving.export")

real = exporting.export

def export(*args, **kwargs):  # killed as the LiteRT companion begins: SavedModel and ONNX staged
    if kwargs.get("format") == "litert":
        os._exit(9)
    return real(*args, **kwargs)

exporting.export = export
from kzoo.serving.publish import publish

publish(sys.argv[1:3], "mlp12.fashion_mnist", weights_dir=sys.argv[3], saved_models=sys.argv[4], data_dir=sys.argv[5])
"""


def test_publish_of_a_model_with_dropout_is_all_or_nothing(
    mlp_runs, places, fmnist_like_dir, monkeypatch, python_preamble
):
    """MLP-12's SavedModel converts to ONNX/LiteRT in the process that exported it (its seed
    generators are numbered per process); a publication that fails, or is killed, halfway
    leaves nothing a reader sees, and the next one clears what it left and completes."""
    weights, served = places
    tag, name = "mlp12.fashion_mnist", "mlp12_fashion_mnist"
    os.makedirs(served)
    open(os.path.join(served, "README.md"), "w").write("the tables before\n")
    before = {"weights": _tree(weights), "served": _tree(served)}

    exporting = importlib.import_module(
        "kzoo.serving.export"
    )  # the module: the package's `export` is the function
    real = exporting.export

    def failing(*args, **kwargs):
        if kwargs.get("format") == "litert" and kwargs.get("quantize") == "int8":
            raise RuntimeError("the int8 conversion failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(exporting, "export", failing)
    with pytest.raises(RuntimeError, match="the int8 conversion failed"):
        publishing.publish(mlp_runs, tag, saved_models=served, data_dir=fmnist_like_dir, verbose=False)
    assert {"weights": _tree(weights), "served": _tree(served)} == before
    monkeypatch.setattr(exporting, "export", real)

    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            python_preamble + _KILLED_AT_LITERT,
            *mlp_runs,
            weights,
            served,
            fmnist_like_dir,
        ],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 9, killed.stderr[-2000:]
    for folder, tree in ((weights, before["weights"]), (served, before["served"])):
        left = sorted(set(_tree(folder)) - set(tree))
        assert left and all(p.startswith(".tmp-") for p in left), left  # its temporaries, hidden

    assert (
        cli.main(
            ["publish", *mlp_runs, "--tag", tag, "--saved-models", served, "--data-dir", fmnist_like_dir]
        )
        == 0
    )
    record = pretrained.read_manifest(weights)[tag]
    assert not [p for p in _tree(weights) + _tree(served) if ".tmp-" in p]  # the killed one's cleared
    assert sorted(os.listdir(weights)) == sorted([pretrained.MANIFEST, record.file])
    # each card's paths read from where the version is, not from where it was staged
    saved_model = os.path.join(served, name, "1")
    shipped_run = os.path.realpath(mlp_runs[record.source["seed"]])
    for version in [saved_model] + [
        os.path.join(served, f, name, "1") for f in ("onnx", "litert", "litert_int8")
    ]:
        card = json.load(open(os.path.join(version, "model_card.json")))
        assert os.path.realpath(os.path.join(version, card["run_dir"])) == shipped_run
        assert card["pretrained_tag"] == tag
        if version != saved_model:
            assert os.path.normpath(os.path.join(version, card["converted_from"])) == saved_model
            assert card["verification"]["runtime"]  # verified by its runtime before publication
    readme = open(os.path.join(served, "README.md")).read()
    assert (
        f"`{tag}`" in readme
        and f"`onnx/{name}/1/model.onnx`" in readme
        and f"`litert_int8/{name}/1/model.tflite`" in readme
    )
