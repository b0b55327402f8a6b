"""Placed keras.applications models (kzoo.place, then kzoo.adapt's head and input: the
keras:NAME variants of the model harness, which trains and round-trips them) export to
every format, each file run by its own runtime against the Keras model."""

import pytest
from test_model_harness import VARIANTS

import kzoo

PLACED = {case: spec for case, spec in VARIANTS.items() if spec[0].startswith("keras:")}
RUNTIMES = {"saved_model": "tensorflow", "onnx": "onnxruntime", "litert": "ai-edge-litert"}


@pytest.mark.parametrize("case", list(PLACED))
def test_a_placed_keras_application_exports_to_every_format(case, tmp_path):
    name, options = PLACED[case]
    model = kzoo.create_model(name, input_shape=(32, 32, 3), classes=10, **options)
    for fmt, runtime in RUNTIMES.items():
        result = kzoo.export(model, str(tmp_path), name=f"{case}_{fmt}", dataset="cifar10", format=fmt)
        check = result.card["verification"]
        assert check["runtime"].startswith(runtime), check
        assert check["top1_agreement"] == 1.0 and check["max_abs_diff_probabilities"] <= check["tolerance"], (
            check
        )
