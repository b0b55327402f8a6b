"""kzoo.reproduce and its recipes (kzoo.reproduce.recipes, run by applications/): jobs, a
real (small) study on real Fashion-MNIST images with its aggregation checked against the
runs' own records, resume, divergence, reports, the recipes' command line and ``kzoo
reproduce``, and every recipe's definition."""

import argparse
import csv
import glob
import importlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys

import pytest
from helpers import load_script

import kzoo
from kzoo import atomic, cli_parser, data, reproduce
from kzoo import cli as kzoo_cli
from kzoo.reproduce import Study, Variant, finding, runner
from kzoo.reproduce import cli as reproduce_cli
from kzoo.training import Protocol, get_protocol

APPLICATIONS = os.path.join(os.path.dirname(__file__), "..", "applications")
# loaded once, read by several tests
SCRIPTS = {path: load_script(path) for path in sorted(glob.glob(os.path.join(APPLICATIONS, "*.py")))}
RECIPES = {
    name: importlib.import_module(f"kzoo.reproduce.recipes.{name}") for name in finding.package_recipes()
}
STUDIES = [m.STUDY for m in RECIPES.values()]


def _study(**changes):
    fields = dict(
        name="tiny",
        title="tiny study",
        source="a test",
        metric="error",
        protocol="fb_resnet_cifar",
        variants=(
            Variant("a", "A", "resnet20", paper={"cifar10": (8.0, 0.2)}),
            Variant(
                "b",
                "B",
                "resnet20",
                {"erase": "last"},
                paper={"cifar10": 7.5, "cifar100": "n/a"},
                baseline="a",
            ),
            Variant(
                "c",
                "C",
                "resnet110",
                datasets=("cifar100",),
                cpu_model="resnet20",
                cpu_kwargs={"erase": "first"},
                baseline="a",
            ),
            Variant("d", "D", "resnet1202", datasets=("cifar10",), cpu_model=None),
        ),
    )
    fields.update(changes)
    return Study(**fields)


