"""Shared helpers for the benchmark scripts: GEMM rate, timers, environment, JSON results.

The scripts in ``benchmarks/`` are run directly (``python benchmarks/bench_*.py``); they import
this module by name, so it is not part of the installed package and nothing in ``sgdnoise``
imports it.  Results go to ``benchmarks/results/NAME.json`` (git-ignored).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"

T = TypeVar("T")


class Timer:
    """Wall-clock timer context (``time.perf_counter``); ``seconds`` is set on exit.

    Examples
    --------
    >>> with Timer() as t:
    ...     _ = sum(range(1000))
    >>> t.seconds >= 0
    True
    """

    def __init__(self) -> None:
        self.seconds = float("nan")
        self._start = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def best_of(fn: Callable[[], T], repeats: int = 3) -> tuple[float, T]:
    """Call ``fn()`` ``repeats`` times; return the smallest wall time and the last result."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    best = float("inf")
    result: Any = None
    for _ in range(repeats):
        with Timer() as t:
            result = fn()
        best = min(best, t.seconds)
    return best, result


def interleaved_rounds(contestants: dict[str, tuple[Callable[[], Any], int]], repeats: int,
                       unit: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Time every contestant once per round for ``repeats`` rounds; keep each one's best round.

    ``contestants`` maps a name to ``(fn, work)``, ``work`` counted in ``unit`` (e.g.
    ``"replica_steps"``).  Running every contestant once per round makes load from elsewhere hit
    all of them alike.  Returns ``({name: {"seconds", unit, unit + "_per_s", "runs"}},
    {name: the last result of fn})``.  Warm-up (compilation) is the caller's business.
    """
    runs: dict[str, list[float]] = {key: [] for key in contestants}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for key, (fn, _) in contestants.items():
            seconds, last[key] = best_of(fn, 1)
            runs[key].append(seconds)
    timings = {key: {"seconds": min(r), unit: contestants[key][1],
                     f"{unit}_per_s": contestants[key][1] / min(r), "runs": r}
               for key, r in runs.items()}
    return timings, last


def run_timed(main: Callable[[], int]) -> None:
    """``sys.exit(main())``, printing the script's wall time last."""
    start = time.perf_counter()
    status = main()
    print(f"({time.perf_counter() - start:.0f} s)")
    sys.exit(status)


def measure_gemm_rate(n: int = 2000, repeats: int = 3, *, seed: int = 0) -> float:
    """Best-of float64 GEMM rate in GFLOP/s: ``A @ B`` for n×n matrices, 2n³ flops each.

    This is the machine's reference rate against which a GEMM-bound stage is judged; it uses
    every BLAS thread the process has, like the stages it is compared with.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    B = rng.standard_normal((n, n))
    A @ B  # warm-up: thread pool start and page faults on the output
    seconds, _ = best_of(lambda: A @ B, repeats)
    return 2.0 * n**3 / seconds / 1e9


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _numpy_config() -> Any:
    try:
        return np.show_config(mode="dicts")
    except TypeError:  # numpy < 1.26 has no mode argument
        return None


def _threadpools() -> Any:
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_info()


def _sgdnoise_version() -> str | None:
    try:
        import sgdnoise
    except ImportError:
        return None
    return str(sgdnoise.__version__)


def environment() -> dict[str, Any]:
    """Where a benchmark ran: CPU, memory, load, Python, numpy/BLAS, thread pools, sgdnoise."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(affinity) if affinity is not None else None,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "load_average": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numpy_config": _numpy_config(),
        "threadpools": _threadpools(),
        "sgdnoise": _sgdnoise_version(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                  "MKL_NUM_THREADS") if k in os.environ},
    }


def blas_summary(env: dict[str, Any]) -> str:
    """One line naming the BLAS numpy was built with, from :func:`environment`."""
    cfg = env.get("numpy_config") or {}
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    name = blas.get("name", "unknown BLAS")
    version = blas.get("version", "")
    pools = env.get("threadpools")
    threads = ""
    if pools:
        threads = ", " + ", ".join(f"{p.get('internal_api')} {p.get('num_threads')} threads"
                                   for p in pools)
    return f"{name} {version}{threads}".strip()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def write_result(name: str, *, config: dict[str, Any], seed: int, timings: dict[str, Any],
                 environment: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write ``benchmarks/results/NAME.json`` with config, seed, environment and timings."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seed": seed,
        "config": config,
        "timings": timings,
        "environment": environment,
    }
    if extra:
        payload.update(extra)
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return path
