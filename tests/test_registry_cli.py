import subprocess
import sys

import pytest

import kzoo


def test_list_models_wildcards():
    names = kzoo.list_models()
    assert names == sorted(names) and len(names) == 43
    assert kzoo.list_models("resnet1*") == sorted([
        "resnet101", "resnet101v2", "resnet110", "resnet1202", "resnet152", "resnet152v2",
        "resnet164", "resnet1001"])
    assert kzoo.list_models("*V2") == ["resnet101v2", "resnet152v2", "resnet200v2", "resnet50v2"]
    assert kzoo.list_models(["resnet20", "resnet5?"]) == ["resnet20", "resnet50", "resnet56"]
    assert kzoo.list_models("*", family="cifar_preact_resnet") == [
        "preact_bottleneck110", "preact_bottleneck56", "preact_resnet110", "preact_resnet164",
        "preact_resnet62", "resnet1001", "resnet164"]
    assert kzoo.list_models("nothing*") == []


def test_model_info_metadata():
    info = kzoo.model_info("ResNet164")
    assert info.input_shape == (32, 32, 3) and info.classes == 10
    assert info.dataset == "CIFAR-10" and "Identity Mappings" in info.paper
    assert info.published_params == 1.7e6
    assert kzoo.model_info("resnet50").input_shape == (224, 224, 3)
    for name in kzoo.list_models():
        i = kzoo.model_info(name)
        assert i.paper and i.dataset and i.family and i.expected_params


def test_create_model_passes_options():
    model = kzoo.create_model("preact_resnet62", erase="first", input_shape=(16, 16, 3))
    assert model.name == "preact_resnet62"
    assert not any(n.endswith("_first_relu") for n in kzoo.activation_layers(model))
    with pytest.raises(ValueError, match="Did you mean"):
        kzoo.create_model("resnet21")
    with pytest.raises(TypeError, match="name"):
        kzoo.create_model(20)


def _kzoo(*args):
    return subprocess.run([sys.executable, "-m", "kzoo.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_list_and_summary():
    out = _kzoo("list", "resnet1*")
    assert out.returncode == 0, out.stderr
    assert "resnet164" in out.stdout and "1.70M" in out.stdout and "Identity Mappings" in out.stdout
    out = _kzoo("summary", "resnet20", "--erase", "last", "--proportion", "0.5", "--brief",
                "--input-shape", "28,28,1")
    assert out.returncode == 0, out.stderr
    assert "trainable 269,434" in out.stdout  # 1 input channel: 16*9*2 fewer stem weights
    assert "activation layers kept: 14" in out.stdout  # stem + 9 first + last of blocks 2, 4, 6, 8


def test_cli_block_options():
    out = _kzoo("summary", "wrn16_8", "--dropout-rate", "0.3", "--stochastic-depth", "0.5", "--brief")
    assert out.returncode == 0, out.stderr
    assert "trainable 10,961,370" in out.stdout
    out = _kzoo("summary", "resnet50", "--dropout-rate", "0.3", "--brief")
    assert out.returncode == 2 and "dropout_rate" in out.stderr and "Traceback" not in out.stderr
    out = _kzoo("summary", "dfn_mr1", "--cross-type", "type3", "--brief")
    assert out.returncode == 0, out.stderr
    assert "trainable 1,710,426" in out.stdout and "activation layers kept: 55" in out.stdout
    out = _kzoo("summary", "dfn_mr1", "--erase", "line1_last+line2_first", "--proportion", "1,2", "--brief")
    assert "activation layers kept: 105" in out.stdout, out.stderr
    out = _kzoo("summary", "plain38", "--ensemble", "--erase", "last", "--proportion", "0.5", "--brief")
    assert "activation layers kept: 19" in out.stdout, out.stderr


def test_cli_errors_are_clear():
    out = _kzoo("summary", "resnet20", "--erase", "third")
    assert out.returncode == 2 and "kzoo: error: `erase`='third'" in out.stderr
    assert "Traceback" not in out.stderr
    out = _kzoo("summary", "resnet20", "--proportion", "abc")
    assert out.returncode == 2 and "proportion" in out.stderr