def test_jobs_at_both_scales():
    study = _study()
    paper = reproduce.jobs(study, "paper")
    # 5 seeds; a: cifar10, b: cifar10 + cifar100, c: cifar100, d: cifar10
    assert len(paper) == 5 * 5
    assert [j.seed for j in paper] == sorted(j.seed for j in paper)  # seed-major
    assert [(j.variant.key, j.dataset) for j in paper[:5]] == [
        ("a", "cifar10"),
        ("b", "cifar10"),
        ("b", "cifar100"),
        ("c", "cifar100"),
        ("d", "cifar10"),
    ]
    assert {j.protocol for j in paper} == {"fb_resnet_cifar"}
    cpu = reproduce.jobs(study, "cpu")
    assert len(cpu) == 3 * 3 and {j.dataset for j in cpu} == {"fashion_mnist"}
    assert {j.variant.key for j in cpu} == {"a", "b", "c"}  # d is not run on the CPU
    c = next(j for j in cpu if j.variant.key == "c")
    assert (c.model, c.model_kwargs, c.protocol) == ("resnet20", {"erase": "first"}, "fashion_mnist_demo")
    assert c.folder == os.path.join("runs", "fashion_mnist", "c", "seed0")
    assert len(reproduce.jobs(study, "cpu", seeds=1, only=["a", "b*"])) == 2


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"scale": "gpu"}, ValueError, "`scale`"),
        ({"seeds": 0}, ValueError, "`seeds`"),
        ({"seeds": True}, TypeError, "`seeds`"),
        ({"seeds": "2"}, TypeError, "`seeds`"),
        ({"only": ["zz*"]}, ValueError, "`only`.*matches no variant.*a, b, c, d"),
        ({"only": 5}, TypeError, "`only`"),
        ({"only": []}, ValueError, "`only` names no variant"),
        ({"only": ["a", 3]}, TypeError, "`only`"),
        ({"only": ["a", " "]}, ValueError, "`only` holds an empty pattern"),
        ({"study": "tiny"}, TypeError, "`study` must be a kzoo.reproduce.Study"),
    ],
)
def test_bad_job_arguments(kwargs, err, match):
    kwargs = {"study": _study(), **kwargs}
    with pytest.raises(err, match=match):
        reproduce.jobs(**kwargs)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"metric": "loss"}, "`metric`"),
        ({"variants": ()}, "`variants` is empty"),
        ({"variants": (Variant("a", "A", "resnet20", datasets=("cifar10",)),) * 2}, "repeated"),
        (
            {"variants": (Variant("a", "A", "resnet20", datasets=("cifar10",), baseline="x"),)},
            "`baseline`='x'",
        ),
        ({"variants": (Variant("a", "A", "resnet20"),)}, "names no paper dataset"),
        ({"protocol": None}, "has no protocol"),
        ({"curves": {"fig": ("a", "zz")}}, "unknown variants"),
        ({"sweeps": {"fig": ("p", {"zz": 0.5})}}, "unknown variants"),
        ({"name": "../tiny"}, "Study `name` names a folder"),
        ({"seeds": 0}, "Study 'tiny': `seeds` must be a positive integer"),
        ({"cpu_seeds": "3"}, "Study 'tiny': `cpu_seeds` must be a positive integer"),
        ({"variants": [Variant("a", "A", "resnet20", datasets=("cifar10",)), "b"]}, "`variants` must hold"),
        ({"cpu_overrides": [("lr", 0.1)]}, "`cpu_overrides` must be a dict"),
        ({"curves": {"fig": "a"}}, r"`curves`\['fig'\] must be a tuple of names"),
        ({"sweeps": {"fig": ("p", {"a": "half"})}}, r"`sweeps`\['fig'\]\['a'\] must be a number"),
        ({"protocol": 5}, "`protocol` must be a protocol name"),
        ({"protocol": {"cifar10": "fb_resnet_cifar"}}, "names none for 'cifar100'"),
    ],
)
def test_bad_studies(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _study(**changes)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"key": "a/b"}, "Variant `key` names a folder"),
        ({"key": ""}, "Variant `key` names a folder"),
        ({"model": 3}, "Variant 'k': `model` must be a string"),
        ({"model_kwargs": ["erase"]}, "`model_kwargs` must be a dict"),
        ({"paper": {"cifar10": (8.0, 0.1, 3)}}, r"`paper`\['cifar10'\] must be a number, \(mean, std\)"),
        ({"paper": {"cifar10": float("nan")}}, "must be a finite number"),
        ({"datasets": "cifar10"}, "`datasets` must be a tuple of names"),
        ({"overrides": None}, "`overrides` must be a dict"),
        ({"cpu_model": 5}, "`cpu_model`"),
        ({"cpu_kwargs": "erase"}, "`cpu_kwargs` must be a dict"),
        ({"baseline": ""}, "`baseline` must not be empty"),
    ],
)
def test_bad_variants(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Variant(**{"key": "k", "label": "K", "model": "resnet20", "paper": {"cifar10": 8.0}, **changes})


def test_report_formats_paper_values_and_differences():
    study = _study()
    rows = [
        {
            "variant": "a",
            "label": "A",
            "model": "resnet20",
            "dataset": "cifar10",
            "n": 3,
            "of": 3,
            "mean": 8.5,
            "std": 0.25,
            "diverged": 0,
            "paper": study.variant("a").paper,
            "baseline": None,
        },
        {
            "variant": "b",
            "label": "B",
            "model": "resnet20",
            "dataset": "cifar10",
            "n": 2,
            "of": 3,
            "mean": 8.0,
            "std": 0.1,
            "diverged": 1,
            "paper": study.variant("b").paper,
            "baseline": "a",
        },
        {
            "variant": "c",
            "label": "C",
            "model": "resnet20",
            "dataset": "cifar10",
            "n": 0,
            "of": 3,
            "mean": None,
            "std": None,
            "diverged": 3,
            "paper": {},
            "baseline": "a",
        },
    ]
    text = reproduce.report.render(study, "cpu", rows, [])
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 8.50 ± 0.25 | 3/3 | - | 8.00 ± 0.20 | - |" in lines["A"]
    # kzoo 8.0 - 8.5; paper 7.5 - 8.0; a phrase is shown as it is, with no difference
    # ± sqrt(0.1²/2 + 0.25²/3) = 0.16, the standard error of the difference
    assert "| 8.00 ± 0.10 | 2/3, 1 diverged | -0.50 ± 0.16 | 7.50 | -0.50 | n/a | - |" in lines["B"]
    assert "| diverged | 0/3, 3 diverged |" in lines["C"]
    assert "Not run at CPU scale" in text and "D" in text.split("Not run at CPU scale")[1]


@pytest.mark.slow  # 41 s; make test stays near 20 min on 2 cores (make test-slow runs it)
def test_a_real_study_aggregates_its_runs(fmnist_subset_dir, tmp_path):
    study = Study(
        name="tiny",
        title="tiny",
        source="a test",
        metric="error",
        protocol="fb_resnet_cifar",
        cpu_overrides={"validation_size": 400, "batch_size": 64},
        variants=(
            Variant("orig", "ResNet-20", "resnet20", paper={"cifar10": (8.12, 0.18)}),
            Variant(
                "er", "ResNet-20 ER", "resnet20", {"erase": "last"}, datasets=("cifar10",), baseline="orig"
            ),
            Variant("nan", "ResNet-20 lr 1e12", "resnet20", datasets=("cifar10",), overrides={"lr": 1e12}),
        ),
        curves={"ResNet-20": ("orig", "er")},
        sweeps={"erase": ("erased", {"orig": 0.0, "er": 1.0})},
    )
    out = str(tmp_path / "study")
    rows = reproduce.run(
        study,
        "cpu",
        out,
        seeds=2,
        epochs=2,
        data_dir=fmnist_subset_dir,
        verbose=0,
        command="pytest tiny study",
    )
    with open(os.path.join(out, "runs.csv"), newline="") as f:
        runs = list(csv.DictReader(f))
    assert sorted((r["variant"], r["seed"]) for r in runs) == [
        ("er", "0"),
        ("er", "1"),
        ("orig", "0"),
        ("orig", "1"),
    ]
    by_key = {r["variant"]: r for r in rows}
    for key in ("orig", "er"):
        errors = []
        for seed in (0, 1):
            folder = os.path.join(out, "runs", "fashion_mnist", key, f"seed{seed}")
            metrics = json.load(open(os.path.join(folder, "metrics.json")))
            epochs = list(csv.DictReader(open(os.path.join(folder, "epochs.csv"))))
            assert len(epochs) == 2 and all(e["test_accuracy"] and e["test_cross_entropy"] for e in epochs)
            # the last point of the test curve is the final test evaluation
            assert float(epochs[-1]["test_accuracy"]) == pytest.approx(metrics["test_top1"], abs=1e-6)
            assert metrics["command"] == "pytest tiny study"
            assert json.load(open(os.path.join(folder, "wall.json")))["wall_seconds"] > 0
            errors.append(100 * (1 - metrics["test_top1"]))
        assert by_key[key]["n"] == 2
        assert by_key[key]["mean"] == pytest.approx(statistics.fmean(errors))
        assert by_key[key]["std"] == pytest.approx(statistics.stdev(errors))
    assert by_key["nan"]["n"] == 0 and by_key["nan"]["diverged"] == 2
    assert (
        "loss became nan"
        in json.load(
            open(os.path.join(out, "runs", "fashion_mnist", "nan", "seed0", reproduce.outputs.DIVERGED))
        )["reason"]
    )
    report = open(os.path.join(out, "results.md")).read()
    orig, er = by_key["orig"], by_key["er"]
    assert f"| {orig['mean']:.2f} ± {orig['std']:.2f} | 2/2 | - | 8.12 ± 0.18 |" in report
    se = math.sqrt(er["std"] ** 2 / 2 + orig["std"] ** 2 / 2)
    assert f"| {er['mean'] - orig['mean']:+.2f} ± {se:.2f} |" in report
    assert "| diverged | 0/2, 2 diverged |" in report
    assert "pytest tiny study" in report
    for name in ("curves-fashion_mnist-resnet-20.png", "sweep-erase.png", "results.md", "runs.csv"):
        assert os.path.getsize(os.path.join(out, name)) > 0

    # A re-run trains nothing; nor does one whose weights were dropped, as results/ keeps them.
    finished = glob.glob(os.path.join(out, "runs", "*", "*", "*", "metrics.json"))
    stamps = {p: os.path.getmtime(p) for p in finished}
    for path in glob.glob(os.path.join(out, "runs", "**", "*.keras"), recursive=True):
        os.remove(path)
    again = reproduce.run(
        study, "cpu", out, seeds=2, epochs=2, data_dir=fmnist_subset_dir, verbose=0, only=["orig"]
    )
    assert {p: os.path.getmtime(p) for p in stamps} == stamps
    # a run of some rows still reports the whole study
    assert [(r["variant"], r["mean"]) for r in again] == [(r["variant"], r["mean"]) for r in rows]
    assert "| diverged | 0/2, 2 diverged |" in open(os.path.join(out, "results.md")).read()
    # Finished runs of another length are not taken for this call's results.
    with pytest.raises(ValueError, match="trained for 2 epochs, but this call asks for 3"):
        reproduce.run(study, "cpu", out, seeds=2, epochs=3, data_dir=fmnist_subset_dir, verbose=0)


def test_recipe_command_line(tmp_path, capsys):
    study = _study()
    assert reproduce.main(study, ["--list", "--out", str(tmp_path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 9 and all(line.startswith("todo  runs/fashion_mnist/") for line in listed)
    assert reproduce.main(study, ["--only", "zz", "--out", str(tmp_path)]) == 2
    assert "`only`: 'zz' matches no variant" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(study, ["--scale", "gpu"])
    assert reproduce.main(study, ["--report", "--out", str(tmp_path)]) == 0
    assert "| A | resnet20 | fashion_mnist | - | 0/3 |" in open(tmp_path / "results.md").read()


def test_default_output_folder(tmp_path, monkeypatch, capsys):
    study = _study()
    assert reproduce.default_out(study, "cpu") == os.path.join("runs", "reproduce", "tiny-cpu")
    assert reproduce.default_out(study, "paper", 2) == os.path.join("runs", "reproduce", "tiny-paper-2epochs")
    # the recipe's command line writes there when no --out is given
    monkeypatch.chdir(tmp_path)
    os.makedirs(reproduce.default_out(study, "cpu", 2))  # --report writes into an existing folder
    assert reproduce.main(study, ["--report", "--epochs", "2"]) == 0
    assert os.path.exists(tmp_path / "runs" / "reproduce" / "tiny-cpu-2epochs" / "results.md")
    report = os.path.join("runs", "reproduce", "tiny-cpu-2epochs", "results.md")
    assert f"report: {report}" in capsys.readouterr().out


TINY_RECIPE = """
from kzoo.reproduce import Study, Variant, main

STUDY = Study(
    name="{name}", title="a tiny recipe", source="a test", metric="error", protocol="fb_resnet_cifar",
    variants=(Variant("a", "A", "resnet20", paper={{"cifar10": 8.0}}),
              Variant("b", "B", "resnet20", {{"erase": "last"}}, paper={{"cifar10": 7.5}}, baseline="a")),
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
"""


def _kzoo_reproduce(argv):
    """``kzoo reproduce ARGV`` as kzoo's main runs a sub-command: its parser class (usage,
    ``kzoo: error: ...``, exit 2) and its mapping of a bad input to ``kzoo: error: ...``, exit 2."""
    parser = cli_parser._Parser(prog="kzoo")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=cli_parser._Parser)
    reproduce_cli.add_parser(sub)
    args = parser.parse_args(["reproduce", *argv])
    assert args.command == "reproduce"
    try:
        return reproduce_cli.run_command(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        return kzoo_cli._fail(err, 2)


def test_kzoo_reproduce_lists_the_recipes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no applications/ here: the package's recipes, from any folder
    with_study = sorted(RECIPES)
    assert len(with_study) >= 12
    for argv in ([], ["--list-studies"]):
        assert _kzoo_reproduce(argv) == 0
        listed = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in listed] == with_study
    titles = {s.name: s.title for s in STUDIES}
    assert all(line.split(None, 1)[1] == titles[line.split()[0]] for line in listed)
    for script in ("demo", "time_to_accuracy", "publish_fashion_mnist"):  # scripts, not recipes
        assert os.path.exists(os.path.join(APPLICATIONS, script + ".py"))
        assert script not in with_study
    assert set(reproduce.find_recipes()) == set(with_study)


def test_every_recipe_is_in_the_package_and_its_script_runs_the_same_study():
    """Each recipe is a module of kzoo.reproduce.recipes (so a wheel holds it) with a script
    applications/NAME.py running the package's STUDY; no script defines a study of its own."""
    for name, module in RECIPES.items():
        assert os.path.dirname(module.__file__) == os.path.dirname(reproduce.recipes.__file__)
        assert isinstance(module.STUDY, Study) and module.STUDY.name == name
        script = SCRIPTS[os.path.join(APPLICATIONS, f"{name}.py")]
        assert script.STUDY is module.STUDY and script.main is reproduce.main
        assert reproduce.load_study(os.path.join(APPLICATIONS, f"{name}.py")) is module.STUDY
        assert reproduce.load_study(module.__file__) is module.STUDY  # imported, not run again
    for path in SCRIPTS:
        assert not finding.defines_study(path), path
    scripts_with_study = {os.path.basename(p)[:-3] for p, m in SCRIPTS.items() if hasattr(m, "STUDY")}
    assert scripts_with_study == set(RECIPES)


def test_the_recipes_package_is_packaged():
    """setup.py's find_packages finds the recipes package (it has an __init__.py), so a wheel
    holds every recipe module."""
    setuptools = pytest.importorskip("setuptools")
    root = os.path.join(APPLICATIONS, "..")
    setup = open(os.path.join(root, "setup.py")).read()
    assert 'packages=find_packages(include=["kzoo", "kzoo.*"])' in setup
    assert "kzoo.reproduce.recipes" in setuptools.find_packages(root, include=["kzoo", "kzoo.*"])


PACKAGED_RECIPE = TINY_RECIPE.replace(
    "from kzoo.reproduce import Study, Variant, main", "from kzoo.reproduce.study import Study, Variant"
).split("\nif __name__")[0]


def test_the_package_recipes_are_every_public_module_of_the_package(tmp_path, monkeypatch, capsys, request):
    """Recipes found through a package (a stand-in for kzoo.reproduce.recipes): every module
    but those named ``_*``, imported by name; one that fails to import is named with its
    line, after the others are listed; a user's recipe of the same name comes first."""
    package = tmp_path / "site" / "my_recipes"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tiny.py").write_text(PACKAGED_RECIPE.format(name="tiny"))
    (package / "_shared.py").write_text("X = 1\n")
    (package / "broken.py").write_text("import os\nimport kzoo_no_such_module\nSTUDY = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    request.addfinalizer(
        lambda: [sys.modules.pop(m) for m in list(sys.modules) if m.startswith("my_recipes")]
    )
    monkeypatch.setattr(finding, "PACKAGE", "my_recipes")
    monkeypatch.chdir(tmp_path)
    assert finding.package_recipes() == {
        "broken": str(package / "broken.py"),
        "tiny": str(package / "tiny.py"),
    }
    study = reproduce.load_study(str(package / "tiny.py"))
    assert study is sys.modules["my_recipes.tiny"].STUDY and study.title == "a tiny recipe"
    assert _kzoo_reproduce(["tiny", "--list", "--seeds", "1", "--out", "o"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert _kzoo_reproduce(["--list-studies"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "tiny                     a tiny recipe\n"
    assert re.search(
        r"kzoo: error: 1 recipe\(s\) cannot be loaded: recipe file '[^']*broken.py': the recipe failed "
        r"to load \(line 2: ModuleNotFoundError: No module named 'kzoo_no_such_module'\)",
        captured.err,
    ), captured.err
    _write_recipe("applications", "tiny", TINY_RECIPE.format(name="shadow"))
    assert reproduce.find_recipes()["tiny"] == os.path.join(str(tmp_path), "applications", "tiny.py")
    assert finding.resolve_study("tiny").name == "shadow"


def test_kzoo_reproduce_runs_a_recipe_by_name_or_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.mkdir(tmp_path / "applications")
    (tmp_path / "applications" / "tiny.py").write_text(TINY_RECIPE.format(name="tiny"))
    # a recipe under the current directory comes before the package's one of the same name
    (tmp_path / "applications" / "eraserelu_table1.py").write_text(TINY_RECIPE.format(name="shadow"))
    out = str(tmp_path / "out")
    os.mkdir(out)
    assert _kzoo_reproduce(["tiny", "--list", "--out", out]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 6 and all(line.startswith("todo  runs/fashion_mnist/") for line in listed)
    assert _kzoo_reproduce(["eraserelu_table1", "--list", "--seeds", "1", "--out", out]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert _kzoo_reproduce(["--list-studies"]) == 0
    listed = capsys.readouterr().out
    assert "tiny                     a tiny recipe" in listed
    assert "eraserelu_table1         a tiny recipe" in listed
    assert _kzoo_reproduce([os.path.join("applications", "tiny.py"), "--report", "--out", out]) == 0
    assert "| A | resnet20 | fashion_mnist | - | 0/3 |" in open(os.path.join(out, "results.md")).read()
    assert f"report: {os.path.join(out, 'results.md')}" in capsys.readouterr().out
    # the default output folder is the recipe's
    os.makedirs(os.path.join("runs", "reproduce", "tiny-cpu-1epochs"))
    assert _kzoo_reproduce(["tiny", "--report", "--epochs", "1"]) == 0
    assert os.path.exists(tmp_path / "runs" / "reproduce" / "tiny-cpu-1epochs" / "results.md")


def test_kzoo_reproduce_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_a_recipe.py").write_text("X = 1\n")
    (tmp_path / "broken.py").write_text("STUDY = 3\n")
    cases = [
        (
            ["eraserelu_tabel1"],
            "kzoo: error: `study` must be one of .*'eraserelu_table1'.*"
            "got 'eraserelu_tabel1'. Did you mean 'eraserelu_table1'",
        ),
        (["demo"], "kzoo: error: `study` must be one of"),  # a script without a STUDY is no recipe
        (["not_a_recipe.py"], "kzoo: error: `study`='not_a_recipe.py' defines no STUDY"),
        (["broken.py"], "kzoo: error: `study`='broken.py' defines no STUDY"),
        (["missing.py"], "kzoo: error: `study`='missing.py': no such recipe file"),
        (["eraserelu_table1", "--only", "zz", "--list"], "kzoo: error: `only`: 'zz' matches no variant"),
        (
            ["eraserelu_table1", "--seeds", "0", "--list"],
            "kzoo: error: `seeds` must be an integer at least 1",
        ),
    ]
    for argv, match in cases:
        assert _kzoo_reproduce(argv) == 2, argv
        err = capsys.readouterr().err
        assert re.search(match, err) and "Traceback" not in err, (argv, err)
    with pytest.raises(SystemExit) as exit_:
        _kzoo_reproduce(["eraserelu_table1", "--scale", "gpu"])
    assert exit_.value.code == 2
    assert "kzoo: error: reproduce: argument --scale: invalid choice: 'gpu'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="`study` must be one of"):
        finding.resolve_study("zz")


def _write_recipe(folder, name, text):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.py")
    with open(path, "w") as f:
        f.write(text)
    return path


def _tree(folder):
    """Every file and folder under ``folder``, relative to it."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
    )


def test_kzoo_reproduce_checks_every_option_before_anything_is_written(
    tmp_path, monkeypatch, capsys, fmnist_like_dir
):
    monkeypatch.chdir(tmp_path)
    _write_recipe("applications", "tiny", TINY_RECIPE.format(name="tiny"))
    (tmp_path / "afile").write_text("")
    os.mkdir("done")
    cases = [
        # a run: the output folder and the data folder, before the output folder is made
        (["tiny", "--out", "o", "--data-dir", "missing"], "`data_dir`='missing' does not exist"),
        (
            ["tiny", "--out", "afile", "--data-dir", fmnist_like_dir],
            "`out`=.*afile' is a file, not a directory",
        ),
        (["tiny", "--out", "afile/o"], "`out`=.*afile/o' lies under the file"),
        (["tiny", "--out", ""], "`out` must be a non-empty path"),
        (["tiny", "--out", "o", "--only", ", "], "`only` names no variant key or pattern"),
        (["tiny", "--out", "o", "--epochs", "0"], "`epochs` must be an integer at least 1"),
        # a report needs the folder a run wrote
        (
            ["tiny", "--report", "--out", "missing/deep"],
            "`out`='missing/deep' does not exist, so it holds no runs",
        ),
        (
            ["tiny", "--report", "--out", "done", "--data-dir", "missing"],
            "`data_dir`='missing' does not exist",
        ),
        # --list checks the options it does not use too
        (["tiny", "--list", "--out", "o", "--epochs", "0"], "`epochs` must be an integer at least 1"),
        (["tiny", "--list", "--out", "o", "--data-dir", "missing"], "`data_dir`='missing' does not exist"),
        (["tiny", "--list", "--out", "afile"], "`out`=.*afile' is a file"),
        (["tiny", "--list", "--seeds", "-1"], "`seeds` must be an integer at least 1"),
        # options with no recipe to take them, a recipe with --list-studies
        (["--epochs", "2"], "--epochs needs a recipe"),
        (["--out", "o", "--quiet"], "--out, --quiet need a recipe"),
        (["tiny", "--list-studies"], "`--list-studies` lists the recipes and runs none"),
    ]
    before = _tree(tmp_path)
    for argv, match in cases:
        assert _kzoo_reproduce(argv) == 2, argv
        err = capsys.readouterr().err
        assert re.search(match, err) and "Traceback" not in err, (argv, err)
        assert _tree(tmp_path) == before, argv  # nothing created
    with pytest.raises(SystemExit) as exit_:
        _kzoo_reproduce(["tiny", "--list", "--report"])
    assert exit_.value.code == 2 and "not allowed with argument --list" in capsys.readouterr().err
    # through kzoo's own main: a bad input is exit 2, not a failed run's 1
    assert kzoo_cli.main(["reproduce", "tiny", "--out", "afile", "--data-dir", fmnist_like_dir]) == 2
    assert "is a file" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_recipe_command_line_maps_errors_to_exit_codes(tmp_path, capsys):
    study = _study()
    (tmp_path / "afile").write_text("")
    assert reproduce.main(study, ["--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "error: `out`=" in err and "is a file" in err and "Traceback" not in err
    assert reproduce.main(study, ["--report", "--out", str(tmp_path / "missing")]) == 2
    assert "does not exist, so it holds no runs" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "missing")
    with pytest.raises(TypeError, match="`study` must be a kzoo.reproduce.Study"):
        reproduce.main("tiny", [])
    with pytest.raises(TypeError, match="`argv` must be a list of strings"):
        reproduce.main(study, "--list")


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"study": 5}, TypeError, "`study` must be a kzoo.reproduce.Study"),
        ({"scale": "gpu"}, ValueError, "`scale` must be one of 'paper', 'cpu', got 'gpu'"),
        ({"out": 5}, TypeError, "`out` must be a path"),
        ({"out": ""}, ValueError, "`out` must be a non-empty path"),
        ({"out": "FILE"}, ValueError, "is a file, not a directory"),
        ({"out": "FILE/o"}, ValueError, "lies under the file"),
        ({"only": 5}, TypeError, "`only` must be a variant key or pattern"),
        ({"only": ["zz"]}, ValueError, "`only`: 'zz' matches no variant"),
        ({"seeds": 0}, ValueError, "`seeds` must be an integer at least 1"),
        ({"seeds": "2"}, TypeError, "`seeds`"),
        ({"epochs": "1"}, TypeError, "`epochs` must be an integer at least 1"),
        ({"epochs": 0}, ValueError, "`epochs` must be an integer at least 1"),
        ({"data_dir": 5}, TypeError, "`data_dir` must be a path"),
        ({"data_dir": "MISSING"}, FileNotFoundError, "`data_dir`=.* does not exist"),
        ({"verbose": 7}, ValueError, "`verbose` must be 'auto', 0, 1 or 2"),
        ({"command": 5}, TypeError, "`command` must be a string or None"),
    ],
)
def test_run_refuses_bad_arguments_before_anything_is_written(tmp_path, kwargs, err, match):
    (tmp_path / "FILE").write_text("")
    out = str(tmp_path / "out")
    values = {"study": _study(), "scale": "cpu", "out": out, "verbose": 0, **kwargs}
    for key in ("out", "data_dir"):
        if isinstance(values.get(key), str) and values[key][:4] in ("FILE", "MISS"):
            values[key] = str(tmp_path / values[key])
    with pytest.raises(err, match=match):
        reproduce.run(values.pop("study"), values.pop("scale"), values.pop("out"), **values)
    assert _tree(tmp_path) == ["FILE"]


def test_the_output_helpers_check_their_arguments(tmp_path):
    study = _study()
    job = reproduce.jobs(study, "cpu", seeds=1)[0]
    out = str(tmp_path)
    cases = [
        (lambda: reproduce.outputs.read_job(5, job), TypeError, "`out` must be a path"),
        (lambda: reproduce.outputs.is_done(out, "a"), TypeError, "`job` must be a kzoo.reproduce.Job"),
        (
            lambda: reproduce.outputs.write_job_record(out, job, "../wall.json", {}),
            ValueError,
            "`name` must be a file name",
        ),
        (
            lambda: reproduce.outputs.write_job_record(out, job, "wall.json", 5),
            TypeError,
            "`record` must be a dict",
        ),
        (
            lambda: reproduce.runner.check_records(out, job),
            TypeError,
            "`todo` must be a list of kzoo.reproduce.Job",
        ),
        (
            lambda: reproduce.runner.check_records(out, [job], epochs=0),
            ValueError,
            "`epochs` must be an integer",
        ),
        (lambda: reproduce.runner.check_jobs(["a"]), TypeError, "`todo` must hold kzoo.reproduce.Job"),
        (
            lambda: reproduce.report.summarize(study, "cpu", out, [job, "b"]),
            TypeError,
            "`todo` must hold",
        ),
        (lambda: reproduce.write_report(study, "gpu", out), ValueError, "`scale` must be one of"),
        (lambda: reproduce.default_out(study, "cpu", epochs=0), ValueError, "`epochs` must be an integer"),
        (
            lambda: reproduce.report.render("tiny", "cpu", [], []),
            TypeError,
            "`study` must be a kzoo.reproduce.Study",
        ),
        (
            lambda: reproduce.scores.score(0.9, "errors"),
            ValueError,
            "`metric` must be one of 'error', 'accuracy'",
        ),
        (lambda: reproduce.scores.score(1.5, "error"), ValueError, "`top1` must be a finite number in"),
        (lambda: reproduce.scores.mean_std("12"), TypeError, "`values` must be a list of numbers"),
        (lambda: reproduce.load_study(5), TypeError, "`study` must be a path"),
        (lambda: finding.resolve_study(""), ValueError, "`study` must be a non-empty path"),
        (
            lambda: reproduce.outputs.clear_temporaries(str(tmp_path / "missing")),
            FileNotFoundError,
            "`out`=.* does not exist",
        ),
    ]
    for call, err, match in cases:
        with pytest.raises(err, match=match):
            call()
    assert os.listdir(tmp_path) == []


def test_a_row_kzoo_train_would_refuse_is_refused_before_any_job_runs(tmp_path, fmnist_like_dir):
    study = _study(
        variants=(
            Variant("a", "A", "resnet20", paper={"cifar10": 8.0}),
            Variant("b", "B", "resnet20", paper={"cifar10": 8.0}, overrides={"lrr": 0.1}),
        )
    )
    with pytest.raises(ValueError, match="row 'b' on fashion_mnist: .*unknown protocol field.*'lrr'"):
        reproduce.run(study, "cpu", str(tmp_path / "out"), data_dir=fmnist_like_dir, verbose=0)
    typo = _study(variants=(Variant("a", "A", "resnet20", paper={"cifar10": 8.0}, cpu_model="resnet2O"),))
    with pytest.raises(ValueError, match="row 'a' on fashion_mnist: .*resnet2O"):
        reproduce.run(typo, "cpu", str(tmp_path / "out"), data_dir=fmnist_like_dir, verbose=0)
    # a warm-up that a short run (--epochs) would never finish
    warm = _study(
        variants=(
            Variant(
                "w",
                "W",
                "resnet20",
                paper={"cifar10": 8.0},
                overrides={"warmup_steps": 5000},
            ),
        )
    )
    with pytest.raises(
        ValueError, match="row 'w' on fashion_mnist: `warmup_steps`=5000 is not shorter than the run"
    ):
        reproduce.run(warm, "cpu", str(tmp_path / "out"), data_dir=fmnist_like_dir, epochs=1, verbose=0)
    assert not os.path.exists(tmp_path / "out")


BROKEN_RECIPES = {
    "syntax": ("X = 1\nSTUDY = (\n", r"the recipe is not valid Python \(line 2: "),
    "missing_import": (
        "import os\nimport kzoo_no_such_module\nSTUDY = 1\n",
        r"the recipe failed to load \(line 2: ModuleNotFoundError: No module named 'kzoo_no_such_module'\)",
    ),
    "bad_study": (
        TINY_RECIPE.format(name="bad").replace('metric="error"', 'metric="loss"'),
        r"the recipe failed to load \(line 4: ValueError: Study 'bad': `metric` must be one of",
    ),
    "exits": (
        "import sys\nsys.exit(3)\nSTUDY = 1\n",
        r"the recipe failed to load \(line 2: it exited \(SystemExit 3\)",
    ),
}


def test_a_broken_recipe_is_named_with_its_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write_recipe("applications", "tiny", TINY_RECIPE.format(name="tiny"))
    for name, (text, match) in BROKEN_RECIPES.items():
        path = _write_recipe("applications", name, text)
        for argv in ([name, "--list"], [os.path.join("applications", f"{name}.py"), "--list"]):
            assert _kzoo_reproduce(argv) == 2, argv
            err = capsys.readouterr().err
            assert re.search(r"kzoo: error: `study`=.*" + re.escape(f"{name}.py'") + ": " + match, err), err
            assert "Traceback" not in err
        with pytest.raises(ValueError, match=match):
            reproduce.load_study(path)
    # The listing lists the recipes that load, then names each one that does not.
    assert _kzoo_reproduce(["--list-studies"]) == 2
    captured = capsys.readouterr()
    assert "tiny                     a tiny recipe" in captured.out
    assert "kzoo: error: 4 recipe(s) cannot be loaded" in captured.err and "Traceback" not in captured.err
    for name, (_, match) in BROKEN_RECIPES.items():
        assert re.search(f"recipe file '[^']*{name}.py': {match}", captured.err), name


def test_a_recipe_imports_its_neighbours_as_python_runs_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write_recipe("applications", "rows_of_tiny", 'KEYS = ("a", "b")\n')
    text = TINY_RECIPE.format(name="uses").replace(
        "from kzoo.reproduce import Study, Variant, main",
        "from rows_of_tiny import KEYS\nfrom kzoo.reproduce import Study, Variant, main",
    )
    _write_recipe("applications", "uses", text)
    path = list(sys.path)
    assert _kzoo_reproduce(["uses", "--list", "--seeds", "1", "--out", "o"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert sys.path == path


CPU_PROTOCOL_FIELDS = get_protocol("fashion_mnist_demo").to_dict()


def _finished_job(out, job, epochs=2, top1=0.9, model_kwargs=None, wall=5.0):
    """The records a finished job leaves (as kzoo.train and the runner write them),
    written by hand: a report's input without training."""
    folder = os.path.join(out, job.folder)
    os.makedirs(folder, exist_ok=True)
    rows = [
        {
            "epoch": e,
            "accuracy": 0.5,
            "test_accuracy": top1,
            "test_cross_entropy": 0.3,
            "lr": 0.1,
            "seconds": 2.0,
        }
        for e in range(epochs)
    ]
    with open(os.path.join(folder, "epochs.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    kwargs = job.model_kwargs if model_kwargs is None else model_kwargs
    record = {"model": job.model, "model_kwargs": kwargs, "dataset": job.dataset, "seed": job.seed}
    config = {
        **record,
        "protocol": "fashion_mnist_demo",
        "protocol_fields": {**CPU_PROTOCOL_FIELDS, "epochs": epochs},
    }
    metrics = {
        **record,
        "protocol": "fashion_mnist_demo",
        "epochs": epochs,
        "test_top1": top1,
        "test_top5": 0.99,
        "test_loss": 0.3,
        "best_val_top1": None,
        "params": 1000,
        "train_seconds": 2.0 * epochs,
        "command": "by hand",
    }
    for name, value in (
        ("config.json", config),
        ("metrics.json", metrics),
        ("wall.json", {"wall_seconds": wall}),
    ):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(value, f)
    return folder


def _finished_study(out, seeds=1, epochs=2):
    study = _study()
    for job in reproduce.jobs(study, "cpu", seeds=seeds):
        _finished_job(out, job, epochs=epochs, top1={"a": 0.9, "b": 0.92, "c": 0.88}[job.variant.key])
    return study


def test_a_report_of_finished_records(tmp_path, capsys):
    out = str(tmp_path / "out")
    study = _finished_study(out)
    assert reproduce.main(study, ["--report", "--seeds", "1", "--epochs", "2", "--out", out]) == 0
    report = open(os.path.join(out, "results.md")).read()
    assert "| A | resnet20 | fashion_mnist | 10.00 ± 0.00 | 1/1 | - |" in report
    assert "| B | resnet20 | fashion_mnist | 8.00 ± 0.00 | 1/1 | -2.00 |" in report
    assert reproduce.main(study, ["--list", "--seeds", "1", "--epochs", "2", "--out", out]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[-3:]] == ["done"] * 3


def _damage(name, text):
    def damage(folder):
        path = os.path.join(folder, name)
        if text is None:
            os.remove(path)
        else:
            with open(path, "w") as f:
                f.write(text)
        return path

    return damage


@pytest.mark.parametrize(
    "damage, err, match",
    [
        (
            _damage("metrics.json", '{"epo'),
            ValueError,
            "the finished job's metrics '{file}' is damaged .*; {redo}",
        ),
        (
            _damage("metrics.json", "[1, 2]"),
            ValueError,
            "the finished job's metrics '{file}' is damaged .*; {redo}",
        ),
        (
            _damage("metrics.json", '{"epochs": 2}'),
            ValueError,
            r"the finished job's metrics '{file}' is damaged \(`model` is None, not a name\); {redo}",
        ),
        (_damage("wall.json", "[1"), ValueError, r"the job's wall time '{file}' is damaged .*; delete it"),
        (
            _damage("wall.json", '{"wall_seconds": -1}'),
            ValueError,
            r"the job's wall time '{file}' is damaged",
        ),
        (
            _damage("epochs.csv", None),
            FileNotFoundError,
            r"the finished job's epoch log '{file}' is missing; {redo}",
        ),
        (
            _damage("epochs.csv", "epoch,seconds\n0,2.0\n"),
            ValueError,
            r"'{file}' has 1 epochs, but its metrics",
        ),
        (
            _damage("epochs.csv", "epoch,seconds\nfirst,2.0\n"),
            ValueError,
            r"the epoch log '{file}' is damaged",
        ),
    ],
)
def test_a_damaged_record_is_named_with_what_to_do(tmp_path, capsys, fmnist_like_dir, damage, err, match):
    out = str(tmp_path / "out")
    study = _finished_study(out)
    folder = os.path.join(out, "runs", "fashion_mnist", "b", "seed0")
    file = damage(folder)
    match = match.format(
        file=re.escape(file), redo=re.escape(f"delete the job's folder {folder!r} to run it again")
    )
    before = _tree(out)
    for mode in ("--report", "--list", None):  # a run refuses it before it trains anything
        argv = ["--seeds", "1", "--epochs", "2", "--out", out, "--data-dir", fmnist_like_dir, "--quiet"]
        assert reproduce.main(study, argv + ([mode] if mode else [])) == 2, mode
        message = capsys.readouterr().err
        assert re.search(match, message) and "Traceback" not in message, (mode, message)
    with pytest.raises(err, match=match):
        reproduce.write_report(study, "cpu", out, reproduce.jobs(study, "cpu", seeds=1))
    with pytest.raises(err, match=match):
        reproduce.run(study, "cpu", out, seeds=1, epochs=2, data_dir=fmnist_like_dir, verbose=0)
    assert _tree(out) == before


def test_a_folder_holding_other_runs_is_refused(tmp_path, capsys, fmnist_like_dir):
    study = _study()
    out = str(tmp_path / "out")
    b0, c0 = (j for j in reproduce.jobs(study, "cpu", seeds=1) if j.variant.key in "bc")
    # the row's options changed since its run
    _finished_job(out, b0, model_kwargs={"erase": "first"})
    message = (
        "holds runs/fashion_mnist/b/seed0 trained with model_kwargs {'erase': 'first'}, but the study asks "
        "for {'erase': 'last'} there"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        reproduce.run(study, "cpu", out, seeds=1, epochs=2, data_dir=fmnist_like_dir, verbose=0)
    assert reproduce.main(study, ["--list", "--seeds", "1", "--epochs", "2", "--out", out]) == 2
    assert message in capsys.readouterr().err
    shutil.rmtree(out)
    # an unfinished job (killed) and a diverged one, started for other epochs
    _finished_job(out, b0, epochs=3)
    os.remove(os.path.join(out, b0.folder, "metrics.json"))
    with pytest.raises(
        ValueError,
        match=r"holds runs/fashion_mnist/b/seed0 started \(unfinished\) for 3 epochs, but this call asks for 2",
    ):
        reproduce.run(study, "cpu", out, seeds=1, epochs=2, data_dir=fmnist_like_dir, verbose=0)
    shutil.rmtree(out)
    _finished_job(out, c0, epochs=3)
    os.remove(os.path.join(out, c0.folder, "metrics.json"))
    reproduce.outputs.write_job_record(out, c0, reproduce.outputs.DIVERGED, {"reason": "nan"})
    with pytest.raises(
        ValueError, match="holds runs/fashion_mnist/c/seed0 diverged for 3 epochs, but this call asks for 2"
    ):
        reproduce.run(study, "cpu", out, seeds=1, epochs=2, data_dir=fmnist_like_dir, verbose=0)
    assert _tree(out) == sorted(
        ["runs", "runs/fashion_mnist", "runs/fashion_mnist/c", "runs/fashion_mnist/c/seed0"]
        + [
            f"runs/fashion_mnist/c/seed0/{n}"
            for n in ("config.json", "diverged.json", "epochs.csv", "wall.json")
        ]
    )


def test_a_report_clears_killed_writes_and_holds_its_folder(tmp_path):
    out = str(tmp_path / "out")
    study = _finished_study(out)
    folder = os.path.join(out, "runs", "fashion_mnist", "a", "seed0")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = f".tmp-{atomic.host()}-{gone.pid}-"  # the name a killed writer's temporary has
    left = [os.path.join(out, dead + "abcd1234"), os.path.join(folder, dead + "wall5678")]
    left += [os.path.join(out, "curves-fashion_mnist-all.png.tmp.png")]
    for path in left:
        open(path, "w").close()
    os.makedirs(os.path.join(folder, "backup", dead + "x1y2z3"))
    live = os.path.join(out, atomic.owner_prefix() + "live1234")  # a write in flight: kept
    open(live, "w").close()
    reproduce.write_report(study, "cpu", out, reproduce.jobs(study, "cpu", seeds=1))
    assert not any(os.path.exists(p) for p in left) and os.listdir(os.path.join(folder, "backup")) == []
    assert os.path.exists(live)
    os.remove(live)
    # One writer at a time: while a folder is held, another report or run is refused.
    with reproduce.outputs.writing(out):
        with pytest.raises(
            ValueError, match="is being written by another kzoo reproduce that is still running"
        ):
            reproduce.write_report(study, "cpu", out, reproduce.jobs(study, "cpu", seeds=1))
        with pytest.raises(ValueError, match="is being written by another kzoo reproduce"):
            reproduce.run(study, "cpu", out, seeds=1, epochs=2, verbose=0)
    reproduce.write_report(study, "cpu", out, reproduce.jobs(study, "cpu", seeds=1))  # released


def test_a_resumed_jobs_wall_time_counts_the_epochs_it_kept(tmp_path):
    """A job resumed after a kill records the wall time an uninterrupted call would have:
    this call's own, plus the epochs it kept from the killed one."""
    out = str(tmp_path)
    job = reproduce.jobs(_study(), "cpu", seeds=1)[0]
    folder = _finished_job(out, job, epochs=4)  # epochs.csv: 4 rows of 2.0 s
    os.remove(os.path.join(folder, "wall.json"))
    resumed = runner._Attempt(out, job)
    resumed.on_epoch_begin(2)  # the killed call had finished epochs 0 and 1
    resumed.on_train_end()  # written before kzoo.train writes metrics.json
    assert 4.0 <= json.load(open(os.path.join(folder, "wall.json")))["wall_seconds"] < 5.0
    fresh = runner._Attempt(out, job)
    fresh.on_epoch_begin(0)
    assert fresh.wall_seconds() < 1.0  # all its epochs are its own
    finished = runner._Attempt(out, job)  # killed after its last epoch, before metrics.json
    assert 8.0 <= finished.wall_seconds() < 9.0


KILLED_RECIPE = """
from kzoo.reproduce import Study, Variant

STUDY = Study(
    name="killed", title="killed", source="a test", metric="error", protocol="fashion_mnist_cpu",
    cpu_overrides={"validation_size": 64, "batch_size": 64},
    variants=(Variant("a", "A", "smallnet_bn", paper={"cifar100": 30.0}),),
)
"""

# kill -9 at a point of a study's run; the re-run of the same call must leave what an
# uninterrupted run leaves.
_STUDY_KILLERS = {
    "mid_job": """
def killer(self, epoch, logs=None):
    if epoch == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, epoch, logs)
cls, attr = runner._Attempt, "on_epoch_begin"
""",
    "before_wall": """
def killer(out, job, name, record):
    if name == outputs.WALL and os.path.exists(os.path.join(out, job.folder, "metrics.json")):
        os.kill(os.getpid(), signal.SIGKILL)  # the job finished; its wall time is not written
    return original(out, job, name, record)
cls, attr = runner, "write_job_record"
""",
    "report_half_written": """
def killer(path, text):
    if path.endswith("results.md"):
        tmp = atomic.temporary_file(os.path.dirname(path))
        open(tmp, "w").write(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return original(path, text)
cls, attr = atomic, "write_text"
""",
}


@pytest.fixture(scope="module")
def uninterrupted_study(tmp_path_factory, fmnist_like_dir):
    """A one-job study run without a kill: what a resumed one must leave."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    recipe = _write_recipe(str(folder), "killed", KILLED_RECIPE)
    out = str(folder / "out")
    study = reproduce.load_study(recipe)
    reproduce.run(study, "cpu", out, seeds=1, epochs=2, data_dir=fmnist_like_dir, verbose=0, command="test")
    return recipe, out


@pytest.mark.parametrize(
    "point",
    [
        "mid_job",
        pytest.param("before_wall", marks=pytest.mark.slow),
        pytest.param("report_half_written", marks=pytest.mark.slow),
    ],
)
def test_a_killed_study_resumes_to_the_uninterrupted_record(
    tmp_path, fmnist_like_dir, uninterrupted_study, point
):
    recipe, reference = uninterrupted_study
    out = str(tmp_path / "out")
    kwargs = dict(seeds=1, epochs=2, data_dir=fmnist_like_dir, verbose=0, command="test")
    script = "\n".join(
        [
            "import os, signal",
            "from kzoo import atomic, reproduce",
            "from kzoo.reproduce import outputs, runner",
            _STUDY_KILLERS[point],
            "original = getattr(cls, attr)",
            "setattr(cls, attr, killer)",
            f"reproduce.run(reproduce.load_study({recipe!r}), 'cpu', {out!r}, **{kwargs!r})",
        ]
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    folder = os.path.join(out, "runs", "fashion_mnist", "a", "seed0")
    first_rows = list(csv.DictReader(open(os.path.join(folder, "epochs.csv"))))
    metrics_before = os.path.getmtime(os.path.join(folder, "metrics.json")) if point != "mid_job" else None

    rows = reproduce.run(reproduce.load_study(recipe), "cpu", out, **kwargs)
    assert _tree(out) == _tree(reference)  # no temporary, no backup, nothing missing
    assert rows[0]["n"] == 1
    epochs = list(csv.DictReader(open(os.path.join(folder, "epochs.csv"))))
    assert [int(r["epoch"]) for r in epochs] == [0, 1] and epochs[0] == first_rows[0]  # resumed
    if metrics_before is not None:  # a finished job is not trained again
        assert os.path.getmtime(os.path.join(folder, "metrics.json")) == metrics_before
    # its wall time covers every epoch, those of the killed call too
    wall = json.load(open(os.path.join(folder, "wall.json")))["wall_seconds"]
    assert wall >= sum(float(r["seconds"]) for r in epochs)
    with open(os.path.join(out, "runs.csv")) as f, open(os.path.join(reference, "runs.csv")) as g:
        ours, theirs = list(csv.DictReader(f)), list(csv.DictReader(g))
    same = ("variant", "dataset", "seed", "model", "model_kwargs", "protocol", "epochs", "params", "command")
    assert [{k: r[k] for k in same} for r in ours] == [{k: r[k] for k in same} for r in theirs]
    assert "| A | smallnet_bn | fashion_mnist |" in open(os.path.join(out, "results.md")).read()


def test_recipe_and_sub_command_take_the_same_options():
    parser = cli_parser._Parser(prog="kzoo")
    sub = parser.add_subparsers(dest="command", parser_class=cli_parser._Parser)
    command = reproduce_cli.add_parser(sub)
    recipe = reproduce_cli.add_study_arguments(argparse.ArgumentParser())
    options = lambda p: {s for a in p._actions for s in a.option_strings}  # noqa: E731
    assert options(command) - options(recipe) == {"--list-studies"}
    assert options(recipe) <= options(command)


@pytest.mark.parametrize("study", STUDIES, ids=[s.name for s in STUDIES])
def test_every_recipe_names_real_models_protocols_and_datasets(study):
    assert len(STUDIES) >= 12
    for job in reproduce.jobs(study, "paper") + reproduce.jobs(study, "cpu"):
        kzoo.model_info(job.model)
        data.dataset_info(job.dataset)
        proto = job.protocol if isinstance(job.protocol, Protocol) else get_protocol(job.protocol)
        get_protocol(proto, **job.overrides)
    for v in study.variants:
        for value in v.paper.values():
            assert isinstance(value, (str, float, int, tuple)), (study.name, v.key)
            if isinstance(value, tuple):
                assert len(value) == 2 and all(math.isfinite(x) for x in value)


def test_every_cpu_job_builds():
    """Every (model, options) a CPU-scale recipe trains builds, so a recipe cannot fail
    after hours on a misspelt option."""
    configs = {
        (j.model, json.dumps(j.model_kwargs, sort_keys=True))
        for s in STUDIES
        for j in reproduce.jobs(s, "cpu", seeds=1)
    }
    for model, kwargs in sorted(configs):
        kzoo.model_info(model).build(classes=10, **json.loads(kwargs))


@pytest.mark.parametrize("study", STUDIES, ids=[s.name for s in STUDIES])
def test_every_cpu_scale_passes_the_checks_made_before_training(study):
    """``kzoo reproduce NAME --scale cpu`` is refused before any training when a job would
    be (eraserelu_table3's 200-step warm-up was longer than its 168-step CPU runs)."""
    from kzoo.reproduce.runner import check_jobs

    check_jobs(reproduce.jobs(study, "cpu", seeds=1))


@pytest.mark.slow
def test_every_paper_job_builds():
    configs = {
        (j.model, json.dumps(j.model_kwargs, sort_keys=True))
        for s in STUDIES
        for j in reproduce.jobs(s, "paper", seeds=1)
    }
    for model, kwargs in sorted(configs):
        kzoo.model_info(model).build(**json.loads(kwargs))


def test_train_fraction_takes_a_nested_prefix(fmnist_like_dir):
    full = data.make_datasets(
        "fashion_mnist", batch_size=1, data_dir=fmnist_like_dir, validation_size=200, augment=False
    )[0]
    tenth = data.make_datasets(
        "fashion_mnist",
        batch_size=1,
        data_dir=fmnist_like_dir,
        validation_size=200,
        augment=False,
        train_fraction=0.1,
    )[0]
    assert int(full.cardinality()) == 1800 and int(tenth.cardinality()) == 180
    labels = lambda ds: sorted(int(y[0]) for _, y in ds)  # noqa: E731
    # the same examples for any seed, and the first 10% of the training split's order
    first = data.load("fashion_mnist", "train", data_dir=fmnist_like_dir, validation_size=200).take(180)
    assert labels(tenth) == sorted(int(y) for _, y in first)
    assert data.train_examples("fashion_mnist", 5000, 0.1) == 5500
    with pytest.raises(ValueError, match="`train_fraction`"):
        data.make_datasets("fashion_mnist", batch_size=1, data_dir=fmnist_like_dir, train_fraction=0)


def test_test_curve_needs_the_test_set():
    with pytest.raises(ValueError, match="`test_curve`"):
        kzoo.train("resnet20", "fashion_mnist", test=False, test_curve=True)
    with pytest.raises(TypeError, match="`test_curve`"):
        kzoo.train("resnet20", "fashion_mnist", test_curve="yes")


def test_time_to_accuracy_rules():
    """The clock leaves the per-epoch test passes out and adds the whitening and one final
    evaluation; seeds, recipes and machine kinds are read as the rules say."""
    tta = load_script(os.path.join(APPLICATIONS, "time_to_accuracy.py"))
    rows = [{"seconds": 10.0, "test_seconds": 1.5}, {"seconds": 12.0, "test_seconds": 2.0}]
    seconds, parts = tta.clock({"whitening_seconds": 0.5, "eval_seconds": None}, rows)
    assert parts == {"train_seconds": 18.5, "whitening_seconds": 0.5, "final_eval_seconds": 2.0}
    assert seconds == 21.0  # the last epoch's test pass is the final evaluation, counted once
    seconds, parts = tta.clock({"whitening_seconds": None, "eval_seconds": 3.0}, [{"seconds": 10.0}])
    assert seconds == 13.0 and parts["whitening_seconds"] == 0.0
    assert tta.parse_seeds("0,1,2") == [0, 1, 2] and tta.parse_seeds("10-12,20") == [10, 11, 12, 20]
    for bad in ("a", "1,1", "-1", ""):
        with pytest.raises(ValueError, match="--seeds"):
            tta.parse_seeds(bad)
    assert (
        tta.recipe("kzoo train r --epochs 2 --seed 3 --quiet --out x/run")
        == "kzoo train r --epochs 2 --quiet"
    )
    amd = {"cpu_model": "AMD EPYC", "cpu_flags": ["avx512f", "avx512_bf16"], "cpu_count": 2}
    intel = {
        "cpu_model": "Intel(R) Xeon(R) Processor",
        "cpu_flags": ["avx512_bf16", "amx_bf16"],
        "cpu_count": 2,
    }
    assert tta.machine_kind(amd) == "AMD EPYC, AVX512_BF16, 2 cores"
    assert tta.machine_kind(intel) == "Intel(R) Xeon(R) Processor, AMX, 2 cores"
    with pytest.raises(ValueError, match="--curve"):
        tta.candidate_args(["resnet20"], "f", 0, select=True, curve=True)
    with pytest.raises(ValueError, match="--seed"):
        tta.candidate_args(["resnet20", "--seed", "3"], "f", 0, select=False, curve=False)


def _seed_summary(
    name, seed, score, seconds, kind="AMD EPYC, AVX512_BF16, 2 cores", mode="score", recipe=None
):
    return {
        "name": name,
        "seed": seed,
        "mode": mode,
        "score": score,
        "seconds": seconds,
        "train_seconds": seconds - 2,
        "whitening_seconds": 1.0,
        "final_eval_seconds": 1.0,
        "machine_kind": kind,
        "recipe": recipe or f"kzoo train {name}",
        "command": f"kzoo train {name} --seed {seed}",
        "precision": "float32",
        "tools": {},
        "training_gflops_per_image": 0.1,
        "hardware": {},
        "curve": [],
    }


def test_time_to_accuracy_records_one_fastest_recipe_per_machine_kind(tmp_path):
    """fastest.json keeps, per machine kind, the fastest recipe whose mean over at least
    five seeds reaches the target (a faster one below it, or with fewer seeds, is not
    it), beside the baseline timed on the same kind; without any, the best mean."""
    tta = load_script(os.path.join(APPLICATIONS, "time_to_accuracy.py"))
    runs = []
    for seed in range(5):
        runs.append(_seed_summary("slow-good", seed, 0.945, 300.0))
        runs.append(_seed_summary("fast-short", seed, 0.935 + 0.002 * (seed == 0), 100.0))
        runs.append(_seed_summary("resnet20-f32", seed, 0.941, 900.0))
        runs.append(_seed_summary("intel", seed, 0.93, 200.0, kind="Intel, AMX, 2 cores"))
        runs.append(_seed_summary("picked-on-val", seed, 0.99, 50.0, mode="select"))
    runs += [_seed_summary("fast-few-seeds", s, 0.95, 60.0) for s in range(3)]
    record = tta.fastest(tta.group(runs), 0.94, 5.0, "resnet20-f32")
    amd = record["kinds"]["AMD EPYC, AVX512_BF16, 2 cores"]
    assert amd["name"] == "slow-good" and amd["reached"] and amd["within_budget"]
    assert amd["mean_minutes"] == 5.0 and amd["seeds"] == [0, 1, 2, 3, 4]
    assert amd["baseline"]["name"] == "resnet20-f32" and amd["baseline_minutes_over_record"] == 3.0
    intel = record["kinds"]["Intel, AMX, 2 cores"]
    assert intel["name"] == "intel" and not intel["reached"] and "baseline" not in intel
    assert "AMD EPYC" in tta.readme_paragraph(record) and "5.00 min" in tta.readme_paragraph(record)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{tta.README_BEGIN}\nold figures\n{tta.README_END}\nrest\n")
    tta.update_readme(str(readme), tta.readme_paragraph(record))
    assert readme.read_text() == (
        f"intro\n{tta.README_BEGIN}\n{tta.readme_paragraph(record)}{tta.README_END}\nrest\n"
    )
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="needs the lines"):
        tta.update_readme(str(readme), "x")
    mixed = [_seed_summary("x", 0, 0.9, 1.0), _seed_summary("x", 1, 0.9, 1.0, recipe="kzoo train other")]
    with pytest.raises(SystemExit, match="different recipes"):
        tta.group(mixed)


def test_time_to_accuracy_candidate(fmnist_subset_dir, tmp_path, capsys):
    """A candidate is a `kzoo train` command run once per seed: the test-scored one on all
    training images with its clock, the selection one on the validation split without
    reading the test set; both gathered by --report."""
    tta = load_script(os.path.join(APPLICATIONS, "time_to_accuracy.py"))
    out = str(tmp_path / "tta")
    train_args = ["smallnet_bn", "--epochs", "2", "--batch-size", "100", "--data-dir", fmnist_subset_dir]
    own = ["--out", out, "--seeds", "0,1", "--target", "0.25"]
    assert tta.main([*own, "--name", "tiny", "--curve", "--", *train_args, "--tta", "flip"]) == 0
    summary = json.load(open(os.path.join(out, "tiny", "seed1", "summary.json")))
    epochs = list(csv.DictReader(open(os.path.join(out, "tiny", "seed1", "run", "epochs.csv"))))
    assert "val_accuracy" not in epochs[0] and summary["mode"] == "score"  # all training images
    assert [p["test_top1"] for p in summary["curve"]] == [float(e["test_accuracy"]) for e in epochs]
    tests = [float(e["test_seconds"]) for e in epochs]
    assert summary["train_seconds"] == pytest.approx(sum(float(e["seconds"]) for e in epochs) - sum(tests))
    assert summary["final_eval_seconds"] == pytest.approx(tests[-1])
    assert summary["score"] == pytest.approx(float(epochs[-1]["test_accuracy"]), abs=1e-6)
    assert "--seed 1" in summary["command"] and "--tta flip" in summary["command"]
    pick = [*own, "--select", "--held-out", "200", "--name", "pick", "--seeds", "0"]
    assert tta.main([*pick, "--", *train_args, "--tta", "flip"]) == 0
    picked = json.load(open(os.path.join(out, "pick", "seed0", "summary.json")))
    metrics = json.load(open(os.path.join(out, "pick", "seed0", "run", "metrics.json")))
    assert picked["mode"] == "select" and metrics["test_top1"] is None
    assert picked["score"] == metrics["val_top1"] and "--no-test" in picked["command"]
    assert tta.main([*own, "--name", "tiny", "--curve", "--", *train_args, "--tta", "flip"]) == 0  # kept
    assert capsys.readouterr().out.count(": done") == 2
    assert tta.main([*own, "--name", "tiny", "--", *train_args, "--tta", "flip"]) == 2  # another recipe
    assert "seeds of another recipe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tta.main([*own, "--name", "../x", "--", *train_args])
    assert "--name must be a folder name" in capsys.readouterr().err
    assert tta.main(["--report", "--out", out, "--target", "0.25"]) == 0
    results = open(os.path.join(out, "results.md")).read()
    assert "| tiny | smallnet_bn |" in results and "| pick | smallnet_bn |" in results
    record = json.load(open(os.path.join(out, "fastest.json")))
    assert record["kinds"] == {}  # two seeds make no record
    assert tta.main(["--name", "bad", "--out", out, "--", "resnet20", "--batch-size", "0"]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert tta.main(["--name", "bad", "--out", out, "--", "resnet20", "--protocol", "he_cifar"]) == 2
    assert "--protocol" in capsys.readouterr().err
    assert tta.main(["--name", "bad", "--out", out]) == 2
    assert "after `--`" in capsys.readouterr().err


@pytest.mark.slow  # 32 s; make test-slow runs it
def test_precision_parity_study(fmnist_subset_dir, tmp_path, capsys):
    """Both precisions for each seed, alternating; a finished run is kept on a re-run;
    the summary pairs the seeds."""
    parity = load_script(os.path.join(APPLICATIONS, "precision_parity.py"))
    names = [(name, seed) for name, seed, _ in parity.plan(["mlp12"], [0, 1])]
    assert names == [
        ("mlp12-float32", 0),
        ("mlp12-bfloat16", 0),
        ("mlp12-bfloat16", 1),
        ("mlp12-float32", 1),
    ]
    with pytest.raises(ValueError, match="--seed"):
        parity.plan(["mlp12", "--seed=3"], [0, 1])
    with pytest.raises(ValueError, match="after `--`"):
        parity.plan(["--epochs", "1"], [0, 1])
    out = str(tmp_path / "parity")
    train_args = ["mlp12", "--epochs", "1", "--batch-size", "100", "--data-dir", fmnist_subset_dir]
    assert parity.main(["--seeds", "0,1", "--out", out, "--", *train_args]) == 0
    capsys.readouterr()
    result = json.load(open(os.path.join(out, "summary.json")))
    assert result["paired_seeds"] == [0, 1] and set(result["precisions"]) == {"float32", "bfloat16"}
    runs = {
        f"{n}-{seed}": json.load(open(os.path.join(out, n, seed, "summary.json")))
        for n in os.listdir(out)
        if os.path.isdir(os.path.join(out, n))
        for seed in os.listdir(os.path.join(out, n))
    }
    assert {r["precision"] for r in runs.values()} == {"float32", "mixed_bfloat16"} and len(runs) == 4
    f32 = [runs[f"mlp12-float32-seed{k}"]["score"] for k in (0, 1)]
    assert result["precisions"]["float32"]["final_top1"] == f32
    diffs = [runs[f"mlp12-bfloat16-seed{k}"]["score"] - f32[k] for k in (0, 1)]
    assert result["bfloat16_minus_float32"] == pytest.approx(diffs)
    assert "| float32 | 0, 1 |" in open(os.path.join(out, "results.md")).read()
    assert parity.main(["--seeds", "0,1", "--out", out, "--", *train_args]) == 0  # resumes: nothing left
    assert capsys.readouterr().err.count("done already, kept") == 4
    with pytest.raises(SystemExit):
        parity.main(["--seeds", "0", "--out", out, "--", *train_args])  # argparse: at least two seeds
    assert "at least two" in capsys.readouterr().err


def test_readme_time_to_accuracy_paragraph_is_the_records():
    """The README's time-to-accuracy figures are what --report makes of fastest.json, and
    fastest.json is what the committed seeds' summaries make (no figure typed by hand)."""
    tta = load_script(os.path.join(APPLICATIONS, "time_to_accuracy.py"))
    root = os.path.join(APPLICATIONS, "..")
    folder = os.path.join(root, "results", "time_to_accuracy")
    record = json.load(open(os.path.join(folder, "fastest.json")))
    again = tta.fastest(
        tta.group(tta.load_summaries(folder)), record["target"], record["budget_minutes"], "resnet20-f32"
    )
    assert again == record
    readme = open(os.path.join(root, "README.md")).read()
    assert f"{tta.README_BEGIN}\n{tta.readme_paragraph(record)}{tta.README_END}" in readme


def test_readme_lists_every_recipe_with_its_run_counts():
    # the recipe table lives in docs/reproduction.md once that page exists, in the README until then
    root = os.path.join(APPLICATIONS, "..")
    page = os.path.join("docs", "reproduction.md")
    page = page if os.path.exists(os.path.join(root, page)) else "README.md"
    readme = open(os.path.join(root, page)).read()
    for name, module in RECIPES.items():
        study = module.STUDY
        paper, cpu = len(reproduce.jobs(study, "paper")), len(reproduce.jobs(study, "cpu"))
        prefix = f"| `{name}.py` |"
        row = next((line for line in readme.splitlines() if line.startswith(prefix)), None)
        assert row is not None, f"{page} lacks {name}.py"
        assert row.rstrip(" |").endswith(f"| {paper} | {cpu}"), row
