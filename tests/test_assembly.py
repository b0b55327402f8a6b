"""The one assembly path: every builder goes through kzoo.models.assembly, which counts
blocks over the whole network, and CONTRIBUTING's example is the code kzoo runs."""

import ast
import os
import re

import pytest

import kzoo
from kzoo.models import assembly

MODELS = os.path.dirname(kzoo.models.__file__)
REPO = os.path.dirname(os.path.dirname(kzoo.__file__))


def _calls(path):
    """(function called, as written) of every call in the module at ``path``."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_positions_count_blocks_over_the_network():
    got = list(assembly.positions((2, 1, 3)))
    assert [p.number for p in got] == [1, 2, 3, 4, 5, 6]
    assert [(p.stage, p.block) for p in got] == [(1, 1), (1, 2), (2, 1), (3, 1), (3, 2), (3, 3)]
    assert [p.name for p in got][3] == "stage3_block1"
    assert [p.first for p in got] == [True, False, True, True, False, False]
    assert [p.last for p in got] == [False, True, True, False, False, True]
    assert {p.total for p in got} == {6}


def test_only_assembly_makes_inputs_and_models():
    """No builder writes the skeleton out again: the input, the placement's binding and
    the model are made in assembly.py alone."""
    skeleton = {"common.resolve_input", "common.finish", "resolve_input", "finish"}
    offenders = {}
    for root, _, files in os.walk(MODELS):
        for entry in files:
            path = os.path.join(root, entry)
            if entry.endswith(".py") and entry != "assembly.py":
                found = {c for c in _calls(path) if c in skeleton or c.endswith(".bind")}
                found.discard("checks.bind")  # argument binding, not the placement's
                if found:
                    offenders[os.path.relpath(path, MODELS)] = sorted(found)
    assert not offenders


@pytest.mark.parametrize("name", ["inception_v2_cifar", "resnet20", "resnet50", "dfn_mr1", "mlp12"])
def test_builders_assemble(name, monkeypatch):
    calls = []
    real = assembly.assemble
    monkeypatch.setattr(assembly, "assemble", lambda **kw: calls.append(kw) or real(**kw))
    info = kzoo.model_info(name)
    shape = info.input_shape if name == "mlp12" else (None, None, info.input_shape[-1])
    model = kzoo.create_model(name, include_top=False, input_shape=shape, pooling=None)
    assert len(calls) == 1 and calls[0]["name"] == model.name


def test_contributing_example_is_inception_py():
    """The CONTRIBUTING recipe shows inception.py's assembly: every keyword it passes to
    assemble and to the block is one inception.py passes."""
    with open(os.path.join(REPO, "CONTRIBUTING.md")) as f:
        text = f.read()
    example = text[text.index("## Adding an architecture") : text.index("## Adding a dataset")]
    code = re.search(r"```python\n(.*?assembly\.assemble.*?)```", example, re.S).group(1)
    with open(os.path.join(MODELS, "inception.py")) as f:
        source = f.read()
    for line in code.splitlines():
        for keyword in re.findall(r"(\w+)=", line):
            assert re.search(rf"\b{keyword}=", source), keyword
    for name in ("WIDTHS = (16, 32, 64)", "def _module(x, position, act):", "block=_module"):
        assert name in code and name in source
