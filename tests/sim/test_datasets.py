"""Tests for sgdnoise.sim.datasets: class selection, offline data sets, and local-file readers.

Local files are tiny synthetic stand-ins written into ``tmp_path`` in the real formats (IDX, gzip,
Keras-style npz, CIFAR-10 python pickles) and must be read back exactly.
"""

from __future__ import annotations

import builtins
import gzip
import io
import os
import pathlib
import pickle
import pickletools
import random
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from sgdnoise.sim.data import ClassificationData
from sgdnoise.sim.datasets import (
    LOCAL_DATASETS,
    digits,
    load_local,
    mnist1d,
    read_idx,
    select_classes,
)

IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
             np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ---------------------------------------------------------------------------------------------
# writers for the real file formats
# ---------------------------------------------------------------------------------------------

def idx_bytes(arr, *, magic=None):
    arr = np.asarray(arr)
    if magic is None:
        magic = (IDX_CODES[arr.dtype] << 8) | arr.ndim
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr, *, gz=False, magic=None):
    raw = idx_bytes(arr, magic=magic)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(raw)
    else:
        path.write_bytes(raw)
    return path


def fake_images(rng, n, shape):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def balanced_labels(rng, per_class, num_classes=10):
    y = np.repeat(np.arange(num_classes, dtype=np.uint8), per_class)
    rng.shuffle(y)
    return y


@pytest.fixture
def mnist_arrays():
    rng = np.random.default_rng(0)
    return {
        "train": (fake_images(rng, 40, (4, 5)), balanced_labels(rng, 4)),
        "test": (fake_images(rng, 20, (4, 5)), balanced_labels(rng, 2)),
    }


def write_mnist_idx(directory, arrays, *, gz=False):
    directory.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = arrays[split]
        write_idx(directory / f"{prefix}-images-idx3-ubyte", x, gz=gz)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", y, gz=gz)


@pytest.fixture
def cifar_arrays():
    rng = np.random.default_rng(1)
    train = [(fake_images(rng, 4, (3072,)), rng.integers(0, 10, 4).tolist()) for _ in range(5)]
    test = (fake_images(rng, 10, (3072,)), list(range(10)))
    return train, test


