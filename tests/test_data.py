import dataclasses
import gzip
import hashlib
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kzoo import data

TFDS_NAMES = ("cifar10", "cifar100", "svhn", "imagenet2012")


@pytest.fixture
def imagenet_manual_dir(tmp_path):
    """Empty stand-ins for the ImageNet tars, so the archive check passes under mock_data."""
    for tar in data.IMAGENET_TARS:
        (tmp_path / tar).write_bytes(b"")
    return str(tmp_path)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


# ----------------------------------------------------------------------------- API, bad input

def test_dataset_info_and_sizes():
    assert set(data.DATASETS) == {"cifar10", "cifar100", "svhn", "svhn_extra", "imagenet2012",
                                  "fashion_mnist", "mnist"}
    info = data.dataset_info("cifar100")
    assert (info.classes, info.image_shape, info.source) == (100, (32, 32, 3), "tfds")
    assert info.mean == (129.3, 124.1, 112.4) and info.std == (68.2, 65.4, 70.4)
    assert data.dataset_info("svhn").mean is None
    assert data.num_examples("cifar10", "train") == 45000
    assert data.num_examples("cifar10", "validation") == 5000
    assert data.num_examples("cifar10", "train_full") == 50000
    assert data.num_examples("imagenet2012", "test") == 50000
    assert data.num_examples("svhn_extra", "train", validation_size=0) == 604388
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.classes = 3


@pytest.mark.parametrize("call, err, match", [
    (lambda: data.dataset_info("cifar11"), ValueError, "known datasets: cifar10, cifar100"),
    (lambda: data.load("cifar11", "train"), ValueError, "Unknown dataset 'cifar11'"),
    (lambda: data.load("cifar10", "valid"), ValueError, "`split` must be one of"),
    (lambda: data.load("cifar10", "train", validation_size=-1), ValueError, "non-negative"),
    (lambda: data.load("cifar10", "train", validation_size=2.5), TypeError, "`validation_size`"),
    (lambda: data.load("cifar10", "train", validation_size=50000), ValueError, "smaller than the 50000"),
    (lambda: data.load("cifar10", "validation", validation_size=0), ValueError, "no validation split"),
    (lambda: data.num_examples("mnist", "validation", validation_size=0), ValueError, "no validation"),
    (lambda: data.load("cifar10", "train", seed="0"), TypeError, "`seed`"),
])
def test_bad_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize("batch_size, err", [(0, ValueError), (-1, ValueError), (2.0, TypeError),
                                             ("8", TypeError), (True, TypeError)])
def test_bad_batch_size(batch_size, err):
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int32)))
    with pytest.raises(err, match="`batch_size` must be a positive integer"):
        data.pipeline(ds, "cifar10", training=True, batch_size=batch_size)
    with pytest.raises(err, match="`batch_size` must be a positive integer"):
        data.make_datasets("cifar10", batch_size=batch_size)


def test_pipeline_rejects_non_dataset():
    with pytest.raises(TypeError, match="`ds` must be a tf.data.Dataset"):
        data.pipeline(np.zeros((4, 32, 32, 3)), "cifar10", training=False, batch_size=2)


# ----------------------------------------------------------------------------- TFDS, mocked

@pytest.mark.parametrize("name", TFDS_NAMES)
def test_tfds_pipelines_on_mock_data(name, imagenet_manual_dir):
    info = data.dataset_info(name)
    with tfds.testing.mock_data(num_examples=10):
        raw = data.load(name, "train", manual_dir=imagenet_manual_dir)
        image, label = next(iter(raw))
        assert image.dtype == tf.uint8 and label.dtype == tf.int32 and label.shape == ()
        assert image.shape[-1] == 3
        train, val, test, got = data.make_datasets(name, batch_size=4, seed=1,
                                                   manual_dir=imagenet_manual_dir)
        assert got is info
        for ds, training in ((train, True), (val, False), (test, False)):
            batches = _batches(ds)
            sizes = [len(y) for _, y in batches]
            assert sizes == ([4, 4] if training else [4, 4, 2])  # drop_remainder only in training
            for x, y in batches:
                assert x.dtype == np.float32 and x.shape[1:] == info.image_shape
                assert y.dtype == np.int32 and y.min() >= 0 and y.max() < info.classes
                assert np.isfinite(x).all()
        if name == "svhn":  # pixels / 255, no augmentation
            x, _ = batches[0]
            assert x.min() >= 0 and x.max() <= 1


