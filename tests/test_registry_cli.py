import subprocess
import sys

import pytest

import kzoo
from kzoo.models import registry
from kzoo.models.registry import natural_key, register_model


def test_list_models_wildcards():
    names = kzoo.list_models()
    assert names == sorted(names, key=natural_key) and len(names) == 44
    assert kzoo.list_models("resnet1*") == [
        "resnet101",
        "resnet101v2",
        "resnet110",
        "resnet152",
        "resnet152v2",
        "resnet164",
        "resnet1001",
        "resnet1202",
    ]
    assert kzoo.list_models("*V2") == ["resnet50v2", "resnet101v2", "resnet152v2", "resnet200v2"]
    assert kzoo.list_models(["resnet20", "resnet5?"]) == ["resnet20", "resnet50", "resnet56"]
    assert kzoo.list_models("*", family="cifar_preact_resnet") == [
        "preact_bottleneck56",
        "preact_bottleneck110",
        "preact_resnet62",
        "preact_resnet110",
        "preact_resnet164",
        "resnet164",
        "resnet1001",
    ]
    assert kzoo.list_models("nothing*") == []


def test_list_models_sorts_naturally():
    assert kzoo.list_models("resnet*", family="cifar_resnet") == [
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
        "resnet110",
        "resnet1202",
    ]
    assert kzoo.list_models(["resnet101", "resnet1001", "resnet56", "resnet20"]) == [
        "resnet20",
        "resnet56",
        "resnet101",
        "resnet1001",
    ]
    assert kzoo.list_models("resnext29*") == ["resnext29_8x64d", "resnext29_16x64d"]
    assert sorted(["b10", "a2", "b9", "a10"], key=natural_key) == ["a2", "a10", "b9", "b10"]


def test_list_models_exclude():
    assert kzoo.list_models("resnet5*", exclude="*v2") == ["resnet50", "resnet56"]
    assert kzoo.list_models("resnet5*", exclude="*V2") == ["resnet50", "resnet56"]  # case-insensitive
    assert kzoo.list_models("resnet1*", exclude=["*v2", "resnet1???"]) == [
        "resnet101",
        "resnet110",
        "resnet152",
        "resnet164",
    ]
    assert kzoo.list_models("wrn*", exclude=[]) == kzoo.list_models("wrn*")
    assert kzoo.list_models(exclude="*") == []
    every = set(kzoo.list_models())
    assert set(kzoo.list_models(exclude=["resnet*", "wrn*"])) == {
        n for n in every if not n.startswith(("resnet", "wrn"))
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pattern": 3}, "`pattern` must be a string or a list of strings"),
        ({"pattern": ["resnet*", None]}, "`pattern`"),
        ({"exclude": 5}, "`exclude` must be a string or a list of strings"),
        ({"exclude": [b"resnet*"]}, "`exclude`"),
        ({"family": 1}, "`family` must be None or a string"),
    ],
)
def test_list_models_argument_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        kzoo.list_models(**kwargs)


def test_every_builder_is_a_real_named_function():
    assert kzoo.ResNet20.__name__ == kzoo.ResNet20.__qualname__ == "ResNet20"
    assert kzoo.ResNet20.__module__ == "kzoo.models.cifar_resnet"
    assert kzoo.ResNet20.__doc__.startswith("ResNet-20 for CIFAR (He et al. 2016)")
    assert kzoo.WideResNet16_8.__name__ == "WideResNet16_8" and kzoo.DFNMR1.__name__ == "DFNMR1"
    for name in kzoo.list_models():
        builder = kzoo.model_info(name).builder
        assert getattr(kzoo, builder.__name__) is builder, name
        assert builder.__qualname__ == builder.__name__ and builder.__doc__, name
        assert builder.__module__.startswith("kzoo.models."), name
    assert kzoo.model_info("preact_resnet62").builder is kzoo.CifarResNet
    assert kzoo.model_info("plain84").builder is kzoo.PlainNet84
    assert kzoo.model_info("plain84_ensemble").builder is kzoo.PlainNet84
    assert set(kzoo.models.__all__) >= {"ResNet20", "ResNet50V2", "CifarResNet", "ModelInfo", "list_models"}
    assert kzoo.models.register_model is register_model


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


FACTS = {
    "family": "tests",
    "paper": "-",
    "published_params": None,
    "input_shape": (8, 8, 1),
    "classes": 2,
    "dataset": "-",
}


def test_register_model_decorator_names_the_model_after_the_function(scratch_registry):
    @register_model(**FACTS)
    def TinyNet(**kwargs):
        """A test builder."""
        return kwargs

    assert TinyNet.__name__ == "TinyNet" and TinyNet(a=1) == {"a": 1}  # returned unchanged
    info = kzoo.model_info("tinynet")
    assert info.name == "tinynet" and info.builder is TinyNet and info.family == "tests"
    assert "tinynet" in kzoo.list_models("tiny*")

    @register_model(name="tiny_wide", kwargs={"width": 2}, **FACTS)
    @register_model(name="tiny_plain", **FACTS)
    def tiny(**kwargs):
        return kwargs

    assert kzoo.create_model("tiny_wide", depth=3) == {"width": 2, "depth": 3}
    assert kzoo.model_info("tiny_plain").builder is tiny and "tiny" not in kzoo.list_models()
    # The one-call form registers at once and returns the builder.
    assert register_model("tiny_direct", tiny, **FACTS) is tiny
    assert kzoo.model_info("TINY_DIRECT").builder is tiny


def test_register_model_errors(scratch_registry):
    def ResNet20():
        pass

    with pytest.raises(ValueError, match="'ResNet20' is already registered"):
        register_model(**FACTS)(ResNet20)
    with pytest.raises(TypeError, match="needs the model's facts"):
        register_model(ResNet20)
    with pytest.raises(TypeError, match="`name` must be None or a non-empty string"):
        register_model(name="", **FACTS)
    with pytest.raises(TypeError, match="`builder` must be callable"):
        register_model(name="x", **FACTS)(3)
    with pytest.raises(TypeError, match="family"):
        register_model(name="no_facts")(ResNet20)
    assert "no_facts" not in kzoo.list_models()


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
    return subprocess.run(
        [sys.executable, "-m", "kzoo_command", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_list_and_summary():
    out = _kzoo("list", "resnet1*")
    assert out.returncode == 0, out.stderr
    assert "resnet164" in out.stdout and "1.70M" in out.stdout and "Identity Mappings" in out.stdout
    out = _kzoo(
        "summary", "resnet20", "--erase", "last", "--proportion", "0.5", "--brief", "--input-shape", "28,28,1"
    )
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
