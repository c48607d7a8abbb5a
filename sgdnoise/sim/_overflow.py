r"""Float64 overflow in the models and families: an error naming it, never a silent inf or NaN.

The models and the random families compute in plain float64 arithmetic, whose range ends at
about 1.8e308: weights or data of extreme magnitude (a residual beyond 1e154 already squares to
inf) overflow.  The functions and methods wrapped with :func:`finite_result` compute with
numpy's overflow warnings silenced and then check their result: a non-finite value raises
``FloatingPointError`` naming the function, so a user never receives inf or NaN from finite
input.  Finite results are returned unchanged, bit for bit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def all_finite(value: Any) -> bool:
    """Whether every float in ``value`` (an array, a number, or a tuple or list of them) is
    finite."""
    if isinstance(value, (tuple, list)):
        return all(all_finite(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype.kind not in "fc":
        return True
    if isinstance(value, (float, np.floating, np.ndarray)):
        return bool(np.all(np.isfinite(value)))
    return True


def finite_result(func: F) -> F:
    """Decorate a function or method: overflow silenced inside, ``FloatingPointError`` naming
    it if the result is not finite (the arguments are too large for float64)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = func(*args, **kwargs)
        if not all_finite(out):
            raise FloatingPointError(
                f"{func.__qualname__}: the result is not finite in float64 (the weights, data "
                f"or parameters are too large); rescale them")
        return out

    return wrapper  # type: ignore[return-value]


__all__ = ["all_finite", "finite_result"]