def test_svhn_extra_reads_train_and_extra():
    assert data.tfds_split("svhn_extra", "train_full") == "train+extra"
    val = data.tfds_split("svhn_extra", "validation")
    (n_train,), (n_extra,) = (
        [int(b) - int(a) for a, b in re.findall(rf"{part}\[(\d+):(\d+)\]", val)] for part in ("train", "extra"))
    assert (n_train, n_extra) == (4000, 2000)
    assert data.tfds_split("imagenet2012", "test") == "validation"  # the official val set


def _fake_split_data(sizes):
    """A mock_data ``as_dataset_fn`` honouring TFDS split slicing: example i of split s
    has pixel (0, 0) = (split code, i // 256, i % 256), so its content names it."""
    codes = {name: k + 1 for k, name in enumerate(sizes)}

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False, **kwargs):
        parts = []
        for piece in split.split("+"):
            m = re.fullmatch(r"(\w+)(?:\[(-?\d*):(-?\d*)\])?", piece)
            name, lo, hi = m.group(1), m.group(2), m.group(3)
            idx = np.arange(sizes[name])[slice(int(lo) if lo else None, int(hi) if hi else None)]
            images = np.full((len(idx), 32, 32, 3), 7, np.uint8)
            images[:, 0, 0] = np.stack([np.full_like(idx, codes[name]), idx // 256, idx % 256], -1)
            parts.append(tf.data.Dataset.from_tensor_slices(
                {"image": images, "label": (idx % 10).astype(np.int64)}))
        ds = parts[0]
        for part in parts[1:]:
            ds = ds.concatenate(part)
        return ds
    return as_dataset


def _hashes(ds):
    return [hashlib.sha1(x.numpy().tobytes()).hexdigest() for x, _ in ds]


def test_validation_carved_from_train_by_content(monkeypatch):
    monkeypatch.setitem(data.DATASETS, "cifar10",
                        dataclasses.replace(data.DATASETS["cifar10"], train_size=600,
                                                            test_size=50, validation_size=100))
    monkeypatch.setitem(data._RECIPES, "cifar10",
                        dataclasses.replace(data._RECIPES["cifar10"], train_parts=(("train", 600, 1.0),)))
    fake = _fake_split_data({"train": 600, "test": 50})
    with tfds.testing.mock_data(as_dataset_fn=fake):
        full = _hashes(data.load("cifar10", "train_full"))
        test = _hashes(data.load("cifar10", "test"))
        for seed in (0, 1):
            train = _hashes(data.load("cifar10", "train", validation_size=100, seed=seed))
            val = _hashes(data.load("cifar10", "validation", validation_size=100, seed=seed))
            assert (len(train), len(val)) == (500, 100)
            assert not set(train) & set(val)
            assert sorted(train + val) == sorted(full)  # exactly the training set...
            assert not set(val) & set(test)  # ...never the test set
            # Fixed order: the same call gives the same sequence.
            assert _hashes(data.load("cifar10", "validation", validation_size=100, seed=seed)) == val
        other = _hashes(data.load("cifar10", "validation", validation_size=100, seed=1))
        first = _hashes(data.load("cifar10", "validation", validation_size=100, seed=0))
        assert other != first  # the seed picks the subset
        assert len(_hashes(data.load("cifar10", "train", validation_size=0))) == 600
        # make_datasets: no validation dataset when validation_size=0
        _, val_ds, _, _ = data.make_datasets("cifar10", batch_size=32, validation_size=0)
        assert val_ds is None


def test_imagenet_missing_archives_error_before_tfds(tmp_path, monkeypatch):
    def no_tfds(*args, **kwargs):
        raise AssertionError("tfds.load must not run")
    monkeypatch.setattr(tfds, "load", no_tfds)
    with pytest.raises(FileNotFoundError) as err:
        data.load("imagenet2012", "train", data_dir=str(tmp_path))
    msg = str(err.value)
    assert os.path.join(str(tmp_path), "downloads", "manual") in msg
    assert "ILSVRC2012_img_train.tar" in msg and "ILSVRC2012_img_val.tar" in msg
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "ILSVRC2012_img_train.tar").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="missing: ILSVRC2012_img_val.tar$"):
        data.load("imagenet2012", "test", data_dir=str(tmp_path), manual_dir=str(tmp_path / "manual"))
    # Once TFDS has prepared the dataset, the tars are not needed.
    prepared = tmp_path / "imagenet2012" / "5.1.0"
    prepared.mkdir(parents=True)
    (prepared / "dataset_info.json").write_text("{}")
    with pytest.raises(AssertionError, match="tfds.load must not run"):
        data.load("imagenet2012", "test", data_dir=str(tmp_path))


