"""CuPy backend: the array-module-generic reference of ``_numpy`` run on device arrays.

The problem's data and the run's state are copied to the GPU once (``cupy.asarray``), the
observers' states are created there, every chunk of steps runs there, and the states come back
with ``cupy.asnumpy`` at the end.  CuPy is
imported only when this backend is used.  Random numbers are the same Philox streams as on the
CPU (uint64 arithmetic on device), so runs agree with the numpy reference up to round-off.
"""

from __future__ import annotations

from typing import Any

from sgdnoise.sim.dynamics import _numpy


def prepare(problem: Any, plan: Any, state: dict[str, Any], num_threads: int | None
            ) -> _numpy._Context:
    """Copy the problem and the state to the GPU (``num_threads`` is unused)."""
    import cupy

    return _numpy.prepare(problem, plan, state, num_threads, xp=cupy)


def run_chunk(ctx: _numpy._Context, k_start: int, k_stop: int) -> None:
    """Steps k_start … k_stop − 1 on the GPU."""
    _numpy.run_chunk(ctx, k_start, k_stop)


def divergence(ctx: _numpy._Context) -> tuple[Any, Any, Any]:
    """(status, divergence step, θ) copied to the host."""
    return _numpy.divergence(ctx)


def finish(ctx: _numpy._Context) -> tuple[dict[str, Any], list[Any]]:
    """The engine's and the observers' states copied to the host (``cupy.asnumpy``)."""
    import cupy

    return ({name: cupy.asnumpy(a) for name, a in ctx.st.items()},
            [_numpy._to_host(s, cupy.asnumpy) for s in ctx.states])


__all__ = ["divergence", "finish", "prepare", "run_chunk"]
