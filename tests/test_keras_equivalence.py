"""With defaults, kzoo's ImageNet ResNets are keras.applications' models layer for layer."""

import keras
import numpy as np
import pytest

import kzoo

PAIRS = [
    (kzoo.ResNet50, keras.applications.ResNet50),
    (kzoo.ResNet101, keras.applications.ResNet101),
    (kzoo.ResNet152, keras.applications.ResNet152),
    (kzoo.ResNet50V2, keras.applications.ResNet50V2),
    (kzoo.ResNet101V2, keras.applications.ResNet101V2),
    (kzoo.ResNet152V2, keras.applications.ResNet152V2),
]


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=lambda f: getattr(f, "__name__", ""))
def test_layer_for_layer_identical(ours, theirs):
    shape = (64, 64, 3)
    ref = theirs(weights=None, input_shape=shape)
    model = ours(input_shape=shape)
    assert model.count_params() == ref.count_params()
    assert len(model.layers) == len(ref.layers)
    for a, b in zip(model.layers, ref.layers):
        assert type(a) is type(b), (a.name, b.name)
        if not (isinstance(a, keras.layers.InputLayer) or b.name.startswith("max_pooling2d")):
            assert a.name == b.name
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights], a.name
        if isinstance(a, keras.layers.Conv2D):
            assert (a.strides, a.padding, a.use_bias) == (b.strides, b.padding, b.use_bias), a.name
        if isinstance(a, keras.layers.Activation):
            assert a.activation is b.activation
    model.set_weights(ref.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2,) + shape).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