# ----------------------------------------------------------------------------- normalisation

@pytest.mark.parametrize("name", ["cifar10", "cifar100", "fashion_mnist", "imagenet2012"])
def test_eval_normalisation_exact(name):
    info = data.dataset_info(name)
    shape = (16, 32, 32, 3) if name == "imagenet2012" else (16,) + info.image_shape
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    if name == "imagenet2012":  # normalisation of an already 224-sized image: check the formula
        normalise, _ = data._normaliser(info)
        got = normalise(tf.constant(x, tf.float32)).numpy()
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(16, np.int32)))
        got = np.concatenate([b for b, _ in _batches(
            data.pipeline(ds, name, training=False, batch_size=5))])
    expected = (x.astype(np.float32) - np.float32(info.mean)) / np.float32(info.std)
    np.testing.assert_array_equal(got, expected)


def test_svhn_divides_by_255_without_augmentation():
    x = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(8, dtype=np.int32)))
    (got, labels), = _batches(data.pipeline(ds, "svhn", training=True, batch_size=8, seed=0))
    order = np.argsort(labels)  # shuffled, but otherwise untouched
    np.testing.assert_array_equal(got[order], x.astype(np.float32) / np.float32(255))


# ----------------------------------------------------------------------------- augmentation

def _marker_images(name, n):
    """Constant images with two side-by-side markers, so position and mirroring show."""
    h, w, c = data.dataset_info(name).image_shape
    x = np.full((n, h, w, c), 200, np.uint8)
    x[:, h // 2, w // 2 - 6] = 10   # marker A
    x[:, h // 2, w // 2 - 5] = 250  # marker B, right of A unless flipped
    return x


def _decode(batch, name):
    """Per image: (row offset, column offset, flipped, padded rows, padded columns, fill ok)."""
    info, recipe = data.dataset_info(name), data._RECIPES[name]
    h, w, c = info.image_shape
    fill = data._fill(info, recipe).numpy()
    a = (np.float32(10) - np.float32(info.mean)) / np.float32(info.std)
    b = (np.float32(250) - np.float32(info.mean)) / np.float32(info.std)
    out = []
    for img in batch:
        ra, ca = np.argwhere(np.all(np.isclose(img, a), -1))[0]
        rb, cb = np.argwhere(np.all(np.isclose(img, b), -1))[0]
        assert ra == rb and abs(ca - cb) == 1
        flipped = cb < ca
        dy = h // 2 - ra
        dx = (w // 2 - 6 - ca) if not flipped else (ca - (w - 1 - (w // 2 - 6)))
        pad = np.all(np.isclose(img, fill), -1)
        out.append((dy, dx, flipped, int(pad.all(1).sum()), int(pad.all(0).sum())))
    return np.array(out)


def _draws(name, fast, n=1200, seed=0):
    ds = tf.data.Dataset.from_tensor_slices((_marker_images(name, n), np.zeros(n, np.int32)))
    if fast:
        out = data.pipeline(ds, name, training=True, batch_size=200, seed=seed)
    else:
        tf.random.set_seed(seed)
        out = ds.map(lambda x, y: (data.reference_augment(x, name), y)).batch(200)
    return np.concatenate([_decode(x, name) for x, _ in _batches(out)])


@pytest.mark.parametrize("name", ["cifar10", "fashion_mnist", "mnist"])
def test_augmentation_statistics_match_reference(name):
    recipe = data._RECIPES[name]
    p = recipe.pad
    for fast in (True, False):
        d = _draws(name, fast)
        n = len(d)
        dy, dx, flipped, pad_rows, pad_cols = d.T
        for off, pad in ((dy, pad_rows), (dx, pad_cols)):
            assert off.min() == -p and off.max() == p
            counts = np.bincount(off + p, minlength=2 * p + 1)
            expected = n / (2 * p + 1)
            chi2 = ((counts - expected) ** 2 / expected).sum()
            assert chi2 < 30, (fast, counts)  # df <= 8: p < 1e-3
            # Padding: exactly |offset| rows / columns of fill value appear.
            np.testing.assert_array_equal(pad, np.abs(off))
        if recipe.flip:
            assert abs(flipped.mean() - 0.5) < 4 * np.sqrt(0.25 / n)
        else:
            assert not flipped.any()


def test_cifar_padding_is_zero_after_normalisation():
    # fb.resnet.torch pads the normalised image with zeros (the mean colour).
    x = np.full((64, 32, 32, 3), 255, np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(64, np.int32)))
    batch, _ = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=64, seed=0))[0]
    values = np.unique(batch.reshape(-1, 3), axis=0)
    expected = (np.float32(255) - np.float32(data.DATASETS["cifar10"].mean)) / np.float32(data.DATASETS["cifar10"].std)
    assert len(values) == 2
    assert any((v == 0).all() for v in values)
    assert any(np.allclose(v, expected) for v in values)


