"""EraseReLU's Inception-V2 for CIFAR, DFN-MR with the cross-proportional blocks, and
the proportional paper's plain nets (paired, 2:1, ensemble): hand-counted parameters,
placement counts for every option, and errors."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.models.merge_run import split_depth


def _c(cin, cout, k):  # conv without bias + BN's gamma and beta
    return k * k * cin * cout + 2 * cout


def test_inception_hand_count_and_layout():
    def module(cin, w):
        return (
            _c(cin, w, 1)
            + _c(cin, w, 1)
            + _c(w, 8 * w, 3)
            + _c(cin, w, 1)
            + _c(w, 2 * w, 3)
            + _c(2 * w, 2 * w, 3)
            + _c(cin, w, 1)
        )

    total, cin = _c(3, 64, 3), 64
    for w in (16, 32, 64):
        for _ in range(10):
            total, cin = total + module(cin, w), 12 * w
    total += cin * 10 + 10
    assert kzoo.model_info("inception_v2_cifar").expected_params == total == 9_268_554
    model = kzoo.CifarInceptionV2()
    assert kzoo.trainable_params(model) == total
    assert model.get_layer("stage1_block1_concat").output.shape[-1] == 192
    assert model.get_layer("stage3_block10_concat").output.shape[1:] == (8, 8, 768)
    assert model.get_layer("stage2_block1_3x3_conv").strides == (2, 2)


def _modules_with(names, suffix):
    return {n.split("_")[0] + "_" + n.split("_")[1] for n in names if n.endswith(suffix)}


def test_inception_placement():
    full = kzoo.activation_layers(kzoo.CifarInceptionV2())
    assert len(full) == 1 + 30 * 7  # stem + 7 conv-BN-ReLU units per module
    erased = kzoo.activation_layers(kzoo.CifarInceptionV2(erase="last"))
    # 50% by default: modules 1, 3, ..., 29 lose the last ReLU of all four branches.
    assert len(full) - len(erased) == 15 * 4
    assert "stage1_block1_1x1_relu" not in erased and "stage1_block1_3x3_reduce_relu" in erased
    assert "stage1_block2_pool_proj_relu" in erased and "stage1_block3_dbl_3x3b_relu" not in erased
    all_last = kzoo.activation_layers(kzoo.CifarInceptionV2(erase="last", proportion=1.0))
    assert len(full) - len(all_last) == 30 * 4
    first = kzoo.activation_layers(kzoo.CifarInceptionV2(erase="first", proportion=1.0))
    assert not any("reduce_relu" in n for n in first) and len(full) - len(first) == 60
    middle = kzoo.activation_layers(kzoo.CifarInceptionV2(erase="middle", proportion=[2]))
    assert set(full) - set(middle) == {"stage1_block2_dbl_3x3a_relu"}


def test_dfn_mr_hand_count():
    def dfn(depth, w, classes=10):
        blocks = split_depth(depth, 4)
        total, cin = _c(3, 16 * w, 3), 16 * w
        for base, n in zip((16, 32, 64), blocks):
            out = base * w
            for _ in range(n):
                lines = 2 * (_c(cin, out, 3) + _c(out, out, 3))
                if cin != out:
                    lines += 2 * _c(cin, out, 1)
                total, cin = total + lines, out
        return total + cin * classes + classes

    assert split_depth(110, 4) == (9, 9, 9) and split_depth(62, 4) == (5, 5, 5)
    for name, depth, width in (("dfn_mr1", 110, 1), ("dfn_mr2", 62, 4)):
        assert kzoo.model_info(name).expected_params == dfn(depth, width), name
    assert kzoo.trainable_params(kzoo.DFNMR(depth=26)) == dfn(26, 1)


def test_dfn_mr_layout():
    model = kzoo.DFNMR(depth=26, input_shape=(16, 16, 3))
    names = {layer.name for layer in model.layers}
    assert {
        "stage2_block1_line1_shortcut_conv",
        "stage2_block1_line2_shortcut_conv",
        "stage1_block1_merge",
        "lines_add",
    } <= names
    assert "stage1_block1_line1_shortcut_conv" not in names  # the stem is already 16 wide
    assert model.get_layer("stage3_block1_line2_conv1").strides == (2, 2)
    assert isinstance(model.get_layer("stage1_block2_merge"), keras.layers.Average)


def _dropped(**kwargs):
    full = set(kzoo.activation_layers(kzoo.DFNMR(depth=38)))
    return sorted(full - set(kzoo.activation_layers(kzoo.DFNMR(depth=38, **kwargs))))


def _block_slots(names):
    """{block number over the net: set of erased slots}, for a 3-block-per-stage net."""
    out = {}
    for n in names:
        stage, block = int(n[5]), int(n.split("_")[1][5:])
        slot = "_".join(n.split("_")[2:4])
        out.setdefault((stage - 1) * 3 + block, set()).add(slot)
    return out


def test_cross_proportional_types():
    assert len(kzoo.activation_layers(kzoo.DFNMR(depth=38))) == 1 + 9 * 4
    one = {"line2_last"}
    assert _block_slots(_dropped(cross_type="type1")) == {b: one for b in range(1, 10)}
    assert _block_slots(_dropped(cross_type="Type2")) == {b: {"line2_first"} for b in range(1, 10)}
    crossed = {"line1_last", "line2_first"}
    assert _block_slots(_dropped(cross_type="type3")) == {b: crossed for b in range(1, 10)}
    mix = _block_slots(_dropped(cross_type="mix1"))
    assert [mix[b] for b in (1, 2, 3, 4)] == [one, {"line2_first"}, crossed, one]
    # cross_type chooses the slots, proportion the blocks.
    assert set(_block_slots(_dropped(cross_type="type1", proportion=0.5))) == {1, 3, 5, 7, 9}
    both = _block_slots(_dropped(erase="last"))
    assert both == {b: {"line1_last", "line2_last"} for b in range(1, 10)}
    assert _block_slots(_dropped(erase=["line1_first", "line2_last"], proportion=[4])) == {
        4: {"line1_first", "line2_last"}
    }


def test_plain_nets_counts_and_modules():
    def plain(depth, classes=100):
        total, cin = _c(3, 16, 3), 16
        for w, n in zip((16, 32, 64), split_depth(depth, 1)):
            for _ in range(n):
                total, cin = total + _c(cin, w, 3), w
        return total + cin * classes + classes

    assert split_depth(84, 1) == (27, 27, 28)
    for depth in (38, 62, 84):
        assert kzoo.model_info(f"plain{depth}").expected_params == plain(depth)
    assert kzoo.model_info("plain84_ensemble").expected_params == plain(84)
    model = kzoo.PlainNet38()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) + 1 == 38  # the classifier is the other layer
    assert len(kzoo.activation_layers(model)) == 37
    two_to_one = kzoo.activation_layers(kzoo.PlainNet38(erase="last", proportion=0.5))
    assert len(two_to_one) == 1 + 18 and "stage1_block1_relu" not in two_to_one
    assert "stage1_block2_relu" in two_to_one


def test_ensemble_module_is_a_shortcut_across_each_relu():
    model = kzoo.PlainNet(depth=8, ensemble=True, input_shape=(8, 8, 3))
    adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert adds == [n.replace("relu", "ensemble_add") for n in kzoo.activation_layers(model)]
    probe = keras.Model(
        model.input,
        [model.get_layer("stage1_block1_bn").output, model.get_layer("stage1_block1_ensemble_add").output],
    )
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    h, y = (np.asarray(t) for t in probe(x, training=True))
    np.testing.assert_allclose(y, np.maximum(h, 0) + h, rtol=1e-6)
    # relu(h) + h is a leaky ReLU of slope 0.5, scaled by 2.
    np.testing.assert_allclose(y, 2 * np.where(h > 0, h, 0.5 * h), rtol=1e-6)
    erased = kzoo.PlainNet(depth=8, ensemble=True, erase="last", input_shape=(8, 8, 3))
    erased_adds = [layer.name for layer in erased.layers if isinstance(layer, keras.layers.Add)]
    assert erased_adds == ["stem_ensemble_add"]


@pytest.mark.parametrize(
    "builder, kwargs, err, match",
    [
        (kzoo.DFNMR, {"depth": 56}, ValueError, r"12n\+2"),
        (kzoo.DFNMR, {"depth": 2}, ValueError, r"12n\+2"),
        (kzoo.DFNMR, {"depth": 110.0}, TypeError, "depth"),
        (kzoo.DFNMR, {"width": 0}, ValueError, "width"),
        (kzoo.DFNMR, {"cross_type": "type4"}, ValueError, "cross_type"),
        (kzoo.DFNMR, {"cross_type": 1}, TypeError, "cross_type"),
        (kzoo.DFNMR, {"cross_type": "type1", "erase": "last"}, ValueError, "not both"),
        (kzoo.DFNMR, {"erase": "third"}, ValueError, "merge-and-run"),
        (kzoo.DFNMR, {"erase": ["line3_first"]}, ValueError, "line3_first"),
        (kzoo.DFNMR, {"erase": [["line1_first"], "line2_last"]}, TypeError, "erase"),
        (kzoo.CifarInceptionV2, {"modules_per_stage": 0}, ValueError, "modules_per_stage"),
        (kzoo.CifarInceptionV2, {"stem_width": "64"}, TypeError, "stem_width"),
        (kzoo.CifarInceptionV2, {"erase": "second"}, ValueError, "Inception module"),
        (kzoo.CifarInceptionV2, {"input_shape": (4, 4, 3)}, ValueError, "at least 8"),
        (kzoo.PlainNet, {"depth": 4}, ValueError, "depth"),
        (kzoo.PlainNet, {"ensemble": "yes"}, TypeError, "ensemble"),
        (kzoo.PlainNet38, {"proportion": [37], "erase": "last"}, ValueError, r"1\.\.36"),
    ],
)
def test_bad_arguments(builder, kwargs, err, match):
    with pytest.raises(err, match=match):
        builder(**kwargs)
