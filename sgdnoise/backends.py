"""The one backend switch: ``"numpy"`` (reference), ``"numba"``, ``"cupy"`` or ``"auto"``.

Nothing here imports Numba or CuPy at module import time; :func:`available` imports them on first
use and caches nothing global beyond Python's own module cache.  Functions that accept
``backend=`` call :func:`resolve` with the backends they implement; ``"auto"`` then picks the first
available one in the order cupy → numba → numpy restricted to that set.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from sgdnoise._validate import check_choice

#: Every backend name besides ``"auto"``: ``"numpy"`` (the reference), ``"numba"``, ``"cupy"``.
BACKENDS: tuple[str, ...] = ("numpy", "numba", "cupy")
_AUTO_ORDER: tuple[str, ...] = ("cupy", "numba", "numpy")


def _numba_ok() -> bool:
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        importlib.import_module("numba")
    except Exception:  # broken install: treat as absent  # noqa: BLE001
        return False
    return True


def _cupy_ok() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        cupy = importlib.import_module("cupy")
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # no driver, no device  # noqa: BLE001
        return False


def available() -> tuple[str, ...]:
    """Backends that import and run here (``cupy`` only with a CUDA device)."""
    out = ["numpy"]
    if _numba_ok():
        out.append("numba")
    if _cupy_ok():
        out.append("cupy")
    return tuple(out)


def resolve(backend: str, *, supported: tuple[str, ...] = BACKENDS) -> str:
    """Turn a user's ``backend`` argument into a concrete, available backend name.

    Raises
    ------
    ValueError
        Unknown name, a backend the caller does not implement, or one that is not available here.
    """
    check_choice(backend, "backend", (*BACKENDS, "auto"))
    have = available()
    if backend == "auto":
        for name in _AUTO_ORDER:
            if name in supported and name in have:
                return name
        return "numpy"
    if backend not in supported:
        raise ValueError(
            f"backend={backend!r} is not implemented for this function; use one of {supported}"
        )
    if backend not in have:
        hint = "pip install 'sgdnoise[gpu]' and a CUDA device" if backend == "cupy" else "pip install numba"
        raise ValueError(f"backend={backend!r} is not available here ({hint})")
    return backend


def array_module(backend: str) -> ModuleType:
    """``numpy`` or ``cupy`` for an already resolved backend (numba computes with numpy arrays)."""
    if backend == "cupy":
        return importlib.import_module("cupy")
    return importlib.import_module("numpy")


def to_numpy(x: Any) -> Any:
    """Bring a numpy or cupy array back to host memory as numpy."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return x


@contextmanager
def numba_threads(num_threads: int | None) -> Iterator[None]:
    """Run numba's parallel regions with ``num_threads`` threads, restoring the count afterwards.

    ``None`` leaves numba's current setting; larger values are capped at numba's maximum. Every
    numba kernel of the package is written so that its results do not depend on this number.
    """
    if num_threads is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(num_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def info() -> dict[str, Any]:
    """Versions and capabilities: Python, numpy/scipy/sympy/hypothesis, Numba threads, CuPy GPU."""
    from sgdnoise import __version__

    out: dict[str, Any] = {
        "sgdnoise": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    for mod in ("numpy", "scipy", "sympy", "hypothesis"):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except ImportError:
            out[mod] = None
    if _numba_ok():
        numba = importlib.import_module("numba")
        out["numba"] = {"version": numba.__version__, "threads": int(numba.config.NUMBA_NUM_THREADS)}
    else:
        out["numba"] = None
    if importlib.util.find_spec("cupy") is None:
        out["cupy"] = None
    else:
        try:
            cupy = importlib.import_module("cupy")
            count = int(cupy.cuda.runtime.getDeviceCount())
            devices = []
            for i in range(count):
                props = cupy.cuda.runtime.getDeviceProperties(i)
                name = props["name"]
                devices.append(name.decode() if isinstance(name, bytes) else str(name))
            out["cupy"] = {"version": cupy.__version__, "devices": devices}
        except Exception as exc:  # noqa: BLE001
            out["cupy"] = {"version": getattr(cupy, "__version__", "?"), "error": str(exc)}
    try:
        from threadpoolctl import threadpool_info

        out["blas"] = [
            {k: d.get(k) for k in ("internal_api", "version", "num_threads")}
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    except ImportError:
        out["blas"] = None
    out["backends"] = list(available())
    return out


__all__ = ["BACKENDS", "array_module", "available", "info", "numba_threads", "resolve",
           "to_numpy"]
