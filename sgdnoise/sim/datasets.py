r"""Real classification data sets, read offline, with the paper's class-subset protocol.

The experiments of spec part A train networks on a subset of 𝒞 classes with a fixed number of
samples per class. Three sources are supported, none of which downloads anything:

* :func:`digits` — scikit-learn's 8×8 handwritten digits (shipped inside scikit-learn);
* :func:`mnist1d` — MNIST-1D, generated procedurally by the ``mnist1d`` package;
* :func:`load_local` — MNIST, Fashion-MNIST or CIFAR-10 from files the user already has
  (IDX files, CIFAR-10 python batches, or ``.npz`` archives).

All of them return :class:`~sgdnoise.sim.data.ClassificationData` with float64 inputs and int64
labels, and share :func:`select_classes` for the class subset and per-class subsample. Random
choices use an explicit ``numpy.random.Generator`` (or an integer seed); global random state is
never consumed, and where a third-party generator insists on seeding it (``mnist1d``) the
caller's state is saved and restored.
"""

from __future__ import annotations

import gzip
import importlib
import io
import math
import numbers
import pickle
import pickletools
import random
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise._typing import Array, FloatArray, IntArray
from sgdnoise._validate import check_choice, check_positive_int, check_rng
from sgdnoise.sim.data import ClassificationData

_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

LOCAL_DATASETS = ("mnist", "fashion_mnist", "cifar10")
"""Names accepted by :func:`load_local`."""

_NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10}
_NPZ_NAMES = {"mnist": "mnist.npz", "fashion_mnist": "fashion_mnist.npz", "cifar10": "cifar10.npz"}
_TORCHVISION_DIRS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_MNIST1D_OPTIONS = (
    "template_len",
    "padding",
    "scale_coeff",
    "max_translation",
    "corr_noise_scale",
    "iid_noise_scale",
    "shear_scale",
)


# --------------------------------------------------------------------------------------------
# class subset and per-class subsample
# --------------------------------------------------------------------------------------------

def _check_labels(y: Any, name: str = "y") -> IntArray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of integer labels; got shape {arr.shape}")
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(arr == np.round(arr))))
    if arr.size and not whole:
        raise ValueError(f"{name} must hold integer labels; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative labels; got {int(arr.min())}")
    return arr


