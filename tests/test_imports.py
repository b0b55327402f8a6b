"""kzoo's import graph: no cycles among its modules (imports inside functions and
``importlib`` calls by name counted: no hidden arrows), the models never reach the
training code, and every subpackage imports alone in a fresh process."""

import ast
import json
import os
import subprocess
import sys

import pytest

import kzoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(kzoo.__file__)))
SUBPACKAGES = ("models", "data", "training", "serving", "tuning", "reproduce", "transform")


def _modules():
    """{dotted name: path} of every module of the package (a package as its name)."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "kzoo")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[name.removesuffix(".__init__")] = path
    return found


def _imported(node, module, is_package):
    """The dotted names an import node (or an ``importlib.import_module("...")`` call) names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = (module if is_package else module.rpartition(".")[0]).split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
        return [f"{base}.{a.name}" for a in node.names] + [base]
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def _graph():
    """{module: the kzoo modules it imports anywhere in its code}. ``from a import b``
    counts as importing ``a.b`` when that is a module, else ``a``; a module's parent
    packages, which Python imports first, are not counted (every module would then
    reach ``kzoo/__init__`` and everything it exports)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        is_package = path.endswith("__init__.py")
        edges = set()
        for node in ast.walk(tree):
            names = _imported(node, name, is_package)
            if isinstance(node, ast.ImportFrom):
                *members, base = names
                modules_named = [m for m in members if m in modules]
                names = modules_named if len(modules_named) == len(members) else [*modules_named, base]
            edges.update(n for n in names if n in modules and n != name)
        graph[name] = edges
    return graph


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan's)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _reach(graph, start):
    seen, todo = set(), list(start)
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(graph[v])
    return seen


def test_the_graph_is_read_right():
    """The reader finds the arrows it must (so that an empty cycle list means something)."""
    graph = _graph()
    assert "kzoo.models.pretrained" in graph["kzoo.models.registry"]  # from kzoo.models import pretrained
    assert "kzoo.training.run_dir" in graph["kzoo.training.callbacks"]  # from kzoo.training import run_dir
    assert "kzoo.training.losses" in graph["kzoo.saving"]  # inside load_model
    assert "kzoo.models" in graph["kzoo"]  # the package's own exports
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_models_never_reach_the_training_code():
    graph = _graph()
    models = [m for m in graph if m == "kzoo.models" or m.startswith("kzoo.models.")]
    reached = sorted(m for m in _reach(graph, models) if m.startswith(("kzoo.training", "kzoo.data")))
    assert reached == []


CHECK = """
import json, sys
import kzoo.{sub}
report = {{"training": "kzoo.training" in sys.modules}}
if "{sub}" == "models":  # the smallest model of each family built, and one with its weights
    import kzoo
    first = {{}}
    for name in sorted(kzoo.list_models(), key=lambda n: kzoo.model_info(n).expected_params or 0):
        first.setdefault(kzoo.model_info(name).family, name)
    for name in first.values():
        kzoo.create_model(name, weights=None)
    kzoo.create_model("resnet20", weights="fashion_mnist")
    report["training"] = any(m.startswith("kzoo.training") for m in sys.modules)
print(json.dumps(report))
"""


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_each_subpackage_imports_alone(sub):
    """``import kzoo.<sub>`` in a fresh process; after the models' (and the placement's)
    import and builds of every family, no module of kzoo.training is loaded."""
    run = subprocess.run(
        [sys.executable, "-c", CHECK.format(sub=sub)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if sub in ("models", "transform"):
        assert report["training"] is False


NO_TENSORFLOW = """
import json, sys
import kzoo.data
import kzoo.training
from kzoo.data import dataset_info, steps_per_epoch
from kzoo.data.idx import read_arrays, read_idx
from kzoo.training import WarmupCosine, apply_weight_decay, markdown_table
from kzoo.training.schedules import OneCycle
try:
    kzoo.data.load
    refused = None
except ImportError as error:
    refused = str(error)
print(json.dumps({"tensorflow": sys.modules.get("tensorflow") is not None, "refused": refused}))
"""


def test_the_numpy_and_keras_parts_import_without_tensorflow(block_tensorflow_source):
    """What benchmarks/gpu_jax.py uses on a JAX machine (the IDX reader, the registry, the
    schedules, the weight decay) imports with TensorFlow blocked; the pipeline's names are
    refused with kzoo's pip hint."""
    env = dict(os.environ, KERAS_BACKEND="jax")
    run = subprocess.run(
        [sys.executable, "-c", block_tensorflow_source + NO_TENSORFLOW],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] is False
    assert report["refused"].startswith("kzoo.data needs tensorflow"), report["refused"]


def test_every_public_name_of_the_data_package_is_reachable():
    """kzoo.data's TensorFlow parts load on first use; each name of ``__all__`` is there, and
    ``at_hand`` stays the function even after its module is imported by name."""
    import importlib

    import kzoo.data

    assert all(hasattr(kzoo.data, name) for name in kzoo.data.__all__)
    assert set(kzoo.data.__all__) <= set(dir(kzoo.data))
    importlib.import_module("kzoo.data.local_arrays")
    assert callable(kzoo.data.at_hand) and kzoo.data.at_hand.__module__ == "kzoo.data.local_arrays"
