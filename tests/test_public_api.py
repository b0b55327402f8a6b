"""kzoo's public surface is its ``__all__``: every name in it exists, nothing else public
leaks in (no helper module such as ``kzoo.common``), and the version has one source."""

import os
import re
import types

import kzoo
import kzoo.models


def test_all_names_exist_and_nothing_else_is_public():
    assert all(hasattr(kzoo, name) for name in kzoo.__all__)
    assert len(set(kzoo.__all__)) == len(kzoo.__all__)
    public = {name for name in dir(kzoo) if not name.startswith("_")}
    # A kzoo module another test imported (kzoo.cli, kzoo.reproduce) becomes an attribute;
    # nothing else outside __all__ may be public.
    extra = public - set(kzoo.__all__)
    assert all(isinstance(getattr(kzoo, n), types.ModuleType) for n in extra), extra
    assert all(getattr(kzoo, n).__name__ == f"kzoo.{n}" for n in extra), extra
    for leaked in ("common", "residual", "registry", "exporter", "rest", "cifar_resnet"):
        assert not hasattr(kzoo, leaked), leaked


def test_every_builder_of_the_models_package_is_top_level():
    assert set(kzoo.models.__all__) <= set(kzoo.__all__)
    for name in kzoo.list_models():
        builder = kzoo.model_info(name).builder
        if builder.__name__.lower() == name:  # a named builder, e.g. kzoo.ResNet164
            assert getattr(kzoo, builder.__name__) is builder


def test_the_version_has_one_source():
    text = open(kzoo._version.__file__).read()
    assert re.search(r'__version__ = "\d+\.\d+\.\d+"', text)
    assert kzoo.__version__ == kzoo._version.__version__
    setup = open(os.path.join(os.path.dirname(os.path.dirname(kzoo.__file__)), "setup.py")).read()
    assert "0.1.0" not in setup and "kzoo/_version.py" in setup


def test_pipeline_functions_stay_functions_after_their_modules_load():
    """A submodule named like the function it holds would replace the function on its
    package once imported (``kzoo.training.evaluate`` was one): the modules' names differ."""
    import importlib

    import kzoo.training

    for module in ("kzoo.training.evaluation", "kzoo.training.trainer", "kzoo.serving.export"):
        importlib.import_module(module)
    assert callable(kzoo.evaluate) and callable(kzoo.train) and callable(kzoo.export)
    assert callable(kzoo.training.evaluate) and callable(kzoo.training.train)
