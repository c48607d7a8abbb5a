"""Input checks that raise a ``ValueError`` naming the offending argument.

Every public function validates once, at the boundary, so that kernels can assume clean float64
input and a user never receives a silent NaN.  Finite input can still produce a result beyond the
float64 range; two helpers keep that from passing silently:

* :func:`pow2_exponent` picks a power of two that brings an argument near unit scale.  Scaling
  by a power of two is exact (barring subnormals), so a function that is homogeneous in an
  argument computes in the scaled form and scales back, with bit-identical results for inputs of
  ordinary size (which are left unscaled).
* :func:`check_finite_result` raises :class:`NonFiniteResultError` (a ``ValueError`` and a
  ``FloatingPointError``) naming the argument when a result is not finite.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from sgdnoise._typing import FloatArray


def as_float_array(x: Any, name: str, *, ndim: int | tuple[int, ...] | None = None,
                   dtype: Any = np.float64) -> FloatArray:
    """Return ``x`` as a float array of ``dtype`` (float64 by default), checking dimension and
    finiteness; values beyond the range of a narrower dtype become inf and are refused."""
    dtype = np.dtype(dtype)
    try:
        with np.errstate(over="ignore"):  # out-of-range values become inf, refused below
            arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real numeric array; got {type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(str(a) for a in allowed)} dimension(s); "
                f"got shape {arr.shape}"
            )
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        if dtype == np.float64:
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
        raise ValueError(
            f"{name} contains {bad} value(s) that are not finite in {dtype} (NaN, inf "
            f"or beyond ±{float(np.finfo(dtype).max):.3g})"
        )
    return arr


class NonFiniteResultError(ValueError, FloatingPointError):
    """A result that is not representable in float64 (overflow, or inf − inf) for finite input.

    Both a ``ValueError`` (the input is outside the range the function can represent) and a
    ``FloatingPointError`` (what ``numpy.errstate(all="raise")`` would have raised).
    """


#: Magnitudes within [2**-POW2_LIMIT, 2**POW2_LIMIT] are left unscaled by :func:`pow2_exponent`:
#: products of up to about fifteen such factors stay far inside the float64 range.
POW2_LIMIT = 64


def pow2_exponent(*arrays: Any, limit: int = POW2_LIMIT) -> int:
    """An exponent e such that ``x * 2.0**-e`` has its largest magnitude in [0.5, 1).

    Returns 0 (no scaling) when the largest magnitude over ``arrays`` is zero or already lies
    within [2**-limit, 2**limit], so ordinary inputs are never touched.  Multiplying by 2**-e
    (``numpy.ldexp``) is exact unless it produces subnormals.
    """
    top = 0.0
    for x in arrays:
        arr = np.asarray(x, dtype=np.float64)
        if arr.size:
            top = max(top, float(np.max(np.abs(arr))))
    if top == 0.0 or not np.isfinite(top):
        return 0
    e = int(np.frexp(top)[1])  # top = f · 2**e with 0.5 <= f < 1
    return e if abs(e) > limit else 0


def scale_pow2(x: Any, e: int) -> Any:
    """``x · 2**e`` (exact barring subnormals); x unchanged when e = 0.  Overflow gives inf,
    silently: pass the result through :func:`check_finite_result`."""
    if e == 0:
        return x
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(x, e)


def check_finite_result(x: Any, name: str, what: str) -> Any:
    """Return ``x`` if every entry is finite, else raise :class:`NonFiniteResultError`.

    Parameters
    ----------
    x : float or array
        The computed result (or an intermediate whose overflow would spoil it).
    name : str
        The argument(s) whose size caused it, e.g. ``"G and a"``.
    what : str
        The quantity, e.g. ``"M = E_p[h_p²]"``.
    """
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and arr.size and not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteResultError(
            f"{name}: {what} is not representable in float64 ({bad} entry(ies) overflow or "
            f"are undefined); the magnitudes of {name} are too extreme for this computation"
        )
    return x


def check_square_stack(h: Any, name: str) -> FloatArray:
    """A stack of square matrices, shape (N, D, D) with N ≥ 1."""
    arr = as_float_array(h, name, ndim=3)
    if arr.shape[1] != arr.shape[2]:
        raise ValueError(f"{name} must have shape (N, D, D); got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must hold at least one non-empty matrix; got shape {arr.shape}")
    return arr


def check_symmetric(a: FloatArray, name: str, *, rtol: float = 1e-8) -> None:
    """Raise unless ``a`` (a matrix or a stack of matrices) is symmetric to ``rtol``.

    Stacks are checked in blocks through one reused buffer, so a (N, n, n) stack costs no
    temporary of its own size.  A difference a_ij − a_ji beyond the float64 range counts as
    infinitely asymmetric.
    """
    with np.errstate(over="ignore"):
        scale, asym = _asymmetry(a)
    scale = max(scale, np.finfo(np.float64).tiny)
    if asym > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric; largest |a - a.T| is {asym:.3g} "
            f"(relative {asym / scale:.3g} > {rtol:g})"
        )


def _asymmetry(a: FloatArray) -> tuple[float, float]:
    """max|a| and max|a − aᵀ| over a matrix or a stack of matrices."""
    if a.ndim <= 2:
        scale = float(np.abs(a).max(initial=0.0))
        asym = float(np.abs(a - np.swapaxes(a, -1, -2)).max(initial=0.0))
    else:
        flat = a.reshape(-1, a.shape[-2], a.shape[-1])
        step = max(1, (1 << 18) // max(1, a.shape[-1] * a.shape[-2]))
        buf = np.empty((min(step, flat.shape[0]),) + flat.shape[1:])
        scale = asym = 0.0
        for start in range(0, flat.shape[0], step):
            block = flat[start:start + step]
            b = buf[:block.shape[0]]
            np.abs(block, out=b)
            scale = max(scale, float(b.max(initial=0.0)))
            np.subtract(block, np.swapaxes(block, -1, -2), out=b)
            np.abs(b, out=b)
            asym = max(asym, float(b.max(initial=0.0)))
    return scale, asym


def check_square(a: Any, name: str, *, symmetric: bool = False) -> FloatArray:
    """A square matrix (D, D), optionally symmetric."""
    arr = as_float_array(a, name, ndim=2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty square matrix; got shape {arr.shape}")
    if symmetric:
        check_symmetric(arr, name)
    return arr


def check_psd_stack(h: FloatArray, name: str, *, rtol: float = 1e-8) -> None:
    """Raise unless every matrix of the stack is symmetric and positive semi-definite (to ``rtol``).

    Symmetry is checked first: the eigensolver reads one triangle only, so a non-symmetric matrix
    would pass or fail depending on which triangle holds its entries.
    """
    check_symmetric(h, name, rtol=rtol)
    e = pow2_exponent(h)
    eig = np.linalg.eigvalsh(scale_pow2(h, -e) if e else h)
    scale = max(float(np.abs(eig).max(initial=0.0)), np.finfo(np.float64).tiny)
    worst = float(eig.min())
    if worst < -rtol * scale:
        idx = np.unravel_index(int(np.argmin(eig)), eig.shape)
        raise ValueError(
            f"{name} must be positive semi-definite; entry {idx[:-1]} has eigenvalue "
            f"{float(np.ldexp(worst, e)):.3g}"
        )


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer ≥ ``minimum`` (bool rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or ≥ 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite; got {value}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` or an integer seed (never global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and int(rng) >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"{name} must be a numpy.random.Generator or a non-negative integer seed; got {rng!r}"
    )


__all__ = [
    "POW2_LIMIT",
    "NonFiniteResultError",
    "as_float_array",
    "check_choice",
    "check_finite_result",
    "check_positive",
    "check_positive_int",
    "check_psd_stack",
    "check_rng",
    "check_square",
    "check_square_stack",
    "check_symmetric",
    "pow2_exponent",
    "scale_pow2",
]