def write_cifar_batches(directory, arrays, dumps=pickle.dumps):
    directory.mkdir(parents=True, exist_ok=True)
    train, test = arrays
    named = [(f"data_batch_{i + 1}", b) for i, b in enumerate(train)] + [("test_batch", test)]
    for name, (data, labels) in named:
        batch = {b"batch_label": name.encode(), b"data": data, b"labels": labels,
                 b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
        (directory / name).write_bytes(dumps(batch))


def _py2_str(data):
    """A Python-2 ``str`` in a protocol-2 pickle: SHORT_BINSTRING or BINSTRING."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + len(data).to_bytes(4, "little") + data


def _py2_int(n):
    """BININT1, BININT2 or BININT, as cPickle writes a non-negative int."""
    if n < 256:
        return b"K" + bytes([n])
    if n < 65536:
        return b"M" + n.to_bytes(2, "little")
    return b"J" + n.to_bytes(4, "little", signed=True)


def _py2_list(items):
    return b"]" + (b"(" + b"".join(items) + b"e" if items else b"")      # EMPTY_LIST, APPENDS


def py2_cifar_pickle(batch):
    """A CIFAR-10 python batch as Python 2's cPickle (protocol 2) with numpy 1.x wrote it.

    Strings are Python-2 ``str`` (BINSTRING), the uint8 image array is pickled by numpy's
    ``__reduce__`` — ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b')`` followed by
    BUILD with ``(1, shape, dtype('u1'), False, raw bytes)``, the dtype as
    ``numpy.dtype('u1', 0, 1)`` with state ``(3, '|', None, None, None, -1, -1, 0)`` — and the
    labels are a list of ints. Memo opcodes (BINPUT), which change nothing, are left out.
    """
    data = batch[b"data"]
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
             + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2
             + _py2_int(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
             + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"
             + b"(" + _py2_int(1) + b"".join(_py2_int(n) for n in data.shape) + b"\x86"
             + dtype + b"\x89" + _py2_str(data.tobytes()) + b"tb")
    items = {
        b"batch_label": _py2_str(batch[b"batch_label"]),
        b"data": array,
        b"labels": _py2_list([_py2_int(int(v)) for v in batch[b"labels"]]),
        b"filenames": _py2_list([_py2_str(f) for f in batch[b"filenames"]]),
    }
    body = b"".join(_py2_str(key) + value for key, value in items.items())
    return b"\x80\x02}(" + body + b"u."                  # PROTO 2, EMPTY_DICT, SETITEMS, STOP


def pickled_globals(raw):
    """The globals a protocol-2 pickle names (its GLOBAL opcodes), as ``module.name``."""
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(raw) if op.name == "GLOBAL"}


# ---------------------------------------------------------------------------------------------
# select_classes
# ---------------------------------------------------------------------------------------------

def test_select_classes_relabels_in_the_given_order_and_keeps_sample_order():
    x = np.arange(12.0).reshape(6, 2)
    y = np.array([3, 7, 1, 7, 3, 1])
    data = select_classes(x, y, classes=(7, 1))
    assert isinstance(data, ClassificationData)
    assert data.num_classes == 2
    assert_array_equal(data.y, [0, 1, 0, 1])             # 7 -> 0, 1 -> 1, original order kept
    assert_array_equal(data.x, x[[1, 2, 3, 5]])
    assert data.x.dtype == np.float64 and data.y.dtype == np.int64


def test_select_classes_without_relabel_keeps_labels_and_full_class_count():
    y = np.array([3, 7, 1, 7, 3, 1, 9])
    data = select_classes(np.zeros((7, 1)), y, classes=[7, 1], relabel=False)
    assert_array_equal(data.y, [7, 1, 7, 1])
    assert data.num_classes == 10


def test_select_classes_defaults_to_every_label_unchanged():
    y = np.array([2, 0, 1, 2])
    data = select_classes(np.eye(4), y)
    assert data.num_classes == 3
    assert_array_equal(data.y, y)
    assert_array_equal(data.x, np.eye(4))
    gap = select_classes(np.zeros((5, 1)), np.array([0, 3, 3, 0, 0]), samples_per_class=2)
    assert gap.num_classes == 4                            # labels 1 and 2 absent, not renumbered
    assert_array_equal(np.bincount(gap.y, minlength=4), [2, 0, 0, 2])


def test_samples_per_class_is_balanced_seeded_and_a_subset():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 400)
    x = np.arange(400.0)[:, None]
    a = select_classes(x, y, classes=[2, 0], samples_per_class=30, rng=11)
    b = select_classes(x, y, classes=[2, 0], samples_per_class=30, rng=np.random.default_rng(11))
    c = select_classes(x, y, classes=[2, 0], samples_per_class=30, rng=12)
    assert_array_equal(np.bincount(a.y), [30, 30])
    assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    picked = a.x[:, 0].astype(int)
    assert np.all(np.diff(picked) > 0)                     # original order, no repeats
    assert_array_equal(np.where(y[picked] == 2, 0, 1), a.y)
    assert_array_equal(select_classes(x, y, [2, 0], 30).x, select_classes(x, y, [2, 0], 30).x)


def test_unbalanced_protocol_takes_k_times_samples_per_class():
    y = np.repeat(np.arange(3), [50, 10, 50])
    data = select_classes(np.zeros((110, 1)), y, classes=[0, 1, 2], samples_per_class=20,
                          rng=0, balanced=False)
    assert data.y.size == 60
    with pytest.raises(ValueError, match="samples_per_class"):
        select_classes(np.zeros((110, 1)), y, samples_per_class=20)   # class 1 has only 10
    with pytest.raises(ValueError, match="samples_per_class"):
        select_classes(np.zeros((110, 1)), y, samples_per_class=40, balanced=False)


@pytest.mark.parametrize(
    ("kwargs", "argname"),
    [
        ({"classes": [1]}, "classes"),
        ({"classes": [1, 1]}, "classes"),
        ({"classes": [0, 5]}, "classes"),
        ({"classes": "01"}, "classes"),
        ({"classes": [0, 1.5]}, "classes"),
        ({"samples_per_class": 0}, "samples_per_class"),
        ({"samples_per_class": 2.0}, "samples_per_class"),
        ({"samples_per_class": 4}, "samples_per_class"),
        ({"samples_per_class": 1, "rng": -1}, "rng"),
        ({"relabel": 1}, "relabel"),
        ({"balanced": "yes"}, "balanced"),
    ],
)
def test_select_classes_rejects_bad_arguments(kwargs, argname):
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=argname):
        select_classes(np.zeros((9, 2)), y, **kwargs)


@pytest.mark.parametrize(
    ("x", "y", "argname"),
    [
        (np.zeros((3, 2)), np.array([0, 1]), "x"),
        (np.zeros((2, 2)), np.array([[0, 1]]), "y"),
        (np.zeros((2, 2)), np.array([0, -1]), "y"),
        (np.zeros((2, 2)), np.array([0.5, 1.0]), "y"),
        (np.array([[np.nan], [0.0]]), np.array([0, 1]), "x"),
    ],
)
def test_select_classes_rejects_bad_arrays(x, y, argname):
    with pytest.raises(ValueError, match=argname):
        select_classes(x, y)


# ---------------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------------

def test_digits_shapes_and_ranges():
    pytest.importorskip("sklearn")
    raw = digits(standardize=False)
    assert raw.x.shape == (1797, 64) and raw.y.shape == (1797,) and raw.num_classes == 10
    assert raw.x.dtype == np.float64 and raw.y.dtype == np.int64
    assert raw.x.min() == 0.0 and raw.x.max() == 1.0
    assert_array_equal(np.unique(raw.y), np.arange(10))
    z = digits()
    varying = raw.x.std(axis=0) > 0
    np.testing.assert_allclose(z.x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.x.std(axis=0)[varying], 1.0, rtol=1e-12)
    assert np.all(z.x[:, ~varying] == 0.0)


def test_digits_class_subset_and_seed_determinism():
    pytest.importorskip("sklearn")
    full = digits(standardize=False)
    sub = digits(classes=(8, 3, 5), samples_per_class=40, rng=3, standardize=False)
    again = digits(classes=(8, 3, 5), samples_per_class=40, rng=3, standardize=False)
    other = digits(classes=(8, 3, 5), samples_per_class=40, rng=4, standardize=False)
    assert sub.num_classes == 3 and sub.x.shape == (120, 64)
    assert_array_equal(np.bincount(sub.y), [40, 40, 40])
    assert_array_equal(sub.x, again.x)
    assert_array_equal(sub.y, again.y)
    assert not np.array_equal(sub.x, other.x)
    label_of = {row.tobytes(): label for row, label in zip(full.x, full.y, strict=True)}
    originals = [label_of[row.tobytes()] for row in sub.x]
    assert_array_equal(originals, np.array([8, 3, 5])[sub.y])
    with pytest.raises(ValueError, match="samples_per_class"):
        digits(samples_per_class=500)


def test_digits_names_scikit_learn_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        digits()


def test_digits_rejects_bad_standardize():
    with pytest.raises(ValueError, match="standardize"):
        digits(standardize="yes")


# ---------------------------------------------------------------------------------------------
# MNIST-1D
# ---------------------------------------------------------------------------------------------

def test_mnist1d_is_deterministic_and_leaves_global_state_alone():
    pytest.importorskip("mnist1d")
    np.random.seed(123)
    random.seed(456)
    np_before, py_before = np.random.get_state(), random.getstate()
    a = mnist1d(num_samples=300, seed=7)
    np_after, py_after = np.random.get_state(), random.getstate()
    assert np_before[0] == np_after[0] and np_before[2:] == np_after[2:]
    assert_array_equal(np_before[1], np_after[1])
    assert py_before == py_after
    b = mnist1d(num_samples=300, seed=7)
    c = mnist1d(num_samples=300, seed=8)
    assert_array_equal(a.x, b.x)
    assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape == (240, 40) and a.x.dtype == np.float64 and a.num_classes == 10


def test_mnist1d_matches_the_package_generator():
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()
    args = get_dataset_args(as_dict=False)
    args.num_samples, args.seed = 200, 3
    ref = make_dataset(args)
    np.random.set_state(state)
    train, test = mnist1d(num_samples=200, seed=3, return_test=True)
    assert_array_equal(train.x, ref["x"])
    assert_array_equal(train.y, ref["y"])
    assert_array_equal(test.x, ref["x_test"])
    assert_array_equal(test.y, ref["y_test"])


def test_mnist1d_class_subset_applies_to_train_and_test():
    pytest.importorskip("mnist1d")
    train, test = mnist1d(num_samples=400, seed=1, classes=[4, 9], samples_per_class=20,
                          return_test=True, final_seq_length=24)
    assert train.num_classes == test.num_classes == 2
    assert_array_equal(np.bincount(train.y), [20, 20])
    assert train.x.shape == (40, 24)
    full_test = mnist1d(num_samples=400, seed=1, return_test=True, final_seq_length=24)[1]
    assert test.y.size == np.isin(full_test.y, [4, 9]).sum()      # every test sample of 4 and 9
    with pytest.raises(ValueError, match="samples_per_class"):
        mnist1d(num_samples=400, seed=1, samples_per_class=100)


def test_mnist1d_restores_global_state_when_the_generator_fails(monkeypatch):
    mod = pytest.importorskip("mnist1d.data")

    def failing(args):
        np.random.seed(args.seed)
        random.seed(args.seed)
        raise RuntimeError("boom")

    monkeypatch.setattr(mod, "make_dataset", failing)
    np_before, py_before = np.random.get_state(), random.getstate()
    with pytest.raises(RuntimeError, match="boom"):
        mnist1d(num_samples=100)
    assert_array_equal(np.random.get_state()[1], np_before[1])
    assert random.getstate() == py_before


@pytest.mark.parametrize(
    ("kwargs", "argname"),
    [
        ({"num_samples": 5}, "num_samples"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"train_split": 1.0}, "train_split"),
        ({"train_split": 0.01, "num_samples": 10}, "train_split"),
        ({"final_seq_length": 1}, "final_seq_length"),
        ({"options": {"url": "x"}}, "options"),
        ({"return_test": 1}, "return_test"),
        ({"shuffle_seq": None}, "shuffle_seq"),
    ],
)
def test_mnist1d_rejects_bad_arguments(kwargs, argname):
    with pytest.raises(ValueError, match=argname):
        mnist1d(**kwargs)


def test_mnist1d_names_the_package_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match="pip install mnist1d"):
        mnist1d(num_samples=100)


# ---------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_read_idx_round_trips_every_type(tmp_path, dtype, gz):
    arr = (np.arange(24) - 7).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / "a-idx3", arr, gz=gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert_array_equal(out, arr)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x01\x00\x08\x01" + (2).to_bytes(4, "big") + b"\x00\x01", "magic"),
        (b"\x00\x00\x07\x01" + (2).to_bytes(4, "big") + b"\x00\x01", "magic"),
        (b"\x00\x00\x08\x00", "magic"),
        (b"\x00\x00", "short"),
        (b"\x00\x00\x08\x02" + (2).to_bytes(4, "big"), "truncated"),
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x00\x01", "holds 10 bytes"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, raw, match):
    path = tmp_path / "bad-idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_read_idx_checks_the_expected_dimensions(tmp_path):
    path = write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="magic number 2049"):
        read_idx(path, ndim=3)


# ---------------------------------------------------------------------------------------------
# load_local: MNIST / Fashion-MNIST
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_local_reads_idx_files_exactly(tmp_path, mnist_arrays, name, gz, split):
    write_mnist_idx(tmp_path, mnist_arrays, gz=gz)
    x, y = mnist_arrays[split]
    data = load_local(name, tmp_path, split=split)
    assert data.num_classes == 10 and data.x.dtype == np.float64 and data.y.dtype == np.int64
    assert_array_equal(data.x, x.reshape(len(x), -1) / 255.0)
    assert_array_equal(data.y, y)
    images = load_local(name, str(tmp_path), split=split, flatten=False)
    assert images.x.shape == x.shape
    assert_array_equal(images.x * 255.0, x)


def test_load_local_finds_the_torchvision_layout(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path / "FashionMNIST" / "raw", mnist_arrays, gz=True)
    data = load_local("fashion_mnist", tmp_path, split="test")
    assert_array_equal(data.y, mnist_arrays["test"][1])


def test_load_local_reads_a_keras_npz(tmp_path, mnist_arrays):
    (xt, yt), (xs, ys) = mnist_arrays["train"], mnist_arrays["test"]
    np.savez(tmp_path / "mnist.npz", x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    train = load_local("mnist", tmp_path)
    test = load_local("mnist", tmp_path, split="test", flatten=False)
    assert_array_equal(train.x, xt.reshape(len(xt), -1) / 255.0)
    assert_array_equal(train.y, yt)
    assert_array_equal(test.x, xs / 255.0)
    assert_array_equal(test.y, ys)


def test_load_local_npz_with_missing_keys(tmp_path, mnist_arrays):
    np.savez(tmp_path / "mnist.npz", x_train=mnist_arrays["train"][0])
    with pytest.raises(ValueError, match="y_train"):
        load_local("mnist", tmp_path)


def test_load_local_applies_class_subset_and_samples_per_class(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path, mnist_arrays)
    x, y = mnist_arrays["train"]
    data = load_local("mnist", tmp_path, classes=[6, 2, 9], samples_per_class=3, rng=0)
    again = load_local("mnist", tmp_path, classes=[6, 2, 9], samples_per_class=3, rng=0)
    assert data.num_classes == 3
    assert_array_equal(np.bincount(data.y), [3, 3, 3])
    assert_array_equal(data.x, again.x)
    rows = {row.tobytes(): int(label) for row, label in zip(x.reshape(len(x), -1), y, strict=True)}
    for row, label in zip(data.x, data.y, strict=True):
        assert rows[np.round(row * 255).astype(np.uint8).tobytes()] == [6, 2, 9][label]
    with pytest.raises(ValueError, match="samples_per_class"):
        load_local("mnist", tmp_path, classes=[6, 2], samples_per_class=5)
    z = load_local("mnist", tmp_path, standardize=True)
    np.testing.assert_allclose(z.x.mean(axis=0), 0.0, atol=1e-12)


def test_wrong_magic_number_in_a_dataset_file_raises(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path, mnist_arrays)
    x, _ = mnist_arrays["train"]
    write_idx(tmp_path / "train-images-idx3-ubyte", x, magic=2049)          # labels' magic
    with pytest.raises(ValueError, match="magic"):
        load_local("mnist", tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", x.astype(np.int16))     # wrong element type
    with pytest.raises(ValueError, match="uint8"):
        load_local("mnist", tmp_path)


def test_mismatched_image_and_label_counts_raise(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path, mnist_arrays)
    write_idx(tmp_path / "train-labels-idx1-ubyte", mnist_arrays["train"][1][:-1])
    with pytest.raises(ValueError, match="labels"):
        load_local("mnist", tmp_path)


def test_labels_outside_zero_to_nine_raise(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path, mnist_arrays)
    labels = mnist_arrays["train"][1].copy()
    labels[0] = 10
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match="labels"):
        load_local("mnist", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_missing_mnist_files_name_every_expected_file(tmp_path, name):
    with pytest.raises(FileNotFoundError) as info:
        load_local(name, tmp_path / "nowhere")
    message = str(info.value)
    for expected in (*MNIST_FILES, f"{name}.npz", ".gz", str(tmp_path / "nowhere")):
        assert expected in message


def test_half_a_pair_of_idx_files_counts_as_missing(tmp_path, mnist_arrays):
    write_idx(tmp_path / "train-images-idx3-ubyte", mnist_arrays["train"][0])
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_local("mnist", tmp_path)


# ---------------------------------------------------------------------------------------------
# load_local: CIFAR-10
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("inside", [True, False])
def test_load_local_reads_cifar_batches_exactly(tmp_path, cifar_arrays, inside):
    directory = tmp_path / "cifar-10-batches-py" if inside else tmp_path
    write_cifar_batches(directory, cifar_arrays)
    train_batches, (x_test, y_test) = cifar_arrays
    x_train = np.concatenate([b[0] for b in train_batches])
    y_train = np.concatenate([b[1] for b in train_batches])
    train = load_local("cifar10", tmp_path)
    assert train.x.shape == (20, 3072)
    assert_array_equal(train.x, x_train / 255.0)
    assert_array_equal(train.y, y_train)
    test = load_local("cifar10", tmp_path, split="test", flatten=False)
    assert test.x.shape == (10, 3, 32, 32)
    assert_array_equal(test.x, x_test.reshape(10, 3, 32, 32) / 255.0)
    assert_array_equal(test.y, y_test)


def test_cifar_npz_channels_last_matches_the_batches(tmp_path, cifar_arrays):
    write_cifar_batches(tmp_path / "batches" / "cifar-10-batches-py", cifar_arrays)
    from_batches = load_local("cifar10", tmp_path / "batches", split="test", flatten=False)
    x_test, y_test = cifar_arrays[1]
    channels_last = x_test.reshape(10, 3, 32, 32).transpose(0, 2, 3, 1)
    np.savez(tmp_path / "cifar10.npz", x_train=channels_last, y_train=np.array(y_test),
             x_test=channels_last, y_test=np.array(y_test)[:, None])            # Keras: (n, 1)
    from_npz = load_local("cifar10", tmp_path, split="test", flatten=False)
    assert_array_equal(from_npz.x, from_batches.x)
    assert_array_equal(from_npz.y, from_batches.y)
    assert_array_equal(load_local("cifar10", tmp_path, split="test").x,
                       load_local("cifar10", tmp_path / "batches", split="test").x)


def test_cifar_batch_with_wrong_width_raises(tmp_path, cifar_arrays):
    train, test = cifar_arrays
    write_cifar_batches(tmp_path, (train, (test[0][:, :100], test[1])))
    with pytest.raises(ValueError, match="3072"):
        load_local("cifar10", tmp_path, split="test")


def test_missing_cifar_files_name_every_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_local("cifar10", tmp_path)
    message = str(info.value)
    expected = [f"data_batch_{i}" for i in range(1, 6)]
    for name in (*expected, "test_batch", "cifar-10-batches-py", "cifar10.npz", str(tmp_path)):
        assert name in message


# ---------------------------------------------------------------------------------------------
# CIFAR-10 batches: a restricted unpickler, never pickle.load
# ---------------------------------------------------------------------------------------------

def _labels_as_numpy_ints(batch):
    return {**batch, b"labels": [np.int64(v) for v in batch[b"labels"]]}


CIFAR_WRITERS = {
    "python2-cPickle": py2_cifar_pickle,
    "protocol-2": lambda batch: pickle.dumps(batch, protocol=2),
    "protocol-3": lambda batch: pickle.dumps(batch, protocol=3),
    "protocol-4": lambda batch: pickle.dumps(batch, protocol=4),
    "protocol-5": lambda batch: pickle.dumps(batch, protocol=5),
    "numpy-int-labels": lambda batch: pickle.dumps(_labels_as_numpy_ints(batch), protocol=2),
    "int64-label-array": lambda batch: pickle.dumps(
        {**batch, b"labels": np.asarray(batch[b"labels"], dtype=">i8")}, protocol=4),
}


@pytest.mark.parametrize("writer", sorted(CIFAR_WRITERS))
def test_cifar_batches_of_every_pickle_protocol_load_exactly(tmp_path, cifar_arrays, writer):
    write_cifar_batches(tmp_path, cifar_arrays, dumps=CIFAR_WRITERS[writer])
    train_batches, (x_test, y_test) = cifar_arrays
    train = load_local("cifar10", tmp_path)
    assert_array_equal(train.x, np.concatenate([b[0] for b in train_batches]) / 255.0)
    assert_array_equal(train.y, np.concatenate([b[1] for b in train_batches]))
    test = load_local("cifar10", tmp_path, split="test", flatten=False)
    assert_array_equal(test.x, x_test.reshape(10, 3, 32, 32) / 255.0)
    assert_array_equal(test.y, y_test)


def test_a_full_size_python2_batch_names_only_numpy_globals_and_loads_exactly(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, size=(10000, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, 10000).tolist()
    raw = py2_cifar_pickle({b"batch_label": b"testing batch 1 of 1", b"data": data,
                            b"labels": labels,
                            b"filenames": [f"f_{i}.png".encode() for i in range(10000)]})
    assert pickled_globals(raw) == {"numpy.core.multiarray._reconstruct", "numpy.ndarray",
                                    "numpy.dtype"}
    reference = pickle.loads(raw, encoding="bytes")              # the test's own bytes
    assert_array_equal(reference[b"data"], data)
    (tmp_path / "test_batch").write_bytes(raw)
    loaded = load_local("cifar10", tmp_path, split="test", samples_per_class=30, rng=3)
    expected = select_classes(data.reshape(-1, 3, 32, 32), labels, samples_per_class=30, rng=3)
    assert_array_equal(loaded.x, expected.x.reshape(300, -1) / 255.0)
    assert_array_equal(loaded.y, expected.y)


class _Payload:
    """Unpickles to ``func(*args)``: what a crafted batch would run under ``pickle.load``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _touch_by_method(marker):
    return _Payload(pathlib.Path.touch, marker)


def _touch_by_exec(marker):
    return _Payload(builtins.exec, f"import pathlib; pathlib.Path({str(marker)!r}).touch()")


def _touch_by_shell(marker):
    return _Payload(os.system, f"touch '{marker}'")


def _valid_batch_and_touch(marker):
    """Touches ``marker`` and then evaluates to a well-formed CIFAR-10 batch."""
    source = (f"(__import__('pathlib').Path({str(marker)!r}).touch(), "
              "{b'batch_label': b'testing batch 1 of 1', "
              "b'data': __import__('numpy').zeros((10, 3072), 'uint8'), "
              "b'labels': list(range(10)), b'filenames': []})[1]")
    return _Payload(builtins.eval, source)


PAYLOADS = {
    "pathlib.Path.touch": (_touch_by_method, "Path.touch|getattr"),
    "builtins.exec": (_touch_by_exec, "exec"),
    "os.system": (_touch_by_shell, "system"),
    "eval returning a valid batch": (_valid_batch_and_touch, "eval"),
}


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_crafted_cifar_batch_is_refused_and_runs_nothing(tmp_path, payload, nested, protocol):
    make, refused = PAYLOADS[payload]
    marker = tmp_path / "marker"
    obj = make(marker)
    if nested:                               # hidden in an otherwise valid batch
        obj = {b"batch_label": obj, b"data": np.zeros((10, 3072), np.uint8),
               b"labels": list(range(10))}
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with pytest.raises(ValueError, match="refused to load the global") as info:
        load_local("cifar10", tmp_path, split="test")
    assert str(path) in str(info.value)
    assert any(name in str(info.value) for name in refused.split("|"))
    assert not marker.exists()


def test_the_valid_batch_payload_is_live_under_plain_pickle(tmp_path):
    # The refusal above matters: unrestricted unpickling runs the code and returns a valid batch.
    marker = tmp_path / "marker"
    batch = pickle.loads(pickle.dumps(_valid_batch_and_touch(marker)))      # test-owned bytes
    assert marker.exists() and batch[b"data"].shape == (10, 3072)
    marker.unlink()
    (tmp_path / "test_batch").write_bytes(pickle.dumps(_valid_batch_and_touch(marker)))
    with pytest.raises(ValueError, match="builtins.eval"):
        load_local("cifar10", tmp_path, split="test")
    assert not marker.exists()


def test_table1_refuses_a_crafted_cifar_batch_with_exit_code_2(tmp_path, capsys):
    from sgdnoise.cli import main

    marker = tmp_path / "marker"
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    for i in range(1, 6):
        (directory / f"data_batch_{i}").write_bytes(pickle.dumps(_valid_batch_and_touch(marker)))
    code = main(["table1", "--root", str(tmp_path), "--dataset", "cifar10", "--classes", "3",
                 "--samples-per-class", "1", "--seeds", "1", "--epochs", "1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(directory / "data_batch_1") in err and "refused" in err
    assert "Traceback" not in err
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# corrupt files: a ValueError naming the file and what is wrong, never a raw traceback
# ---------------------------------------------------------------------------------------------

def _gzip(raw):
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(raw)
    return buffer.getvalue()


def _corrupt_deflate(raw):
    packed = bytearray(_gzip(raw))
    packed[10] = 0xFF                      # first deflate block header: the reserved block type
    return bytes(packed)


def _idx_header(*shape, code=0x08):
    return bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


_IMAGES = idx_bytes(np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28))

# (file name, bytes, what the message says)
CORRUPT_IDX = {
    "gz: not gzip": ("a-idx3-ubyte.gz", b"this is not gzip data at all", "not a valid gzip file"),
    "gz: empty": ("a-idx3-ubyte.gz", b"", "too short for an IDX header"),
    "gz: truncated": ("a-idx3-ubyte.gz", _gzip(_IMAGES)[:-30], "not a valid gzip file"),
    "gz: bad deflate": ("a-idx3-ubyte.gz", _corrupt_deflate(_IMAGES),
                        "not a valid gzip file.*invalid block type"),
    "gz: bad crc": ("a-idx3-ubyte.gz", _gzip(_IMAGES)[:-8] + bytes(8),
                    "not a valid gzip file.*CRC check failed"),
    # sizes whose product is 2**64: it wraps to 0 in int64 arithmetic, so a bare header matched
    "size wraps int64 to 0": ("a-idx4-ubyte", _idx_header(2**16, 2**16, 2**16, 2**16),
                              r"shape \(65536, 65536, 65536, 65536\)"),
    "size beyond 2**63": ("a-idx3-ubyte", _idx_header(2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\0",
                          "holds 17 bytes"),
    "255 huge dims": ("a-idx-ubyte", _idx_header(*([2**32 - 1] * 255), code=0x0E),
                      "255 dimensions of sizes up to 4294967295"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_IDX))
def test_read_idx_names_the_file_of_a_corrupt_idx(tmp_path, case):
    name, raw, match = CORRUPT_IDX[case]
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def _npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npz_with_corrupt_member():
    raw = bytearray(_npz_bytes(x_train=np.arange(200, dtype=np.uint8).reshape(2, 100),
                               y_train=np.arange(2, dtype=np.uint8)))
    start = raw.index(b"\x93NUMPY") + 128 + 10        # inside the data of the first member
    raw[start:start + 20] = b"\xff" * 20              # stored uncompressed: the CRC now fails
    return bytes(raw)


def _zip_with_raw_member():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x_train", b"not an array")
        archive.writestr("y_train.npy", _npy(np.arange(2, dtype=np.uint8)))
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


_X = np.zeros((2, 28, 28), np.uint8)
_Y = np.array([1, 2], np.uint8)
_GOOD_NPZ = _npz_bytes(x_train=_X, y_train=_Y, x_test=_X, y_test=_Y)


def _valid_cifar_batch(changes=None):
    batch = {b"batch_label": b"testing batch 1 of 1", b"data": np.zeros((10, 3072), np.uint8),
             b"labels": list(range(10)), b"filenames": []}
    return {**batch, **(changes or {})}


# (data set, file written under root, bytes, what the message says)
CORRUPT_FILES = {
    "idx gz: not gzip": ("mnist", "train-images-idx3-ubyte.gz", b"\x1f\x8b garbage",
                         "not a valid gzip file"),
    "idx gz: truncated": ("mnist", "train-images-idx3-ubyte.gz", _gzip(_IMAGES)[:40],
                          "not a valid gzip file"),
    "idx: size wraps int64": ("mnist", "train-images-idx3-ubyte",
                              _idx_header(2**22, 2**21, 2**21), "IDX header declares"),
    "idx: truncated data": ("mnist", "train-images-idx3-ubyte", _IMAGES[:-1], "holds"),
    "npz: not a zip": ("mnist", "mnist.npz", b"hello, not a zip", "not a valid .npz archive"),
    "npz: empty": ("mnist", "mnist.npz", b"", "not a valid .npz archive"),
    "npz: truncated": ("mnist", "mnist.npz", _GOOD_NPZ[: len(_GOOD_NPZ) // 2],
                       "not a valid .npz archive"),
    "npz: a pickle": ("mnist", "mnist.npz", pickle.dumps({"x_train": 1}),
                      "not a valid .npz archive"),
    "npz: a single npy": ("mnist", "mnist.npz", _npy(_X), "not an .npz archive"),
    "npz: missing arrays": ("mnist", "mnist.npz", _npz_bytes(x_test=_X, y_test=_Y), "lacks"),
    "npz: object array": ("mnist", "mnist.npz",
                          _npz_bytes(x_train=np.array([None, 1], dtype=object), y_train=_Y),
                          "object arrays need pickle"),
    "npz: corrupt member": ("mnist", "mnist.npz", _npz_with_corrupt_member(),
                            "cannot read the array 'x_train'"),
    "npz: raw member": ("mnist", "mnist.npz", _zip_with_raw_member(), "not a .npy array"),
    "npz: strings": ("mnist", "mnist.npz", _npz_bytes(x_train=np.array(["a", "b"]), y_train=_Y),
                     "real numbers"),
    "npz: 0-d": ("mnist", "mnist.npz", _npz_bytes(x_train=np.array(3), y_train=_Y),
                 "at least one dimension"),
    "cifar: not a pickle": ("cifar10", "test_batch", b"\xff\xfe not a pickle", "not a readable CIFAR-10"),
    "cifar: empty": ("cifar10", "test_batch", b"", "not a readable CIFAR-10"),
    "cifar: truncated": ("cifar10", "test_batch", pickle.dumps(_valid_cifar_batch())[:5000],
                         "not a readable CIFAR-10"),
    "cifar: object array": ("cifar10", "test_batch", pickle.dumps(_valid_cifar_batch(
        {b"data": np.array([[None] * 3072] * 10, dtype=object)})), "not a readable CIFAR-10"),
    "cifar: structured dtype": ("cifar10", "test_batch", pickle.dumps(_valid_cifar_batch(
        {b"data": np.zeros(10, dtype=[("a", "u1")])}), protocol=2), "not a readable CIFAR-10"),
    "cifar: not a dict": ("cifar10", "test_batch", pickle.dumps([1, 2, 3]), "expected a pickled"),
    "cifar: text data": ("cifar10", "test_batch", pickle.dumps(_valid_cifar_batch(
        {b"data": [["x"] * 3072] * 10})), "must hold real numbers"),
    "cifar: huge label": ("cifar10", "test_batch", pickle.dumps(_valid_cifar_batch(
        {b"labels": [2**70] * 10})), "labels must hold real numbers"),
    "cifar: persistent id": ("cifar10", "test_batch", b"\x80\x02X\x01\x00\x00\x00aQ.",
                             "not a readable CIFAR-10"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_FILES))
def test_load_local_names_the_file_of_a_corrupt_data_file(tmp_path, case):
    name, filename, raw, match = CORRUPT_FILES[case]
    path = tmp_path / filename
    path.write_bytes(raw)
    if name == "mnist" and filename.startswith("train-images"):
        write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match=match) as info:
        load_local(name, tmp_path, split="test" if name == "cifar10" else "train")
    assert str(path) in str(info.value)


def test_table1_reports_a_corrupt_gzip_file_with_exit_code_2(tmp_path, capsys):
    from sgdnoise.cli import main

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_gzip(_IMAGES)[:40])
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2], np.uint8))
    code = main(["table1", "--root", str(tmp_path), "--classes", "3", "--samples-per-class", "1",
                 "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and "not a valid gzip file" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("kwargs", "argname"),
    [
        ({"name": "svhn"}, "name"),
        ({"split": "validation"}, "split"),
        ({"flatten": "no"}, "flatten"),
        ({"standardize": 1}, "standardize"),
        ({"root": 3}, "root"),
    ],
)
def test_load_local_rejects_bad_arguments(tmp_path, kwargs, argname):
    args = {"name": "mnist", "root": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=argname):
        load_local(args.pop("name"), args.pop("root"), **args)


def test_load_local_rejects_a_file_as_root(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="root"):
        load_local("mnist", path)


def test_local_dataset_names():
    assert LOCAL_DATASETS == ("mnist", "fashion_mnist", "cifar10")


_FUZZ_BATCH = _valid_cifar_batch({b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072),
                                  b"labels": [3, 7], b"filenames": [b"a.png", b"b.png"]})