def test_seeded_pipeline_is_deterministic():
    x = np.random.default_rng(2).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(300, dtype=np.int32)))

    def epochs(seed, n=2):
        p = data.pipeline(ds, "cifar10", training=True, batch_size=64, seed=seed)
        return [_batches(p) for _ in range(n)]

    a, b, c = epochs(7), epochs(7), epochs(8)
    for ea, eb in zip(a, b):
        assert len(ea) == 4  # 300 // 64, remainder dropped
        for (xa, ya), (xb, yb) in zip(ea, eb):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0][1], a[1][0][1])  # reshuffled each epoch
    assert not np.array_equal(a[0][0][0], c[0][0][0])  # another seed, other batches
    eval_batches = _batches(data.pipeline(ds, "cifar10", training=False, batch_size=64))
    assert [len(y) for _, y in eval_batches] == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(np.concatenate([y for _, y in eval_batches]), np.arange(300))


def test_xla_and_plain_tf_augment_alike(monkeypatch):
    x = np.random.default_rng(4).integers(0, 256, (100, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(100, dtype=np.int32)))
    fast = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=50, seed=5))
    monkeypatch.setattr(data, "_xla_works", lambda: False)
    plain = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=50, seed=5))
    for (xa, ya), (xb, yb) in zip(fast, plain):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_allclose(xa, xb, rtol=1e-6, atol=1e-6)


def test_augment_false_is_normalisation_only():
    x = np.random.default_rng(3).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(32, dtype=np.int32)))
    (got, labels), = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=32, seed=0,
                                            augment=False))
    info = data.DATASETS["cifar10"]
    expected = (x.astype(np.float32) - np.float32(info.mean)) / np.float32(info.std)
    np.testing.assert_array_equal(got, expected[labels])


# ----------------------------------------------------------------------------- IDX files

