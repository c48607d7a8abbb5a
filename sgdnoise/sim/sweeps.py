r"""Resumable parameter sweeps of scripted simulations, run with Dask distributed.

A sweep file is a base configuration (:class:`~sgdnoise.sim.scripted.RunConfig`: inline
sections and/or ``base = "path.toml"``) plus a ``[sweep]`` table::

    base = "linreg_epoch.toml"
    [sweep]
    grid = { "dynamics.eta" = [0.01, 0.02], "noise.B" = [1, 4] }
    random = { "dynamics.beta" = { uniform = [0.0, 0.9] } }
    num_samples = 3
    seed = 0

The points are the Cartesian product of the grid with ``num_samples`` random draws (either part
may be absent).  Each point is identified by a hash of its overrides, so its folder
``OUT/points/<id>/`` keeps its name when the sweep is extended or re-run.  A point's folder is
written to a temporary folder and renamed, so it is either complete or absent; re-running the
sweep skips finished points and retries failed ones (unless ``skip_failed``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
import numbers
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise import _io
from sgdnoise.sim.scripted import (
    SECTIONS,
    RunConfig,
    _read_toml,
    apply_overrides,
    run_config,
    write_run_folder,
)

#: Version tag written to ``sweep.json``.
SWEEP_FORMAT = "sgdnoise-sweep/1"
#: Distributions of ``[sweep] random``: name → [low, high] (``choice``: the list of values).
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "log_uniform", "int_uniform", "choice")
_SWEEP_KEYS = ("grid", "random", "num_samples", "seed")


def point_id(overrides: dict[str, Any]) -> str:
    """Stable id of a sweep point: the first 12 hex digits of the SHA-256 of its overrides
    (as JSON with sorted keys), independent of the order of the keys and of the other points."""
    text = json.dumps(overrides, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its id, its overrides (dotted key → value) and its config."""

    id: str
    overrides: dict[str, Any]
    config: RunConfig


def _check_dotted(key: Any, path: str) -> str:
    parts = str(key).split(".")
    if not isinstance(key, str) or len(parts) != 2 or parts[0] not in SECTIONS or not parts[1]:
        raise ValueError(f"{path}: {key!r} is not a config key of the form section.key with "
                         f"section one of {', '.join(SECTIONS)}")
    return key


def _check_distribution(spec: Any, path: str) -> tuple[str, list[Any]]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"{path}: expected one distribution, e.g. {{log_uniform = [1e-3, "
                         f"1e-1]}}; one of {', '.join(DISTRIBUTIONS)}")
    (name, args), = spec.items()
    if name not in DISTRIBUTIONS:
        raise ValueError(f"{path}: {name!r} is not one of {', '.join(DISTRIBUTIONS)}")
    if not isinstance(args, list) or not args:
        raise ValueError(f"{path}.{name}: expected a non-empty list")
    if name == "choice":
        return name, args
    ok = len(args) == 2 and all(isinstance(a, numbers.Real) and not isinstance(a, bool)
                                and math.isfinite(a) for a in args) and args[0] <= args[1]
    if name == "int_uniform":
        ok = ok and all(isinstance(a, numbers.Integral) for a in args)
    if name == "log_uniform":
        ok = ok and args[0] > 0
    if not ok:
        need = {"uniform": "[low, high] with low <= high",
                "log_uniform": "[low, high] with 0 < low <= high",
                "int_uniform": "[low, high], integers with low <= high"}[name]
        raise ValueError(f"{path}.{name}: expected {need}; got {args!r}")
    return name, args


def _draw(rng: np.random.Generator, name: str, args: list[Any]) -> Any:
    if name == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if name == "log_uniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    if name == "int_uniform":
        return int(rng.integers(args[0], args[1], endpoint=True))
    return args[int(rng.integers(len(args)))]


