"""The pretrained tags kzoo ships (kzoo/weights) and their exports in saved_models/: each
tag built by name re-scores its record; each SavedModel is a tag's, re-evaluated as served
(uint8 in, the SavedModel's own preprocessing) on the real Fashion-MNIST test set it gives
the top-1/top-5 its card and record state; results.csv and README.md are the records.
The ONNX and LiteRT companions, run by onnxruntime and LiteRT, give the same top-1
(float32) or the one their card measured (int8)."""

import csv
import json
import os
import re
import shlex

import numpy as np
import pytest
import tensorflow as tf
from helpers import load_script

import kzoo
from kzoo import cli_model_options, cli_parser, data
from kzoo.models import pretrained
from kzoo.serving import publish as publishing
from kzoo.serving import runtimes, versions

BASE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
COMPANIONS = {"onnx": "model.onnx", "litert": "model.tflite", "litert_int8": "model.tflite"}
# The pretrained tags kzoo ships (kzoo/weights/pretrained.json); the first is re-scored in
# every test run, the others with -m slow. Each has its SavedModel here, under its
# serving name (resnet20.fashion_mnist -> resnet20_fashion_mnist), with its companions.
RECORDS = pretrained.read_manifest()
TAGS = sorted(RECORDS)
NAMES = {publishing.serving_name(tag): tag for tag in TAGS}


def _newest(folder):
    present = versions(folder)
    if not present:
        return None
    path = os.path.join(folder, str(present[-1]))
    with open(os.path.join(path, "model_card.json")) as f:
        return path, json.load(f)


def _companions():
    found = []
    for folder in COMPANIONS:
        for name in NAMES:
            newest = _newest(os.path.join(BASE, folder, name))
            if newest:
                found.append((f"{folder}/{name}", *newest))
    return found


def _published():
    found = []
    for name in sorted(os.listdir(BASE)):
        newest = _newest(os.path.join(BASE, name))
        if newest:
            found.append((name, *newest))
    return found


def _fashion_mnist_test():
    try:
        ds = data.load("fashion_mnist", "test")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not on this machine (make data installs Debian's copy)")
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.stack(images).astype(np.uint8), np.array(labels)


def test_every_saved_model_is_a_tag_as_its_record_states_it():
    """Each SavedModel here is the export of a shipped tag (no orphan, no older model), and
    every tag has one; its card states the tag's record."""
    published = {name: card for name, _, card in _published()}
    assert set(published) == set(NAMES)
    for name, card in published.items():
        record = RECORDS[NAMES[name]]
        assert card["pretrained_tag"] == record.tag and card["model"] == record.architecture
        assert card["model_kwargs"] == record.options and card["dataset"] == record.dataset
        assert (card["test_top1"], card["test_top5"]) == (record.top1, record.top5)
        assert card["seed"] == record.source["seed"] and card["command"] == record.command
        assert card["tta"] is None  # the weights as loaded, as the record scores them


def test_cards_name_their_run_by_a_portable_path():
    """The run directory relative to the repository, as published; no card holds the
    absolute path of the machine that exported it."""

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    for name, path, card in _published() + _companions():
        record = RECORDS[NAMES[name.split("/")[-1]]]
        assert card["run_dir"] == f"runs/publish/{record.tag}/seed{record.source['seed']}", name
        assert record.command.endswith(f" --out {card['run_dir']}"), name
        assert not [s for s in strings(card) if os.path.isabs(s)], name
        with open(os.path.join(path, "model_card.md")) as f:
            assert not re.findall(r"(?<![\w.~])/[A-Za-z]\S*", f.read()), name


def test_no_checkpoints_in_the_folder():
    """Lean: SavedModels, cards and the table only."""
    for root, _, files in os.walk(BASE):
        assert not [f for f in files if f.endswith((".keras", ".h5"))], root
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(BASE) for f in fs)
    assert size < 40 * 2**20


@pytest.mark.parametrize("name, path, card", _published(), ids=[p[0] for p in _published()])
def test_published_metrics_reproduce(name, path, card):
    images, labels = _fashion_mnist_test()
    serve = tf.saved_model.load(path).signatures["serving_default"]
    top5 = np.concatenate(
        [
            serve(images=tf.constant(images[i : i + 1000]))["classes"].numpy()
            for i in range(0, len(images), 1000)
        ]
    )
    top1 = float(np.mean(top5[:, 0] == labels))
    in_top5 = float(np.mean((top5 == labels[:, None]).any(axis=1)))
    # The card's figures come from keras' evaluation of the same weights; allow for a
    # float-rounding tie or two over 10,000 images.
    assert top1 == pytest.approx(card["test_top1"], abs=2e-4), name
    assert in_top5 == pytest.approx(card["test_top5"], abs=2e-4), name