def _idx_bytes(array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def _write_idx_set(directory, n_train=40, n_test=12, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    for fname, array in arrays.items():
        raw = _idx_bytes(array)
        if gz:
            (directory / (fname + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (directory / fname).write_bytes(raw)
    return arrays


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """Search nowhere on this machine: no Debian dir, an empty Keras cache, no download."""
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion_mnist": (str(tmp_path / "debian"),),
                                              "mnist": (str(tmp_path / "debian-mnist"),)})
    monkeypatch.setattr(data, "keras_cache_dir", lambda: str(tmp_path / "keras" / "datasets"))

    def offline(name):
        raise OSError("no internet")
    monkeypatch.setattr(data, "_keras_download", offline)
    monkeypatch.delenv("KZOO_DATA_DIR", raising=False)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_data_dir(no_system_data, gz):
    arrays = _write_idx_set(no_system_data / "mine", gz=gz)
    test = list(data.load("fashion_mnist", "test", data_dir=str(no_system_data / "mine")))
    assert len(test) == 12
    image, label = test[3]
    assert image.dtype == tf.uint8 and image.shape == (28, 28, 1) and label.dtype == tf.int32
    np.testing.assert_array_equal(image.numpy()[..., 0], arrays["t10k-images-idx3-ubyte"][3])
    assert int(label) == arrays["t10k-labels-idx1-ubyte"][3]


def test_idx_search_order_and_carving(no_system_data, monkeypatch):
    # $KZOO_DATA_DIR/fashion-mnist, with a decoy MNIST in $KZOO_DATA_DIR/mnist
    root = no_system_data / "kzoo"
    fashion = _write_idx_set(root / "fashion-mnist", seed=1)
    _write_idx_set(root / "mnist", seed=2, gz=False)
    monkeypatch.setenv("KZOO_DATA_DIR", str(root))
    full = np.stack([x.numpy() for x, _ in data.load("fashion_mnist", "train_full")])
    np.testing.assert_array_equal(full[..., 0], fashion["train-images-idx3-ubyte"])
    train = [x.numpy().tobytes() for x, _ in data.load("fashion_mnist", "train", validation_size=10)]
    val = [x.numpy().tobytes() for x, _ in data.load("fashion_mnist", "validation", validation_size=10)]
    assert (len(train), len(val)) == (30, 10)
    assert sorted(train + val) == sorted(x.tobytes() for x in full)
    assert not set(val) & {x.numpy().tobytes() for x, _ in data.load("fashion_mnist", "test")}
    # data_dir comes first; the Debian directory after $KZOO_DATA_DIR.
    _write_idx_set(no_system_data / "first" / "fashion-mnist", seed=3)
    first = next(iter(data.load("fashion_mnist", "test", data_dir=str(no_system_data / "first"))))[0]
    assert not np.array_equal(first.numpy(), next(iter(data.load("fashion_mnist", "test")))[0].numpy())
    # MNIST from the Keras cache's mnist.npz
    monkeypatch.delenv("KZOO_DATA_DIR")
    cache = no_system_data / "keras" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", x_train=np.ones((20, 28, 28), np.uint8), y_train=np.arange(20) % 10,
             x_test=np.zeros((5, 28, 28), np.uint8), y_test=np.arange(5))
    assert len(list(data.load("mnist", "test"))) == 5


def test_corrupt_idx_file(no_system_data):
    d = no_system_data / "bad"
    _write_idx_set(d, gz=False)
    raw = (d / "train-images-idx3-ubyte").read_bytes()
    (d / "train-images-idx3-ubyte").write_bytes(raw[:-100])  # truncated
    with pytest.raises(ValueError, match="Corrupt IDX file .*train-images-idx3-ubyte"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))
    (d / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(ValueError, match="not an IDX file: bad magic number 1234"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))
    (d / "train-images-idx3-ubyte").unlink()
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw)[:50])
    with pytest.raises(ValueError, match="Corrupt gzip file"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))


def test_missing_idx_lists_every_place(no_system_data, monkeypatch):
    monkeypatch.setenv("KZOO_DATA_DIR", str(no_system_data / "env"))
    with pytest.raises(FileNotFoundError) as err:
        data.load("mnist", "train", data_dir=str(no_system_data / "arg"))
    msg = str(err.value)
    for place in ("arg", os.path.join("arg", "mnist"), "env", os.path.join("env", "mnist"),
                  "debian-mnist", os.path.join("keras", "datasets", "mnist"),
                  os.path.join("keras", "datasets", "mnist.npz")):
        assert str(no_system_data / place) in msg
    assert "keras.datasets" in msg and "no internet" in msg


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("KZOO_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "keras_cache_dir", lambda: "/nonexistent")
    train = data.load("fashion_mnist", "train_full")
    test = data.load("fashion_mnist", "test")
    assert int(train.cardinality()) == 60000 and int(test.cardinality()) == 10000
    assert int(data.load("fashion_mnist", "train").cardinality()) == 55000
    assert train.element_spec[0].shape == (28, 28, 1) and train.element_spec[0].dtype == tf.uint8
    images = np.concatenate([x.numpy() for x, _ in train.batch(20000)])
    # The DatasetInfo constants are these files' statistics.
    info = data.DATASETS["fashion_mnist"]
    assert images.mean() == pytest.approx(info.mean[0], abs=1e-3)
    assert images.std(dtype=np.float64) == pytest.approx(info.std[0], abs=1e-3)
