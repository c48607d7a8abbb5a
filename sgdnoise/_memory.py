"""Say what a dense allocation will cost before making it, and refuse past a limit.

Every function of the package that forms a D×D (or N×D×D) array calls :func:`check_allocation`
with its estimated peak bytes before allocating.  The limit, in this order of precedence, is

1. the ``max_bytes`` argument of the call (where the function offers one);
2. the environment variable ``SGDNOISE_MAX_BYTES`` (bytes; a plain number such as ``8e9`` or
   one with a unit suffix: ``512M``, ``8G``, ``1.5T``, powers of 1024);
3. :data:`DEFAULT_FRACTION` of the memory available now (``MemAvailable`` of
   ``/proc/meminfo``, else ``os.sysconf``'s available physical pages); no limit when neither
   can be read.

Past the limit a :class:`MemoryLimitError` (a ``ValueError``) names the array, its size in GB
and the limit, and points to the matrix-free path.  The check reads one small file; it costs
microseconds.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

#: Environment variable with the byte limit of dense allocations (overrides the default).
ENV_VAR: str = "SGDNOISE_MAX_BYTES"
#: Fraction of the currently available memory one dense allocation may take by default.
DEFAULT_FRACTION: float = 0.8

_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}

#: Where to go instead of a dense D×D matrix.
OPERATOR_HINT: str = (
    "use the matrix-free operators instead: sgdnoise.theory.kronecker_layer_operators (one "
    "dense layer), MLP.curvature_operators (a whole network or one layer), and "
    "sgdnoise.theory.top_eigenbasis for the top eigenpairs"
)


class MemoryLimitError(ValueError):
    """A dense array would exceed the memory limit (see :func:`check_allocation`)."""


def array_bytes(shape: tuple[int, ...], dtype: Any = np.float64) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (exact Python integer, no overflow)."""
    return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize


def available_memory_bytes() -> int | None:
    """Memory available for new allocations now, in bytes, or None when it cannot be read.

    Reads ``MemAvailable`` from ``/proc/meminfo`` (Linux), else ``os.sysconf`` available
    physical pages times the page size.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def parse_bytes(text: str, name: str = ENV_VAR) -> int:
    """A byte count from ``"8e9"``, ``"4096"``, ``"512M"``, ``"8G"`` (binary units)."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    factor = 1
    if s and s[-1] in _SUFFIXES:
        factor = _SUFFIXES[s[-1]]
        s = s[:-1]
    try:
        value = float(s) * factor
    except ValueError:
        raise ValueError(f"{name} must be a byte count such as 8e9 or 8G; got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive byte count; got {text!r}")
    return int(value)


def memory_limit(max_bytes: float | None = None) -> tuple[int | None, str]:
    """The byte limit in force and where it comes from (argument, environment or default).

    Returns ``(None, reason)`` when no limit applies (available memory unknown).
    """
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, float, np.integer,
                                                                     np.floating)):
            raise ValueError(f"max_bytes must be a positive number of bytes; got {max_bytes!r}")
        if not math.isfinite(float(max_bytes)) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive number of bytes; got {max_bytes!r}")
        return int(max_bytes), "max_bytes argument"
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return parse_bytes(env), f"environment variable {ENV_VAR}"
    avail = available_memory_bytes()
    if avail is None:
        return None, "available memory unknown"
    return int(DEFAULT_FRACTION * avail), (
        f"{DEFAULT_FRACTION:.0%} of the {avail / 1e9:.3g} GB available now; set {ENV_VAR} or "
        "max_bytes to change it")


def check_allocation(nbytes: int, what: str, *, max_bytes: float | None = None,
                     hint: str = OPERATOR_HINT) -> None:
    """Refuse, before allocating, an array (or group of arrays) of ``nbytes`` past the limit.

    Parameters
    ----------
    nbytes : int
        Estimated peak bytes of the allocation.
    what : str
        The array(s), e.g. ``"H, M, K, Sigma1 (4 arrays of 22500x22500 float64)"``.
    max_bytes : int or float, optional
        Explicit limit; default from ``SGDNOISE_MAX_BYTES`` or a fraction of available memory.
    hint : str
        What to do instead (default: the matrix-free operator path).

    Raises
    ------
    MemoryLimitError
        When ``nbytes`` exceeds the limit; the message names the size in GB, the array, the
        limit and its source, and the hint.
    """
    limit, source = memory_limit(max_bytes)
    if limit is not None and nbytes > limit:
        raise MemoryLimitError(
            f"{what} would need {nbytes / 1e9:.3g} GB, more than the limit of "
            f"{limit / 1e9:.3g} GB ({source}); {hint}")


__all__ = [
    "DEFAULT_FRACTION",
    "ENV_VAR",
    "OPERATOR_HINT",
    "MemoryLimitError",
    "array_bytes",
    "available_memory_bytes",
    "check_allocation",
    "memory_limit",
    "parse_bytes",
]
