"""Test-time augmentation: the averaged views equal a by-hand average, the result is a
probability distribution (logits models included), flips are refused for datasets not
trained with them, and `evaluate` scores with it."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo import data
from kzoo.training.tta import TTA_CHOICES, _outputs_probabilities, check_tta, tta_model, view_count, views


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return kzoo.create_model("resnet20", input_shape=(12, 12, 1), classes=5)


def _x(n=3, shape=(12, 12, 1)):
    return np.random.default_rng(1).uniform(0, 1, (n, *shape)).astype("float32")


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _shift(x, d):
    """x moved by (d, d) pixels with the border reflected, by hand."""
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    h, w = x.shape[1:3]
    return padded[:, 1 - d : 1 - d + h, 1 - d : 1 - d + w]


def test_flip_is_the_mean_of_the_image_and_its_mirror(model):
    x = _x()
    expected = (_predict(model, x) + _predict(model, x[:, :, ::-1])) / 2
    out = _predict(tta_model(model, "flip"), x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_flip_translate_is_the_mean_of_six_views(model):
    x = _x()
    flipped = x[:, :, ::-1]
    views = [x, flipped, _shift(x, -1), _shift(x, 1), _shift(flipped, -1), _shift(flipped, 1)]
    assert not np.allclose(_shift(x, 1), x)
    np.testing.assert_array_equal(_shift(x, 1)[:, 1:, 1:], x[:, :-1, :-1])  # down-right by one
    expected = np.mean([_predict(model, v) for v in views], axis=0)
    np.testing.assert_allclose(
        _predict(tta_model(model, "flip_translate"), x), expected, rtol=1e-5, atol=1e-6
    )


def test_multicrop_weights_the_six_views_as_airbench(model):
    """The image and its mirror count 1/4 each, the four shifted views 1/8 each."""
    x = _x()
    flipped = x[:, :, ::-1]
    shifted = [_shift(x, -1), _shift(x, 1), _shift(flipped, -1), _shift(flipped, 1)]
    expected = 0.25 * (_predict(model, x) + _predict(model, flipped)) + 0.125 * sum(
        _predict(model, v) for v in shifted
    )
    out = _predict(tta_model(model, "multicrop"), x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert view_count("multicrop") == 6


def test_a_flip_averaged_score_does_not_see_the_mirror(model):
    x = _x()
    scorer = tta_model(model, "flip")
    np.testing.assert_allclose(_predict(scorer, x), _predict(scorer, x[:, :, ::-1]), rtol=1e-5, atol=1e-6)


def test_the_tta_model_shares_the_weights_and_is_named(model):
    scorer = tta_model(model, "flip_translate")
    assert scorer.name == f"{model.name}_tta_flip_translate"
    assert scorer.input_shape == model.input_shape and scorer.output_shape == model.output_shape
    assert {id(w) for w in scorer.weights} == {id(w) for w in model.weights}
    with pytest.raises(ValueError, match="`tta`"):
        tta_model(model, "mirror")


def test_a_loaded_model_is_seen_to_output_probabilities(model, tmp_path):
    from kzoo.saving import load_model

    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = load_model(path)
    assert _outputs_probabilities(loaded)  # else a softmax of the probabilities would be averaged
    x = _x()
    expected = (_predict(model, x) + _predict(model, x[:, :, ::-1])) / 2
    np.testing.assert_allclose(_predict(tta_model(loaded, "flip"), x), expected, rtol=1e-5, atol=1e-6)


def test_mixed_precision_gives_float32_probabilities():
    keras.config.set_dtype_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    for activation in ("softmax", None):
        net = kzoo.create_model(
            "resnet20", input_shape=(12, 12, 1), classes=5, classifier_activation=activation
        )
        out = tta_model(net, "flip_translate")(_x(), training=False)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out).sum(axis=1), 1.0, rtol=1e-5)


def test_logits_models_average_probabilities():
    keras.utils.set_random_seed(0)
    logits = kzoo.create_model("resnet20", input_shape=(12, 12, 1), classes=5, classifier_activation=None)
    x = _x()
    assert not _outputs_probabilities(logits)
    out = _predict(tta_model(logits, "flip_translate"), x)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert (out > 0).all()
    expected = (
        keras.ops.softmax(_predict(logits, x)) + keras.ops.softmax(_predict(logits, x[:, :, ::-1]))
    ) / 2
    np.testing.assert_allclose(_predict(tta_model(logits, "flip"), x), expected, rtol=1e-5, atol=1e-6)


def test_check_tta():
    fashion, mnist = data.dataset_info("fashion_mnist"), data.dataset_info("mnist")
    assert check_tta(None, fashion) is None and check_tta("flip", fashion) == "flip"
    with pytest.raises(ValueError, match="`tta`.*'flip_translate'"):
        check_tta("flip_translat", fashion)
    with pytest.raises(TypeError, match="`tta`"):
        check_tta(True, fashion)
    with pytest.raises(ValueError, match="`tta`.*'mnist' is not trained with flips"):
        check_tta("flip", mnist)


def test_evaluate_with_tta(fmnist_like_dir, tmp_path):
    keras.utils.set_random_seed(0)
    net = kzoo.create_model("resnet20", input_shape=(28, 28, 1))
    path = str(tmp_path / "m.keras")
    net.save(path)
    plain = kzoo.evaluate(path, "fashion_mnist", data_dir=fmnist_like_dir)
    flipped = kzoo.evaluate(path, "fashion_mnist", data_dir=fmnist_like_dir, tta="flip")
    assert plain["tta"] is None and flipped["tta"] == "flip"
    assert flipped["test_loss"] != pytest.approx(plain["test_loss"], rel=1e-6)
    assert 0 <= flipped["test_top1"] <= flipped["test_top5"] <= 1 and flipped["examples"] == plain["examples"]
    with pytest.raises(ValueError, match="`tta`"):  # refused before any data is read
        kzoo.evaluate(path, "fashion_mnist", data_dir=str(tmp_path / "nowhere"), tta="flips")
    with pytest.raises(ValueError, match="`tta`.*mnist"):
        kzoo.evaluate(path, "mnist", data_dir=str(tmp_path / "nowhere"), tta="flip")


@pytest.mark.parametrize("tta", [None, *TTA_CHOICES])
def test_view_count_is_the_number_of_views(tta):
    x = keras.ops.zeros((1, 4, 4, 1))
    assert view_count(tta) == (1 if tta is None else len(views(x, tta)))