@dataclass(frozen=True)
class SweepSpec:
    r"""A base configuration and the points to run it at.

    Attributes
    ----------
    base : RunConfig
        The configuration every point starts from.
    grid : dict
        Dotted key → list of values; the points take the Cartesian product.
    random : dict
        Dotted key → ``{distribution = args}`` (:data:`DISTRIBUTIONS`); ``num_samples`` draws,
        sample j from ``numpy.random.default_rng([seed, j])``, keys in sorted order, so a draw
        does not depend on ``num_samples``.
    num_samples : int
        Random draws (each combined with every grid point); 0 without ``random``.
    seed : int
        Seed of the random draws (not of the simulations: every point uses ``run.seed``
        unless the sweep varies it).

    References
    ----------
    The simulations are :func:`sgdnoise.sim.dynamics.simulate`'s (spec parts B, C, D).
    """

    base: RunConfig
    grid: dict[str, list[Any]]
    random: dict[str, dict[str, list[Any]]]
    num_samples: int = 0
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any], *,
                  base_dir: str | os.PathLike[str] | None = None) -> SweepSpec:
        """Validate a sweep dict (the parsed TOML); ``base`` paths are relative to
        ``base_dir`` (default: the working directory)."""
        if not isinstance(d, dict):
            raise ValueError("sweep file: expected a table")  # noqa: TRY004
        allowed = ("base", "sweep", *SECTIONS)
        for key in d:
            if key not in allowed:
                raise ValueError(f"{key}: unknown key; allowed keys: {', '.join(allowed)}")
        raw: dict[str, Any] = {}
        if "base" in d:
            if not isinstance(d["base"], str):
                raise ValueError(f"base: expected a path; got {d['base']!r}")
            path = Path(d["base"])
            if not path.is_absolute() and base_dir is not None:
                path = Path(base_dir) / path
            if not path.is_file():
                raise ValueError(f"base: no such file {str(path)!r}")
            raw = _read_toml(path)
        for section in SECTIONS:
            if section in d:
                if not isinstance(d[section], dict):
                    raise ValueError(f"{section}: expected a table")
                raw[section] = {**raw.get(section, {}), **d[section]}
        base = RunConfig.from_dict(raw)
        sw = d.get("sweep")
        if not isinstance(sw, dict):
            raise ValueError("sweep: a [sweep] table with grid and/or random is required")  # noqa: TRY004
        for key in sw:
            if key not in _SWEEP_KEYS:
                raise ValueError(f"sweep.{key}: unknown key; allowed keys: "
                                 f"{', '.join(_SWEEP_KEYS)}")
        grid = sw.get("grid", {})
        random = sw.get("random", {})
        for name, table in (("grid", grid), ("random", random)):
            if not isinstance(table, dict):
                raise ValueError(f"sweep.{name}: expected a table of dotted keys")  # noqa: TRY004
        if not grid and not random:
            raise ValueError("sweep: give sweep.grid and/or sweep.random")
        for key, values in grid.items():
            _check_dotted(key, f"sweep.grid[{key!r}]")
            if not isinstance(values, list) or not values:
                raise ValueError(f"sweep.grid[{key!r}]: expected a non-empty list of values")
        for key, spec in random.items():
            _check_dotted(key, f"sweep.random[{key!r}]")
            if key in grid:
                raise ValueError(f"sweep.random[{key!r}]: already in sweep.grid")
            _check_distribution(spec, f"sweep.random[{key!r}]")
        num_samples = sw.get("num_samples", 1 if random else 0)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or \
                num_samples < (1 if random else 0):
            raise ValueError(f"sweep.num_samples: expected an integer >= "
                             f"{1 if random else 0}; got {num_samples!r}")
        if num_samples and not random:
            raise ValueError("sweep.num_samples: needs sweep.random")
        seed = sw.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"sweep.seed: expected an integer >= 0; got {seed!r}")
        spec = cls(base=base, grid=dict(grid), random=dict(random), num_samples=num_samples,
                   seed=seed)
        spec.points()  # every point must be a valid configuration
        return spec

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> SweepSpec:
        """Read and validate a sweep file (``base`` relative to the file's folder)."""
        path = Path(path)
        return cls.from_dict(_read_toml(path), base_dir=path.parent)

    def overrides(self) -> list[dict[str, Any]]:
        """The overrides of every point, grid-major (grid keys in file order)."""
        keys = list(self.grid)
        grid_points = [dict(zip(keys, combo, strict=True))
                       for combo in itertools.product(*(self.grid[k] for k in keys))]
        if not self.random:
            return grid_points
        draws = []
        for j in range(self.num_samples):
            rng = np.random.default_rng([self.seed, j])
            draws.append({k: _draw(rng, *_check_distribution(self.random[k], k))
                          for k in sorted(self.random)})
        return [{**g, **r} for g in grid_points for r in draws]

    def points(self) -> list[SweepPoint]:
        """Every point with its id and validated config; duplicate points appear once."""
        out: dict[str, SweepPoint] = {}
        base = self.base.to_dict()
        for ov in self.overrides():
            pid = point_id(ov)
            if pid in out:
                continue
            try:
                cfg = RunConfig.from_dict(apply_overrides(base, ov))
            except ValueError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in ov.items())
                raise ValueError(f"sweep point {shown}: {exc}") from None
            out[pid] = SweepPoint(pid, ov, cfg)
        return list(out.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (base config, grid, random, num_samples, seed)."""
        return {"base": self.base.to_dict(), "grid": self.grid, "random": self.random,
                "num_samples": self.num_samples, "seed": self.seed}


# --------------------------------------------------------------------------------- one point
def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _finish_point(tmp: Path, target: Path) -> None:
    """Rename the finished temporary folder to ``target`` (a finished one there wins)."""
    if (target / "result.json").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        return
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)


def _write_error(folder: Path, pid: str, overrides: dict[str, Any], exc: BaseException,
                 tb: str) -> None:
    _io.write_json_atomic(folder / "error.json", {
        "id": pid, "overrides": overrides, "error_type": type(exc).__name__,
        "message": str(exc), "traceback": tb, "time": _now(),
    })


def run_point(config: dict[str, Any], overrides: dict[str, Any], pid: str,
              points_dir: str) -> dict[str, Any]:
    """Run one sweep point and persist it atomically under ``points_dir/pid`` (a worker task).

    Writes ``point.json`` (id, overrides, start and end times, host, process id) and the run
    folder of :func:`~sgdnoise.sim.scripted.run_config` (``config.toml``, ``result.json``,
    ``arrays.npz``), or ``error.json`` (type, message, traceback) if the run raised.  Returns
    ``{"id", "status", "seconds"}`` with status ``"done"``, ``"failed"`` or ``"skipped"``
    (already done).
    """
    import socket

    target = Path(points_dir) / pid
    if (target / "result.json").exists():
        return {"id": pid, "status": "skipped", "seconds": 0.0}
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{pid}-", dir=points_dir))
    t0 = time.perf_counter()
    info = {"id": pid, "overrides": overrides, "started": _now(), "host": socket.gethostname(),
            "pid": os.getpid()}
    try:
        tmp.chmod(0o755)
        try:
            record = run_config(config, out_dir=None)
            write_run_folder(tmp, record.config, record.run, record.timings)
            status = "done"
        except Exception as exc:  # noqa: BLE001 (a failed point is recorded, the sweep goes on)
            for child in tmp.iterdir():
                child.unlink()
            _write_error(tmp, pid, overrides, exc, traceback.format_exc())
            status = "failed"
        info["finished"] = _now()
        info["status"] = status
        _io.write_json_atomic(tmp / "point.json", info)
        _finish_point(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"id": pid, "status": status, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------- sweep
def _point_status(folder: Path) -> str:
    if (folder / "result.json").is_file():
        return "done"
    if (folder / "error.json").is_file():
        return "failed"
    return "pending"


def _base_hash(spec: SweepSpec) -> str:
    text = json.dumps(spec.base.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _write_summary(out: Path, spec: SweepSpec, points: list[SweepPoint],
                   status: dict[str, str], state: str) -> dict[str, Any]:
    counts = {s: sum(v == s for v in status.values()) for s in ("done", "failed", "pending")}
    payload = {
        "format": SWEEP_FORMAT, "state": state, "updated": _now(), "base_hash": _base_hash(spec),
        "total": len(points), **counts, "spec": spec.to_dict(),
        "points": [{"id": p.id, "overrides": p.overrides, "status": status[p.id]}
                   for p in points],
        "provenance": _io.provenance(),
    }
    _io.write_json_atomic(out / "sweep.json", payload)
    return payload


def run_sweep(spec: SweepSpec | str | os.PathLike[str], *, out_dir: str | os.PathLike[str],
              scheduler: str | None = None, workers: int | None = None,
              processes: bool = True, client: Any = None, skip_failed: bool = False,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every point of a sweep that is not done yet, on Dask, and persist each as it ends.

    Parameters
    ----------
    spec : SweepSpec or path of a sweep TOML file
    out_dir : path
        ``OUT``: ``OUT/points/<id>/`` per point and ``OUT/sweep.json`` (updated after every
        point).  With a remote scheduler it must be on a file system the workers share.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default: a
        ``LocalCluster`` started here and closed at the end.
    workers : int, optional
        Workers of the LocalCluster (default: min(4, CPUs)), one thread each.
    processes : bool
        LocalCluster workers as processes (default) or threads.
    client : distributed.Client, optional
        Use this client instead (``scheduler`` and ``workers`` are then ignored).
    skip_failed : bool
        Keep points that failed before as failed instead of retrying them.
    progress : callable, optional
        Called with one line of text per event (start, each finished point, end).

    Returns
    -------
    dict
        The ``sweep.json`` payload: ``total``, ``done``, ``failed``, ``pending``, ``points``.

    Raises
    ------
    ValueError
        ``out_dir`` holds a sweep of a different base configuration, or the spec is invalid.
    """
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.from_toml(spec)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    say = progress or (lambda _line: None)
    out = Path(out_dir).resolve()
    points_dir = out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    old = out / "sweep.json"
    if old.is_file():
        previous = json.loads(old.read_text(encoding="utf-8"))
        if previous.get("base_hash") != _base_hash(spec):
            raise ValueError(f"out_dir: {str(out)!r} holds a sweep of a different base "
                             f"configuration; use another folder")
    for leftover in points_dir.glob(".tmp-*"):  # from a run that was killed mid-point
        shutil.rmtree(leftover, ignore_errors=True)
    points = spec.points()
    status = {p.id: _point_status(points_dir / p.id) for p in points}
    todo = []
    for p in points:
        if status[p.id] == "failed" and skip_failed:
            continue
        if status[p.id] != "done":
            shutil.rmtree(points_dir / p.id, ignore_errors=True)
            status[p.id] = "pending"
            todo.append(p)
    total = len(points)
    done0 = sum(v == "done" for v in status.values())
    _write_summary(out, spec, points, status, "running" if todo else "complete")
    say(f"sweep: {total} points, {done0} already done, "
        f"{sum(v == 'failed' for v in status.values())} failed kept, {len(todo)} to run")
    if not todo:
        return _write_summary(out, spec, points, status, "complete")

    from distributed import Client, LocalCluster, as_completed

    own_client = client is None
    cluster = None
    if own_client:
        if scheduler is not None:
            client = Client(scheduler)
        else:
            n = workers or max(1, min(4, os.cpu_count() or 1))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                                   dashboard_address=None)
            client = Client(cluster)
    try:
        futures = {client.submit(run_point, p.config.to_dict(), p.overrides, p.id,
                                 str(points_dir), pure=False): p for p in todo}
        finished = done0
        for fut in as_completed(futures):
            p = futures[fut]
            try:
                res = fut.result()
                state = "done" if res["status"] in ("done", "skipped") else "failed"
                seconds = res["seconds"]
            except Exception as exc:  # noqa: BLE001 (the task was lost, e.g. its worker died)
                tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{p.id}-", dir=points_dir))
                _write_error(tmp, p.id, p.overrides, exc, traceback.format_exc())
                _finish_point(tmp, points_dir / p.id)
                state, seconds = "failed", 0.0
            status[p.id] = state
            finished += 1
            _write_summary(out, spec, points, status, "running")
            shown = " ".join(f"{k}={v}" for k, v in p.overrides.items())
            say(f"[{finished}/{total}] {p.id} {state} ({seconds:.1f} s) {shown}")
    finally:
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
    summary = _write_summary(out, spec, points, status, "complete")
    say(f"sweep: {summary['done']} done, {summary['failed']} failed, "
        f"{summary['pending']} pending of {total}; results in {out}")
    return summary