def _check_classes(classes: Any, available: IntArray) -> IntArray:
    """Distinct integer labels (at least two), each present in ``available``."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray, range)):
        raise ValueError(f"classes must be a sequence of integer labels; got {classes!r}")
    values = list(np.asarray(classes).ravel()) if isinstance(classes, np.ndarray) else list(classes)
    for c in values:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, numbers.Integral):
            raise ValueError(f"classes must hold integer labels; got {c!r}")
    out = np.asarray([int(c) for c in values], dtype=np.int64)
    if out.size < 2:
        raise ValueError(f"classes must name at least 2 labels; got {list(out)}")
    if np.unique(out).size != out.size:
        raise ValueError(f"classes must be distinct; got {list(out)}")
    missing = np.setdiff1d(out, available)
    if missing.size:
        raise ValueError(
            f"classes contains label(s) {missing.tolist()} that do not occur in the data "
            f"(labels present: {available.tolist()})"
        )
    return out


def _selection(y: IntArray, classes: Any, samples_per_class: int | None, rng: Any,
               balanced: bool, num_labels: int) -> tuple[IntArray, IntArray]:
    """Indices into ``y`` (ascending) and the class list, by the rules of :func:`select_classes`.

    ``classes=None`` means every label ``0..num_labels-1``; labels absent from ``y`` then simply
    contribute no samples (an explicit ``classes`` must be present).
    """
    if classes is None:
        classes = np.arange(num_labels, dtype=np.int64)
        required = np.zeros(num_labels, dtype=bool)
        required[np.unique(y)] = True
    else:
        classes = _check_classes(classes, np.unique(y))
        required = np.ones(classes.size, dtype=bool)
    if samples_per_class is not None:
        samples_per_class = check_positive_int(samples_per_class, "samples_per_class")
    gen = np.random.default_rng(0) if rng is None else check_rng(rng)
    if not isinstance(balanced, (bool, np.bool_)):
        raise ValueError(f"balanced must be True or False; got {balanced!r}")
    members = [np.flatnonzero(y == c) for c in classes]
    if samples_per_class is None:
        idx = np.sort(np.concatenate(members))
    elif balanced:
        short = [(int(c), m.size) for c, m, r in zip(classes, members, required, strict=True)
                 if r and m.size < samples_per_class]
        if short:
            listing = ", ".join(f"class {c} has {n}" for c, n in short)
            raise ValueError(
                f"samples_per_class={samples_per_class} exceeds the samples available ({listing})"
            )
        picks = [gen.choice(m, size=samples_per_class, replace=False)
                 for m, r in zip(members, required, strict=True) if r]
        idx = np.sort(np.concatenate(picks))
    else:
        pool = np.concatenate(members)
        wanted = samples_per_class * int(required.sum())
        if pool.size < wanted:
            raise ValueError(
                f"samples_per_class={samples_per_class} asks for {wanted} samples of classes "
                f"{classes[required].tolist()}, but only {pool.size} are available"
            )
        idx = np.sort(gen.permutation(pool)[:wanted])
    return idx.astype(np.int64), classes


def _relabel(y: IntArray, classes: IntArray, relabel: bool,
             num_classes: int) -> tuple[IntArray, int]:
    if not isinstance(relabel, (bool, np.bool_)):
        raise ValueError(f"relabel must be True or False; got {relabel!r}")
    if not relabel:
        return y.astype(np.int64), num_classes
    lookup = np.full(int(max(classes.max(), y.max())) + 1, -1, dtype=np.int64)
    lookup[classes] = np.arange(classes.size)
    return lookup[y], int(classes.size)


def select_classes(x: Any, y: Any, classes: Sequence[int] | None = None,
                   samples_per_class: int | None = None, *,
                   rng: np.random.Generator | int | None = None, relabel: bool = True,
                   balanced: bool = True) -> ClassificationData:
    r"""Keep a subset of classes and optionally a fixed number of samples of each.

    Parameters
    ----------
    x : (N, ...) array
        Inputs; converted to float64 after selection (any trailing shape is kept).
    y : (N,) int array
        Labels (non-negative integers).
    classes : sequence of int, optional
        The labels to keep (at least two, distinct, each present in ``y``). With ``relabel`` they
        become ``0, 1, …, k−1`` *in the order given*, so ``classes=(7, 1)`` maps 7 → 0, 1 → 1.
        Default: every label ``0, 1, …, max(y)`` (labels unchanged, ``num_classes = max(y) + 1``;
        a label absent from ``y`` contributes no samples).
    samples_per_class : int, optional
        Number of samples of each kept class, drawn without replacement. A class with fewer
        samples raises ``ValueError``. Default: all of them.
    rng : numpy.random.Generator or int, optional
        Randomness of the subsample (used only with ``samples_per_class``). ``None`` means the seed
        0, so that the same call always returns the same subset; global state is never used.
    relabel : bool
        Map ``classes`` to ``0..k−1`` and report ``num_classes = k`` (default). ``False`` keeps the
        original labels and reports ``num_classes = max(y) + 1`` over the full ``y``, as the
        authors' code does (a 10-output network trained on a subset of the digits).
    balanced : bool
        ``True`` (default): exactly ``samples_per_class`` samples of every class. ``False``: the
        authors' protocol — shuffle, then keep the first ``samples_per_class × k`` samples whose
        label is in ``classes`` (balanced only on average).

    Returns
    -------
    ClassificationData
        ``x`` float64, ``y`` int64, the selected samples in their original order.

    Raises
    ------
    ValueError
        Naming the argument: mismatched lengths, unknown or repeated classes, a non-positive or too
        large ``samples_per_class``.

    References
    ----------
    Zhang, Yang & Tu, arXiv:2602.05600 (spec part A, "Experiments": 𝒞 ∈ {3, 6, 10} classes with
    2000–5000 samples per class); the authors' ``sub_set_task`` (repository Yikuan-PKU/AWCH) for
    the unbalanced variant.
    """
    x_arr = np.asarray(x)
    y_arr = _check_labels(y)
    if x_arr.ndim < 1 or x_arr.shape[0] != y_arr.shape[0]:
        raise ValueError(
            f"x must have one row per label: x has shape {x_arr.shape}, "
            f"y has {y_arr.shape[0]} labels"
        )
    if y_arr.size == 0:
        raise ValueError("y must hold at least one label")
    num_labels = int(y_arr.max()) + 1
    idx, kept = _selection(y_arr, classes, samples_per_class, rng, balanced, num_labels)
    labels, num_classes = _relabel(y_arr[idx], kept, relabel, num_labels)
    x_sel = _as_float64(x_arr[idx], "x")
    return ClassificationData(x=x_sel, y=labels, num_classes=num_classes)


def _as_float64(x: Array, name: str) -> FloatArray:
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real numeric array; got dtype {x.dtype}") from exc
    if out.size and not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return out


def _standardize(x: FloatArray) -> FloatArray:
    """Per-feature z-score; constant features are centred (left at 0), never divided by 0."""
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    return ((flat - mean) / scale).reshape(x.shape)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------------

def digits(*, classes: Sequence[int] | None = None, samples_per_class: int | None = None,
           rng: np.random.Generator | int | None = None, standardize: bool = True,
           relabel: bool = True, balanced: bool = True) -> ClassificationData:
    r"""scikit-learn's handwritten digits: 1797 images of 8×8 pixels, 10 classes, 64 features.

    The images ship inside scikit-learn (``sklearn.datasets.load_digits``); nothing is downloaded.
    Pixels (integers 0–16) are divided by 16 so that inputs lie in [0, 1]; with ``standardize``
    each feature is then centred and scaled to unit variance *over the selected samples*
    (features that are constant there, such as the always-blank corner pixels, are only centred).
    It stands in offline for the paper's MNIST.

    Parameters
    ----------
    classes, samples_per_class, rng, relabel, balanced
        As in :func:`select_classes` (each class has 174–183 samples).
    standardize : bool
        Per-feature z-score after selection (default ``True``).

    Returns
    -------
    ClassificationData
        ``x`` (n, 64) float64, ``y`` (n,) int64.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.

    References
    ----------
    E. Alpaydin & C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning
    Repository (1998), the test set shipped as ``sklearn.datasets.load_digits``; Pedregosa et al.,
    JMLR 12, 2825 (2011). Spec part A, "Experiments".
    """
    standardize = _check_bool(standardize, "standardize")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "digits() needs scikit-learn, which ships the 8x8 digit images: "
            "pip install scikit-learn"
        ) from exc
    bunch = load_digits()
    data = select_classes(np.asarray(bunch.data, dtype=np.float64) / 16.0, bunch.target,
                          classes, samples_per_class, rng=rng, relabel=relabel, balanced=balanced)
    x = _standardize(data.x) if standardize else data.x
    return data._replace(x=x)


# --------------------------------------------------------------------------------------------
# MNIST-1D
# --------------------------------------------------------------------------------------------

def mnist1d(*, num_samples: int = 5000, classes: Sequence[int] | None = None,
            samples_per_class: int | None = None, seed: int = 0,
            rng: np.random.Generator | int | None = None, return_test: bool = False,
            train_split: float = 0.8, final_seq_length: int = 40, shuffle_seq: bool = False,
            options: Mapping[str, Any] | None = None,
            relabel: bool = True, balanced: bool = True
            ) -> ClassificationData | tuple[ClassificationData, ClassificationData]:
    r"""MNIST-1D, generated procedurally (10 classes of 1-d signals, 40 features by default).

    Calls ``mnist1d.data.make_dataset`` with ``get_dataset_args(as_dict=False)`` updated by the
    arguments below; nothing is downloaded and nothing is written to disk. The generator makes
    ``num_samples // 10`` signals per digit template, shuffles them, centres and scales the whole
    set to zero mean and unit standard deviation, and splits it into a training part (the first
    ``train_split`` fraction) and a test part; class counts in each part are therefore only
    approximately equal.

    **Global random state.** ``mnist1d`` draws from numpy's *global* generator and seeds it (and
    Python's ``random`` module) with ``seed`` inside ``make_dataset``. This function saves both
    states before the call and restores them afterwards (also on error), so the caller's global
    random streams are left exactly as they were. Because the state is global, do not generate
    MNIST-1D from several threads at once.

    Parameters
    ----------
    num_samples : int
        Total number of signals before the train/test split (≥ 10; the package default is 5000).
    classes, samples_per_class, relabel, balanced
        As in :func:`select_classes`, applied to the training split. The test split keeps every
        test sample of the selected classes (the protocol of the paper's code), relabelled the
        same way.
    seed : int
        Seed of the generator (the package itself defaults to 42).
    rng : numpy.random.Generator or int, optional
        Randomness of the per-class subsample; default ``numpy.random.default_rng(seed)``.
    return_test : bool
        Also return the test split, as ``(train, test)``.
    train_split : float
        Fraction of the signals in the training split, in (0, 1).
    final_seq_length : int
        Length of each signal (number of features).
    shuffle_seq : bool
        Apply one fixed random permutation to the feature axis (removes spatial structure).
    options : mapping, optional
        Further generator settings by name: ``template_len``, ``padding``, ``scale_coeff``,
        ``max_translation``, ``corr_noise_scale``, ``iid_noise_scale``, ``shear_scale``.

    Returns
    -------
    ClassificationData or (ClassificationData, ClassificationData)
        ``x`` (n, final_seq_length) float64, ``y`` (n,) int64.

    Raises
    ------
    ImportError
        If the ``mnist1d`` package is not installed.

    References
    ----------
    S. Greydanus & D. Kobak, "Scaling Down Deep Learning with MNIST-1D", ICML 2024,
    arXiv:2011.14439. Spec part A, "Experiments".
    """
    num_samples = check_positive_int(num_samples, "num_samples", minimum=10)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32); got {seed!r}")
    seed = int(seed)
    return_test = _check_bool(return_test, "return_test")
    if isinstance(train_split, bool) or not isinstance(train_split, numbers.Real) \
            or not 0 < float(train_split) < 1:
        raise ValueError(f"train_split must be a number in (0, 1); got {train_split!r}")
    final_seq_length = check_positive_int(final_seq_length, "final_seq_length", minimum=2)
    shuffle_seq = _check_bool(shuffle_seq, "shuffle_seq")
    extra = dict(options or {})
    unknown = sorted(set(extra) - set(_MNIST1D_OPTIONS))
    if unknown:
        raise ValueError(
            f"options has unknown key(s) {unknown}; allowed: {', '.join(_MNIST1D_OPTIONS)}"
        )
    split_ix = int(num_samples // 10 * 10 * float(train_split))
    if split_ix < 1 or split_ix >= num_samples // 10 * 10:
        raise ValueError(
            f"train_split={train_split} leaves an empty train or test split of "
            f"{num_samples} samples"
        )
    selection_rng = np.random.default_rng(seed) if rng is None else check_rng(rng)

    try:
        generator = importlib.import_module("mnist1d.data")
    except ImportError as exc:
        raise ImportError(
            "mnist1d() needs the mnist1d package, which generates the data: pip install mnist1d"
        ) from exc
    args = generator.get_dataset_args(as_dict=False)
    args.num_samples = num_samples
    args.seed = seed
    args.train_split = float(train_split)
    args.final_seq_length = final_seq_length
    args.shuffle_seq = shuffle_seq
    for key, value in extra.items():
        setattr(args, key, value)

    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        raw = generator.make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)

    y_train = _check_labels(raw["y"], "y")
    idx, kept = _selection(y_train, classes, samples_per_class, selection_rng, balanced, 10)
    labels, num_classes = _relabel(y_train[idx], kept, relabel, 10)
    train = ClassificationData(x=_as_float64(np.asarray(raw["x"])[idx], "x"), y=labels,
                               num_classes=num_classes)
    if not return_test:
        return train
    y_test = _check_labels(raw["y_test"], "y_test")
    test_idx = np.flatnonzero(np.isin(y_test, kept))
    test_labels, _ = _relabel(y_test[test_idx], kept, relabel, 10)
    test = ClassificationData(x=_as_float64(np.asarray(raw["x_test"])[test_idx], "x"),
                              y=test_labels, num_classes=num_classes)
    return train, test


# --------------------------------------------------------------------------------------------
# local files: IDX, CIFAR-10 python batches, npz
# --------------------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ``.gz``.

    I/O errors (a missing or unreadable file) propagate as ``OSError``; a ``.gz`` file that is not
    a complete gzip stream raises ``ValueError`` naming the path.
    """
    raw = path.read_bytes()
    if not path.name.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        reason = ("truncated: the compressed stream ends early" if isinstance(exc, EOFError)
                  else str(exc))
        raise ValueError(f"path {path}: not a valid gzip file ({reason})") from exc


def read_idx(path: str | Path, *, ndim: int | None = None) -> Array:
    r"""Read one IDX file (the format of the MNIST and Fashion-MNIST distributions).

    The header is a big-endian magic number ``0x0000TTNN`` — two zero bytes, a type code ``TT``
    (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
    float64) and the number of dimensions ``NN`` — followed by ``NN`` big-endian uint32 sizes and
    the data in C order, big-endian. MNIST images have magic 2051 (uint8, 3 dimensions), labels
    2049 (uint8, 1 dimension). A name ending in ``.gz`` is decompressed.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    ndim : int, optional
        Required number of dimensions (checked against the magic number).

    Returns
    -------
    numpy.ndarray
        The data in native byte order, with the dtype of the type code.

    Raises
    ------
    ValueError
        Naming the path: the magic number is malformed or unexpected, the file length disagrees
        with the sizes in its header (computed exactly, however large the sizes), or a ``.gz``
        file is not a complete gzip stream.

    References
    ----------
    Y. LeCun, C. Cortes & C. J. C. Burges, "The MNIST database of handwritten digits" (file
    format section of the distribution page, 1998).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"path {path}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    type_code, dims = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in _IDX_DTYPES or dims == 0:
        raise ValueError(
            f"path {path}: bad IDX magic number 0x{magic:08X} ({magic}); expected 0x0000TTNN with "
            f"type code TT in {{{', '.join(f'0x{t:02X}' for t in _IDX_DTYPES)}}} and NN >= 1 "
            f"dimensions (MNIST: 2051 for images, 2049 for labels)"
        )
    if ndim is not None and dims != ndim:
        raise ValueError(
            f"path {path}: IDX magic number {magic} declares {dims} dimension(s); expected {ndim} "
            f"(magic {0x0800 + ndim} for uint8 data)"
        )
    header = 4 + 4 * dims
    if len(raw) < header:
        raise ValueError(f"path {path}: truncated IDX header ({len(raw)} bytes < {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    dtype = _IDX_DTYPES[type_code]
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        declared = f"shape {shape}" if dims <= 8 else f"{dims} dimensions of sizes up to {max(shape)}"
        raise ValueError(
            f"path {path}: IDX header declares {declared} of {dtype.name} ({expected} bytes in "
            f"all) but the file holds {len(raw)} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(directories: Sequence[Path], name: str) -> Path | None:
    """``name`` or ``name.gz`` in the first directory holding either (plain file preferred)."""
    for directory in directories:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _missing(name: str, root: Path, directories: Sequence[Path], split: str) -> FileNotFoundError:
    where = " and ".join(str(d) for d in directories)
    npz = _NPZ_NAMES[name]
    npz_note = (f"or {npz} (a numpy archive with keys x_train, y_train, x_test, y_test, as Keras "
                f"ships it)")
    if name == "cifar10":
        batches = ", ".join(_CIFAR_FILES["train"] + _CIFAR_FILES["test"])
        return FileNotFoundError(
            f"cifar10 ({split} split): no data found. Searched {root / _CIFAR_DIR} and {root} for "
            f"the CIFAR-10 python batches {batches}, and {root} for {npz}. Place the extracted "
            f"directory {_CIFAR_DIR}/ (from the 'CIFAR-10 python version' archive "
            f"cifar-10-python.tar.gz of A. Krizhevsky's CIFAR page) in {root}, {npz_note}."
        )
    files = [f"{_IDX_PREFIX[s]}-{kind}-idx{d}-ubyte"
             for s in ("train", "test") for kind, d in (("images", 3), ("labels", 1))]
    label = "MNIST" if name == "mnist" else "Fashion-MNIST"
    return FileNotFoundError(
        f"{name} ({split} split): no data found. Searched {where} for the {label} IDX files "
        f"{', '.join(files)} (each optionally gzipped, .gz), and {root} for {npz}. Place the four "
        f"{label} IDX files (optionally .gz) in {root}, {npz_note}; torchvision's layout "
        f"{root / _TORCHVISION_DIRS[name] / 'raw'} is also searched."
    )


def _load_idx_pair(directories: Sequence[Path], split: str) -> tuple[Array, Array] | None:
    prefix = _IDX_PREFIX[split]
    images = _find(directories, f"{prefix}-images-idx3-ubyte")
    labels = _find(directories, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    x = read_idx(images, ndim=3)
    y = read_idx(labels, ndim=1)
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise ValueError(
            f"path {images.parent}: MNIST-style IDX files hold uint8 data (magic 2051, 2049); got "
            f"{x.dtype} images and {y.dtype} labels"
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"path {images.parent}: {images.name} holds {x.shape[0]} images but {labels.name} "
            f"holds {y.shape[0]} labels"
        )
    return x, y


# CIFAR-10 python batches are pickles. They are read by an unpickler that resolves only the few
# globals numpy's array pickling uses, each to a checked stand-in built here: no function named by
# the file is ever called, and numpy never sees state from the file (arrays are rebuilt from raw
# bytes with np.frombuffer after their sizes are checked).

_ARRAY_KINDS = "biufcSU"  # fixed-size numbers and strings: never Python objects
_MAX_NDIM = 32


class _RefusedGlobal(Exception):
    """A pickle named a global outside the admitted set."""


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""

    __slots__ = ()


class _DtypeStub:
    """``numpy.dtype(typestr, align, copy)`` plus its pickled state, resolved by :meth:`dtype`."""

    __slots__ = ("_args", "_state")

    def __init__(self, *args: Any) -> None:
        if not 1 <= len(args) <= 3 or not isinstance(args[0], (str, bytes)):
            raise ValueError(f"numpy.dtype arguments must start with a type string; got {args!r}")
        self._args = args
        self._state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def dtype(self) -> np.dtype:
        code = self._args[0]
        text = code.decode("latin-1") if isinstance(code, bytes) else code
        if re.fullmatch(r"[biufcSU][0-9]{1,6}", text) is None:  # kind and size, as numpy writes
            raise ValueError(f"dtype {text!r} is not a plain array type of numbers or strings")
        dtype = np.dtype(text)
        if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"dtype {text!r} ({dtype}) is not an array type of numbers or strings")
        state = self._state
        if state is None:
            return dtype
        if (not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4)
                or any(part is not None for part in state[2:5])
                or (len(state) == 9 and state[8] is not None)):
            raise ValueError(f"dtype {text!r}: unsupported pickled state {state!r}")
        order = state[1].decode("latin-1") if isinstance(state[1], bytes) else state[1]
        if order in ("<", ">"):
            return dtype.newbyteorder(order)
        if order in ("|", "="):
            return dtype
        raise ValueError(f"dtype {text!r}: unknown byte order {order!r}")


def _as_dtype(value: Any) -> np.dtype:
    if isinstance(value, _DtypeStub):
        return value.dtype()
    raise ValueError(f"expected a pickled numpy dtype; got {type(value).__name__}")


def _shape(value: Any) -> tuple[int, ...]:
    if (not isinstance(value, tuple) or len(value) > _MAX_NDIM
            or not all(type(n) is int and n >= 0 for n in value)):
        raise ValueError(f"array shape must be a tuple of non-negative ints; got {value!r}")
    return value


def _array_from_bytes(raw: Any, dtype_value: Any, shape_value: Any, fortran: bool) -> Array:
    dtype = _as_dtype(dtype_value)
    shape = _shape(shape_value)
    if not isinstance(raw, (bytes, bytearray)):
        raise ValueError(f"array data must be raw bytes; got {type(raw).__name__}")
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        raise ValueError(f"array of shape {shape} and dtype {dtype} needs {expected} bytes of "
                         f"data; the pickle holds {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


class _ArrayStub:
    """What ``_reconstruct(ndarray, ...)`` returns; ``__setstate__`` builds the array."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: Array | None = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4 or not isinstance(state[2], bool):
            raise ValueError("unsupported pickled numpy array state")
        shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, dtype, shape, fortran)


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _ArrayStub:
    if not isinstance(subtype, _NdarrayClass):
        raise ValueError(f"_reconstruct may only build numpy.ndarray; got {type(subtype).__name__}")
    return _ArrayStub()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Array:
    if order not in ("C", "F", b"C", b"F"):
        raise ValueError(f"array order must be 'C' or 'F'; got {order!r}")
    return _array_from_bytes(buf, dtype, shape, order in ("F", b"F"))


