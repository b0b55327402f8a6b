"""With defaults, kzoo's ImageNet ResNets are keras.applications' models layer for layer
(their batch normalisation is kzoo's subclass of keras' layer, which runs TensorFlow's
fused kernel: same weights, results equal to float32 rounding)."""

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
        if isinstance(b, keras.layers.BatchNormalization):
            assert type(a) is kzoo.layers.BatchNormalization, a.name
            assert a.get_config() == b.get_config(), a.name
        else:
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
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ours, theirs", [PAIRS[0], PAIRS[3]], ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("include_top", [True, False])
def test_keras_legacy_weight_files_load(ours, theirs, include_top, tmp_path):
    """keras.applications' ImageNet files are legacy Keras-2 HDF5 weights; one written by
    keras' own legacy writer from the keras model loads into kzoo's builder."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    shape = (64, 64, 3)
    ref = theirs(weights=None, input_shape=shape, include_top=include_top)
    path = tmp_path / "weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, ref)
    model = ours(weights=str(path), input_shape=shape, include_top=include_top)
    x = np.random.default_rng(1).uniform(0, 255, (2,) + shape).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ours, theirs", [PAIRS[0], PAIRS[3]], ids=lambda f: getattr(f, "__name__", ""))
def test_stochastic_depth_keeps_keras_layers_and_weights(ours, theirs):
    """stochastic_depth=None is the default and builds keras' graph (above); with it, only
    the additions change class, keeping keras' names, so keras' weights still load."""
    import inspect

    assert inspect.signature(ours).parameters["stochastic_depth"].default is None
    shape = (64, 64, 3)
    ref = theirs(weights=None, input_shape=shape)
    model = ours(input_shape=shape, stochastic_depth=0.5)
    assert len(model.layers) == len(ref.layers)
    assert all(
        a.name == b.name
        for a, b in zip(model.layers[1:], ref.layers[1:])
        if not b.name.startswith("max_pooling2d")
    )
    changed = [
        (type(a).__name__, type(b).__name__)
        for a, b in zip(model.layers, ref.layers)
        if type(a) is not type(b) and not isinstance(a, kzoo.layers.BatchNormalization)
    ]
    assert changed == [("StochasticDepth", "Add")] * 16
    model.set_weights(ref.get_weights())