def load_sweep(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``sweep.json`` of a sweep folder, with each point's status re-read from disk."""
    out = Path(out_dir)
    path = out / "sweep.json"
    if not path.is_file():
        raise ValueError(f"out_dir: {str(out)!r} is not a sweep folder (no sweep.json)")
    payload = json.loads(path.read_text(encoding="utf-8"))
    for p in payload["points"]:
        p["status"] = _point_status(out / "points" / p["id"])
    for s in ("done", "failed", "pending"):
        payload[s] = sum(p["status"] == s for p in payload["points"])
    return payload


def to_dataframe(out_dir: str | os.PathLike[str]) -> Any:
    """One row per sweep point (pandas): ``id``, ``status``, one column per swept dotted key,
    the scalar summaries of ``result.json`` (see :func:`~sgdnoise.sim.scripted.run_summary`)
    and ``simulate_s``; failed points have ``error`` (the message) instead."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install 'sgdnoise[analysis]' "
                          "(or pip install pandas)") from None

    sweep = load_sweep(out_dir)
    rows = []
    for p in sweep["points"]:
        row: dict[str, Any] = {"id": p["id"], "status": p["status"], **p["overrides"]}
        folder = Path(out_dir) / "points" / p["id"]
        if p["status"] == "done":
            result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            row.update(result["summary"])
            row["simulate_s"] = result["timings"].get("simulate_s")
        elif p["status"] == "failed":
            err = json.loads((folder / "error.json").read_text(encoding="utf-8"))
            row["error"] = f"{err['error_type']}: {err['message']}"
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "DISTRIBUTIONS",
    "SWEEP_FORMAT",
    "SweepPoint",
    "SweepSpec",
    "load_sweep",
    "point_id",
    "run_point",
    "run_sweep",
    "to_dataframe",
]