def _scalar(dtype: Any, raw: Any) -> Any:
    return _array_from_bytes(raw, dtype, (), False)[()]


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # How Python 3 spells bytes in a protocol-2 pickle: _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode is admitted only as encode(str, 'latin1')")
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    # How Python 3 spells b"" in a protocol-2 pickle: bytes().
    if args:
        raise ValueError("bytes is admitted only without arguments (the empty bytes object)")
    return b""


_ADMITTED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _DtypeStub,
    ("_codecs", "encode"): _codecs_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR-10 batches: only numpy arrays, numbers, bytes, str and containers."""

    def find_class(self, module: str, name: str) -> Any:
        target = _ADMITTED_GLOBALS.get((module, name))
        if target is None:
            raise _RefusedGlobal(f"{module}.{name}")
        if target is _NdarrayClass:
            return _NdarrayClass()

        # A fresh function per reference: the pickle may set attributes on what it receives
        # (BUILD), and must not reach anything shared with other loads or the module.
        def admitted(*args: Any) -> Any:
            return target(*args)

        return admitted


def _resolve(value: Any) -> Any:
    """Replace the array and dtype stand-ins in an unpickled structure by numpy objects."""
    if isinstance(value, _ArrayStub):
        if value.array is None:
            raise ValueError("a pickled numpy array has no data")
        return value.array
    if isinstance(value, _DtypeStub):
        return value.dtype()
    if isinstance(value, dict):
        return {_resolve(k): _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_resolve(v) for v in value)
    return value


def _unpickle(path: Path) -> Mapping[Any, Any]:
    """A CIFAR-10 python batch, read by :class:`_BatchUnpickler` (never by ``pickle.load``).

    The opcodes are first parsed without being run (``pickletools.genops``), so that a length
    field larger than the file is refused before anything is allocated for it.
    """
    raw = path.read_bytes()
    try:
        for _ in pickletools.genops(raw):
            pass
        batch = _resolve(_BatchUnpickler(io.BytesIO(raw), encoding="bytes").load())
    except _RefusedGlobal as exc:
        raise ValueError(
            f"path {path}: refused to load the global {exc} from this pickle; a CIFAR-10 batch "
            f"holds only numpy arrays, numbers, bytes, str and builtin containers, and nothing "
            f"else is ever loaded from a data file"
        ) from None
    except Exception as exc:  # the bytes are untrusted: any failure is the file's
        raise ValueError(
            f"path {path}: not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(batch, Mapping):
        raise ValueError(f"path {path}: expected a pickled dict, got {type(batch).__name__}")
    return batch


def _numeric_array(value: Any, what: str, path: Path) -> Array:
    """``value`` as a real numeric array, or a ``ValueError`` naming the file and the entry."""
    try:
        arr = np.asarray(value)
    except (OverflowError, TypeError, ValueError) as exc:
        raise ValueError(f"path {path}: {what} is not a numeric array ({exc})") from exc
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"path {path}: {what} must hold real numbers; got dtype {arr.dtype}")
    return arr


def _batch_entry(batch: Mapping[Any, Any], key: str, path: Path) -> Any:
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise ValueError(f"path {path}: CIFAR-10 batch has no {key!r} entry (keys: {list(batch)})")


def _load_cifar_batches(root: Path, split: str) -> tuple[Array, Array] | None:
    for directory in (root / _CIFAR_DIR, root):
        paths = [directory / f for f in _CIFAR_FILES[split]]
        if not all(p.is_file() for p in paths):
            continue
        xs, ys = [], []
        for path in paths:
            batch = _unpickle(path)
            data = _numeric_array(_batch_entry(batch, "data", path), "data", path)
            labels = _numeric_array(_batch_entry(batch, "labels", path), "labels", path)
            if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
                raise ValueError(
                    f"path {path}: CIFAR-10 batch must hold data (n, 3072) and n labels; got "
                    f"data {data.shape} and labels {labels.shape}"
                )
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(labels)
        return np.concatenate(xs), np.concatenate(ys)
    return None


def _npz_member(archive: Any, key: str, path: Path) -> Array:
    """One array of an open ``.npz`` archive, read without pickle, as a real numeric array."""
    try:
        value = archive[key]
    except Exception as exc:  # the bytes are untrusted: any failure is the file's
        hint = ("; object arrays need pickle, which is never used on data files: store numeric "
                "arrays" if "allow_pickle" in str(exc) else "")
        raise ValueError(
            f"path {path}: cannot read the array {key!r} ({type(exc).__name__}: {exc}){hint}"
        ) from exc
    if not isinstance(value, np.ndarray):
        raise ValueError(f"path {path}: member {key!r} is not a .npy array")
    if value.ndim == 0 or value.dtype.kind not in "biuf":
        raise ValueError(
            f"path {path}: {key} must be an array of real numbers with at least one dimension; "
            f"got dtype {value.dtype} and shape {value.shape}"
        )
    return value


def _load_npz(path: Path, split: str, name: str) -> tuple[Array, Array]:
    keys = ("x_train", "y_train") if split == "train" else ("x_test", "y_test")
    with path.open("rb") as handle:  # I/O errors propagate; what follows parses the bytes
        try:
            archive = np.load(handle, allow_pickle=False)
        except Exception as exc:  # the bytes are untrusted: any failure is the file's
            raise ValueError(
                f"path {path}: not a valid .npz archive ({type(exc).__name__}: {exc})"
            ) from exc
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(
                f"path {path}: not an .npz archive (a single .npy array); expected a zip of "
                f"x_train, y_train, x_test, y_test as numpy.savez writes it"
            )
        with archive:
            absent = [k for k in keys if k not in archive.files]
            if absent:
                raise ValueError(
                    f"path {path}: archive lacks {absent}; expected keys x_train, y_train, "
                    f"x_test, y_test (has {archive.files})"
                )
            x = _npz_member(archive, keys[0], path)
            y = _npz_member(archive, keys[1], path).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"path {path}: {keys[0]} has {x.shape[0]} rows but {keys[1]} {y.shape[0]}")
    if name == "cifar10" and x.shape[1:] == (32, 32, 3):
        x = np.moveaxis(x, -1, 1)  # Keras stores channels last; use the batches' (3, 32, 32)
    return x, y


def load_local(name: str, root: str | Path, *, split: str = "train",
               classes: Sequence[int] | None = None, samples_per_class: int | None = None,
               rng: np.random.Generator | int | None = None, flatten: bool = True,
               standardize: bool = False, relabel: bool = True,
               balanced: bool = True) -> ClassificationData:
    r"""MNIST, Fashion-MNIST or CIFAR-10 from files already on disk (nothing is downloaded).

    Files searched, in this order:

    - ``"mnist"``, ``"fashion_mnist"``: the IDX files ``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte`` (``split="train"``) or ``t10k-images-idx3-ubyte``,
      ``t10k-labels-idx1-ubyte`` (``split="test"``), each optionally gzipped (``.gz``), in
      ``root`` or torchvision's ``root/MNIST/raw`` (``root/FashionMNIST/raw``); otherwise
      ``root/mnist.npz`` (``root/fashion_mnist.npz``) with keys ``x_train, y_train, x_test,
      y_test`` as Keras ships it. Images are 28×28.
    - ``"cifar10"``: the python batches ``data_batch_1`` … ``data_batch_5`` (train) or
      ``test_batch`` (test) in ``root/cifar-10-batches-py`` or ``root`` — pickled dicts with
      ``b"data"`` (n, 3072) uint8, channel-major, and ``b"labels"``; otherwise
      ``root/cifar10.npz`` (keys as above; channels-last images (n, 32, 32, 3) are moved to
      channels-first). Images are 3×32×32. The batches are Python pickles; they are read by a
      restricted unpickler that admits only numpy arrays (of numbers or fixed-size strings),
      numbers, bytes, str and builtin containers, and refuses any other global a file names
      (a function, a class, a module) with a ``ValueError``: loading a batch never runs code
      from it. ``.npz`` archives are read with ``allow_pickle=False``.

    Integer pixels are divided by 255 (inputs in [0, 1]); floating-point pixels in an ``.npz``
    are kept as stored. Selection happens before conversion to float64, so that only the chosen
    samples are ever expanded.

    Parameters
    ----------
    name : {"mnist", "fashion_mnist", "cifar10"}
    root : str or pathlib.Path
        Directory holding the files.
    split : {"train", "test"}
    classes, samples_per_class, rng, relabel, balanced
        As in :func:`select_classes`, applied to the loaded split.
    flatten : bool
        Return ``x`` as (n, d) (default; CIFAR-10 flattened channel-major, d = 3072, as
        ``torchvision``'s tensors are) or keep the image shape, (n, 28, 28) or (n, 3, 32, 32).
    standardize : bool
        Per-feature z-score over the selected samples (default ``False``: inputs stay in [0, 1]).

    Returns
    -------
    ClassificationData

    Raises
    ------
    FileNotFoundError
        If no complete set of files is found; the message names every expected file, the
        directories searched and where to put them.
    ValueError
        On a bad argument, or on a malformed or corrupt file, naming the file and what is wrong:
        a wrong IDX magic number, sizes that disagree with the header, a ``.gz`` file that is not
        a complete gzip stream, an ``.npz`` that is not a zip of numeric ``.npy`` arrays (object
        arrays are refused, never unpickled), a CIFAR-10 batch that is not a readable pickle or
        names a global outside the admitted set, images and labels of different lengths, labels
        outside 0–9.

    References
    ----------
    Y. LeCun, C. Cortes & C. J. C. Burges, "The MNIST database of handwritten digits" (1998);
    H. Xiao, K. Rasul & R. Vollgraf, "Fashion-MNIST", arXiv:1708.07747 (2017); A. Krizhevsky,
    "Learning Multiple Layers of Features from Tiny Images", tech. report, Univ. Toronto (2009).
    Spec part A, "Experiments" (Zhang, Yang & Tu, arXiv:2602.05600).
    """
    name = check_choice(name, "name", LOCAL_DATASETS)
    split = check_choice(split, "split", ("train", "test"))
    flatten = _check_bool(flatten, "flatten")
    standardize = _check_bool(standardize, "standardize")
    if not isinstance(root, (str, Path)):
        raise ValueError(f"root must be a directory path; got {root!r}")
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise ValueError(f"root must be a directory; got the file {root}")

    loaded: tuple[Array, Array] | None
    if name == "cifar10":
        directories = [root / _CIFAR_DIR, root]
        loaded = _load_cifar_batches(root, split)
    else:
        directories = [root, root / _TORCHVISION_DIRS[name] / "raw"]
        loaded = _load_idx_pair(directories, split)
    if loaded is None:
        npz = root / _NPZ_NAMES[name]
        if not npz.is_file():
            raise _missing(name, root, directories, split)
        loaded = _load_npz(npz, split, name)
    x_raw, y_raw = loaded

    y = _check_labels(y_raw, "y")
    num_classes = _NUM_CLASSES[name]
    if y.size == 0:
        raise ValueError(f"{name} ({split} split) in {root} holds no samples")
    if y.max() >= num_classes:
        raise ValueError(f"{name} labels must lie in 0..{num_classes - 1}; found {int(y.max())}")
    idx, kept = _selection(y, classes, samples_per_class, rng, balanced, num_classes)
    labels, num_classes = _relabel(y[idx], kept, relabel, num_classes)
    x_sel = np.asarray(x_raw)[idx]
    is_integer = np.issubdtype(x_sel.dtype, np.integer)
    x = _as_float64(x_sel, "x")
    if is_integer:
        x /= 255.0
    if flatten:
        x = x.reshape(x.shape[0], -1)
    if standardize:
        x = _standardize(x)
    return ClassificationData(x=x, y=labels, num_classes=num_classes)


__all__ = ["LOCAL_DATASETS", "digits", "load_local", "mnist1d", "read_idx", "select_classes"]
