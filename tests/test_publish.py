"""``kzoo publish`` (kzoo.serving.publish): finished runs of one command become a
pretrained tag (median seed's weights, record, SavedModel, generated tables) that the
builders load; bad requests are refused before anything is scored or written."""

import csv
import json
import os
import shutil

import numpy as np
import pytest

import kzoo
from kzoo import cli
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


def test_publish_again_replaces_the_record_and_adds_a_version(runs, places):
    weights, served = places
    publishing.publish(
        runs[:1], "resnet20.fashion_mnist_eraserelu", saved_models=served, companions=False, verbose=False
    )
    again = publishing.publish(
        runs[1:], "resnet20.fashion_mnist_eraserelu", saved_models=served, companions=False, verbose=False
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