FUZZ_FILES = {
    "cifar10, protocol 2": ("cifar10", "test_batch", pickle.dumps(_FUZZ_BATCH, protocol=2)),
    "cifar10, protocol 5": ("cifar10", "test_batch", pickle.dumps(_FUZZ_BATCH, protocol=5)),
    "cifar10, python 2": ("cifar10", "test_batch", py2_cifar_pickle(_FUZZ_BATCH)),
    "mnist, gzip": ("mnist", "t10k-images-idx3-ubyte.gz", _gzip(_IMAGES)),
    "mnist, idx": ("mnist", "t10k-images-idx3-ubyte", _IMAGES),
    "mnist, npz": ("mnist", "mnist.npz", _GOOD_NPZ),
}


@pytest.mark.parametrize("case", sorted(FUZZ_FILES))
@given(data=st.data())
def test_a_damaged_data_file_loads_or_raises_a_value_error(tmp_path_factory, case, data):
    name, filename, raw = FUZZ_FILES[case]
    damaged = bytearray(raw)
    # Edits near either end hit the headers and pickle opcodes rather than the pixel bytes.
    offsets = st.one_of(st.integers(0, 300), st.integers(-300, -1))
    for offset, value in data.draw(st.lists(st.tuples(offsets, st.integers(0, 255)),
                                            max_size=4), label="edits"):
        damaged[offset % len(damaged)] = value
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(damaged))), label="truncate at")
    root = tmp_path_factory.mktemp("damaged")
    (root / filename).write_bytes(bytes(damaged[:cut]))
    if name == "mnist" and "idx" in filename:
        write_idx(root / "t10k-labels-idx1-ubyte", np.array([1, 2], np.uint8))
    try:
        loaded = load_local(name, root, split="test")
    except ValueError:
        return
    assert loaded.x.dtype == np.float64 and np.all(np.isfinite(loaded.x))