def test_results_table_is_the_records():
    with open(os.path.join(BASE, "results.csv")) as f:
        rows = {r["tag"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == TAGS
    for tag, record in RECORDS.items():
        row = rows[tag]
        assert float(row["top1"]) == pytest.approx(100 * record.top1, abs=0.005)
        assert float(row["top5"]) == pytest.approx(100 * record.top5, abs=0.005)
        assert float(row["top1_mean"]) == pytest.approx(100 * record.source["top1_mean"], abs=0.005)
        assert int(row["params"]) == record.params and int(row["seeds"]) == len(record.seeds)
        assert json.loads(row["options"]) == record.options and row["sha256"] == record.sha256
        name = publishing.serving_name(tag)
        assert row["saved_model"] == f"{name}/{versions(os.path.join(BASE, name))[-1]}"
    with open(os.path.join(BASE, "README.md")) as f:
        readme = f.read()
    assert all(f"| `{tag}` |" in readme and RECORDS[tag].command in readme for tag in TAGS)


def test_every_tag_has_its_companions():
    assert sorted(n for n, _, _ in _companions()) == sorted(f"{f}/{n}" for f in COMPANIONS for n in NAMES)
    for folder in COMPANIONS:  # and nothing else
        assert sorted(os.listdir(os.path.join(BASE, folder))) == sorted(NAMES), folder


@pytest.mark.parametrize("name, path, card", _companions(), ids=[p[0] for p in _companions()])
def test_companions_reproduce_with_their_runtimes(name, path, card):
    images, labels = _fashion_mnist_test()
    folder, model = name.split("/")
    assert card["input"]["file"] == COMPANIONS[folder] and card["format"] == (
        "onnx" if folder == "onnx" else "litert"
    )
    assert card["converted_from"].startswith(f"saved_models/{model}/")
    served = runtimes.runner(card["format"], os.path.join(path, COMPANIONS[folder]))(images)["classes"][:, 0]
    top1 = float(np.mean(served == labels))
    check = card["verification"]
    if folder == "litert_int8":
        assert card["export"]["quantization"] == "int8"
        assert top1 == pytest.approx(check["test_top1_export"], abs=1e-9), name
        assert check["test_top1_keras"] == pytest.approx(card["test_top1"], abs=2e-4), name
    else:
        assert check["max_abs_diff_probabilities"] <= 1e-4 and check["top1_agreement"] == 1.0
        assert top1 == pytest.approx(card["test_top1"], abs=2e-4), name


@pytest.mark.parametrize(
    "name, path, card",
    [pytest.param(*p, marks=() if i == 0 else pytest.mark.slow) for i, p in enumerate(_published())],
    ids=[p[0] for p in _published()],
)
def test_cards_carry_the_tags_activation_stats(name, path, card):
    """A SavedModel's card states what kzoo.activation_stats gives for its tag on the first
    1,000 test images (an erased tag against its builder without the erasure, as kzoo stats
    measures it), and its full table lies beside the card."""
    from kzoo.transform import stats_measure

    entry = card.get("activation_stats")
    if entry is None:
        pytest.skip(f"{name}: exported before cards carried activation statistics (kzoo publish --tag TAG)")
    images, _ = _fashion_mnist_test()
    record = RECORDS[NAMES[name]]
    model = kzoo.create_model(record.tag, pretrained=True)
    expected = stats_measure.measure_built(model, record.architecture, record.options, record.dataset)
    assert entry["images"] == expected.images == 1000 and len(images) >= 1000
    assert [(r["module"], r["slot"], r["layer"], r["kind"], r["erased"]) for r in entry["slots"]] == [
        (r["module"], r["slot"], r["layer"], r["kind"], r["erased"]) for r in expected.rows
    ], name
    for got, want in zip(entry["slots"], expected.rows):
        for key in ("zero_fraction", "dead_fraction"):  # not measured: None on the card, NaN in the table
            value = np.nan if got[key] is None else got[key]
            assert value == pytest.approx(want[key], abs=1e-4, nan_ok=True), (got, key)
    with open(os.path.join(path, "activation_stats.json")) as f:
        full = json.load(f)
    assert full["source"] == record.tag and full["images"] == 1000
    assert [r["layer"] for r in full["rows"]] == [r["layer"] for r in entry["slots"]]
    assert os.path.isfile(os.path.join(path, "activation_stats.csv"))
    with open(os.path.join(path, "model_card.md")) as f:
        assert entry["summary_line"] in f.read()


def test_shipped_weights_are_their_records():
    """Every tag's file ships with the package and has the record's sha256; the set stays lean."""
    for tag, record in pretrained.read_manifest().items():
        path = os.path.join(pretrained.PACKAGE_DIR, record.file)
        assert pretrained.sha256(path) == record.sha256, tag
        assert record.architecture == tag.split(".")[0] and tag.split(".")[1].startswith(record.dataset)
    folder = pretrained.PACKAGE_DIR
    assert sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) < 40 * 2**20


@pytest.mark.parametrize(
    "tag", [pytest.param(t, marks=() if i == 0 else pytest.mark.slow) for i, t in enumerate(TAGS)]
)
def test_tags_rescore_their_records(tag):
    """A tag built by name scores its record's top-1/top-5 on the real test set (float32,
    no test-time augmentation, as the record states them) within 0.2 points."""
    _fashion_mnist_test()  # skips without the real data
    record = kzoo.model_info(tag).pretrained
    scores = kzoo.evaluate(kzoo.create_model(tag, pretrained=True), record.dataset)
    assert scores["test_top1"] == pytest.approx(record.top1, abs=0.002), tag
    assert scores["test_top5"] == pytest.approx(record.top5, abs=0.002), tag


def test_shipped_tags_are_the_publish_recipes():
    """The shipped tags are exactly the ones applications/publish_fashion_mnist.py trains, each
    from the command it runs for the shipped seed, with every seed it trains; the record's
    builder options are the ones its flags set (a tag trained by hand, with another recipe, or
    left unpublished, fails)."""
    recipe = load_script(os.path.join(os.path.dirname(BASE), "applications", "publish_fashion_mnist.py"))
    assert set(TAGS) == set(recipe.TAGS), "tags the recipe trains but the manifest lacks, or the reverse"
    for tag in TAGS:
        record = RECORDS[tag]
        architecture, _, seeds = recipe.TAGS[tag]
        command, _ = recipe.train_command(tag, record.source["seed"], os.path.join("runs", "publish"))
        assert record.command == command and record.architecture == architecture, tag
        assert sorted(s["seed"] for s in record.seeds) == list(range(seeds)), tag
        parsed = cli_parser.build_parser().parse_args(shlex.split(command)[1:])
        assert record.options == cli_model_options.model_kwargs(parsed), tag
