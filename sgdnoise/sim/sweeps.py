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
sweep skips finished points and retries failed ones (unless ``skip_failed``).  While a sweep
runs, the file ``OUT/sweep.lock`` keeps a second sweep out of the folder.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import math
import numbers
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise import _io
from sgdnoise._progress import progress_bar
from sgdnoise.sim.scripted import (
    RUN_FILES,
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
#: The lock file of a running sweep, inside its folder (see :class:`sgdnoise._io.FolderLock`).
LOCK_FILE = "sweep.lock"
#: The files of a point folder ``OUT/points/<id>/``.
POINT_FILES: tuple[str, ...] = ("point.json", "error.json", *RUN_FILES)
_POINT_ID = re.compile(r"[0-9a-f]{12}")
_TMP_PREFIX = ".tmp-"
_TMP_POINT = re.compile(r"\.tmp-[0-9a-f]{12}-.+")


def _foreign_in_points(points: Path) -> list[str]:
    """Entries of ``OUT/points`` that a sweep does not write (see :data:`SWEEP_OUTPUT`)."""
    foreign = []
    for entry in points.iterdir():
        name = entry.name
        if entry.is_symlink():
            foreign.append(name)
        elif _POINT_ID.fullmatch(name) and entry.is_dir():
            foreign += [f"{name}/{e.name}" for e in entry.iterdir()
                        if not _io.owns_name(e, POINT_FILES)]
        elif _TMP_POINT.fullmatch(name) and entry.is_dir():
            continue  # a point being written, or left by a killed run
        elif not (name in _io.SYSTEM_FILES and entry.is_file()):
            foreign.append(name + ("/" if entry.is_dir() else ""))
    return foreign


def _is_sweep_summary(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == SWEEP_FORMAT


#: The sweep folder: recognised by a ``sweep.json`` of format :data:`SWEEP_FORMAT` (or, when
#: that file has been removed, by a ``points`` folder holding only point folders), and holding
#: nothing but ``sweep.json``, the lock and ``points/<id>/`` folders with :data:`POINT_FILES`.
SWEEP_OUTPUT = _io.OutputLayout(
    command="sgdnoise sweep", marker="sweep.json", recognise=_is_sweep_summary,
    files=("sweep.json", LOCK_FILE, f"{LOCK_FILE}.takeover"), folders=("points",),
    check_folder=_foreign_in_points, marker_optional=True,
    transient=(LOCK_FILE, f"{LOCK_FILE}.takeover"),
    recover="the finished points in its points/ folder are intact: delete that sweep.json and "
            "run the same command again to rebuild it from them")


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
    depth = 3 if parts[0] == "measure" else 2
    if not isinstance(key, str) or len(parts) != depth or parts[0] not in SECTIONS \
            or not all(parts):
        raise ValueError(f"{path}: {key!r} is not a config key of the form section.key with "
                         f"section one of {', '.join(SECTIONS)} (measure.table.key in "
                         f"[measure], e.g. measure.moments.after)")
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


def _remove_point(folder: Path) -> None:
    """Delete a point folder of this sweep: its :data:`POINT_FILES`, then the folder."""
    if folder.exists() and not _io.remove_own_folder(folder, POINT_FILES):
        raise _io.OutputFolderError(
            f"{str(folder)!r} holds files a sweep does not write; move them out of it and run "
            f"the sweep again")


def _finish_point(tmp: Path, target: Path) -> None:
    """Rename the finished temporary folder to ``target`` (a finished one there wins)."""
    if (target / "result.json").exists():
        _io.remove_temp_folder(tmp, _TMP_PREFIX)
        return
    _remove_point(target)  # an earlier failure of this point
    os.rename(tmp, target)


def _error_of(folder: Path) -> tuple[str, str] | None:
    """(error type, message) of a failed point folder, None if it has no ``error.json``."""
    path = folder / "error.json"
    if not path.is_file():
        return None
    try:
        err = json.loads(path.read_text(encoding="utf-8"))
        return str(err["error_type"]), str(err["message"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return "unreadable", f"{path} cannot be read"


def _reason(error: tuple[str, str] | None) -> str:
    """One line: ``diverged: <message>`` for a divergence, ``<type>: <message>`` otherwise."""
    if error is None:
        return ""
    kind, message = error
    first = " ".join(message.split())
    return f"diverged: {first}" if kind == "DivergenceError" else f"{kind}: {first}"


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
    ``arrays.npz``), or ``error.json`` (type, message, traceback) if the run raised (a
    ``DivergenceError`` included).  Returns ``{"id", "status", "seconds", "error"}`` with
    status ``"done"``, ``"failed"`` or ``"skipped"`` (already done) and, for a failure,
    ``error`` = (error type, message).
    """
    import socket

    target = Path(points_dir) / pid
    if (target / "result.json").exists():
        return {"id": pid, "status": "skipped", "seconds": 0.0, "error": None}
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{pid}-", dir=points_dir))
    t0 = time.perf_counter()
    info = {"id": pid, "overrides": overrides, "started": _now(), "host": socket.gethostname(),
            "pid": os.getpid()}
    error = None
    try:
        tmp.chmod(0o755)
        try:
            record = run_config(config, out_dir=None)
            write_run_folder(tmp, record.config, record.run, record.timings)
            status = "done"
        except Exception as exc:  # noqa: BLE001 (a failed point is recorded, the sweep goes on)
            for child in tmp.iterdir():  # tmp is this call's own temporary folder
                child.unlink()
            _write_error(tmp, pid, overrides, exc, traceback.format_exc())
            status, error = "failed", (type(exc).__name__, str(exc))
        info["finished"] = _now()
        info["status"] = status
        _io.write_json_atomic(tmp / "point.json", info)
        _finish_point(tmp, target)
    except BaseException:
        _io.remove_temp_folder(tmp, _TMP_PREFIX)
        raise
    return {"id": pid, "status": status, "seconds": time.perf_counter() - t0, "error": error}


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


def _point_entry(p: SweepPoint, status: str, error: tuple[str, str] | None) -> dict[str, Any]:
    entry = {"id": p.id, "overrides": p.overrides, "status": status}
    if status == "failed" and error is not None:
        entry["error"] = _reason(error)
    return entry


def _write_summary(out: Path, spec: SweepSpec, points: list[SweepPoint],
                   status: dict[str, str], state: str,
                   errors: dict[str, tuple[str, str] | None]) -> dict[str, Any]:
    counts = {s: sum(v == s for v in status.values()) for s in ("done", "failed", "pending")}
    diverged = sum(status[p.id] == "failed" and (errors.get(p.id) or ("",))[0] ==
                   "DivergenceError" for p in points)
    payload = {
        "format": SWEEP_FORMAT, "state": state, "updated": _now(), "base_hash": _base_hash(spec),
        "total": len(points), **counts, "diverged": diverged, "spec": spec.to_dict(),
        "points": [_point_entry(p, status[p.id], errors.get(p.id)) for p in points],
        "provenance": _io.provenance(),
    }
    _io.write_json_atomic(out / "sweep.json", payload)
    return payload


def run_sweep(spec: SweepSpec | str | os.PathLike[str], *, out_dir: str | os.PathLike[str],
              scheduler: str | None = None, workers: int | None = None,
              processes: bool = True, client: Any = None, skip_failed: bool = False,
              progress: Callable[[str], None] | None = None,
              warn: Callable[[str], None] | None = None,
              bar: bool | None = None) -> dict[str, Any]:
    """Run every point of a sweep that is not done yet, on Dask, and persist each as it ends.

    ``out_dir`` may be a new folder, an empty one, or the folder of an earlier run of the same
    sweep (see :data:`SWEEP_OUTPUT`); anything else is refused before anything is written, and
    so are the file-system root, the home folder, the current folder and the folders above it
    (and, for a sweep given as a path, the folder of that file).  The sweep holds the lock
    ``out_dir/sweep.lock`` while it runs (:class:`sgdnoise._io.FolderLock`): a second sweep on
    the same folder is refused with a message naming the first, a lock left by a process of
    this host that is no longer running is taken over, and the lock is released at the end,
    on an error and on Ctrl-C.

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
    warn : callable, optional
        Called with one line of text for a notice (a stale lock taken over); default
        ``progress``.
    bar : bool or None
        A progress bar over the points to run, on standard error: None (default) draws it only
        when standard error is a terminal, True always, False never.  The ``progress`` lines
        are written around it without tearing it.

    Returns
    -------
    dict
        The ``sweep.json`` payload: ``total``, ``done``, ``failed``, ``pending``,
        ``diverged`` (the failed points whose run raised ``DivergenceError``), ``points``
        (each failed one with its ``error``).

    Raises
    ------
    ValueError
        The spec is invalid; ``out_dir`` holds a sweep of a different base configuration, is
        not a sweep folder or may not be used (:class:`sgdnoise._io.OutputFolderError`); or
        another sweep holds its lock (:class:`sgdnoise._io.FolderLockedError`).
    """
    protect = []
    if not isinstance(spec, SweepSpec):
        protect.append(Path(spec).parent)
        spec = SweepSpec.from_toml(spec)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    say = progress or (lambda _line: None)
    out = _io.check_output_folder(out_dir, SWEEP_OUTPUT, protect=protect)
    out.mkdir(parents=True, exist_ok=True)
    with _io.FolderLock(out / LOCK_FILE, folder=out_dir, command=SWEEP_OUTPUT.command,
                        warn=warn or say):
        # again, now that no other sweep can write to the folder
        _io.check_output_folder(out_dir, SWEEP_OUTPUT, protect=protect)
        return _run_locked(spec, out, scheduler=scheduler, workers=workers,
                           processes=processes, client=client, skip_failed=skip_failed, say=say,
                           bar=bar)


def _check_done_points(points: list[SweepPoint], points_dir: Path, out: Path) -> None:
    """Without ``sweep.json``: every finished point must hold this sweep's configuration."""
    for p in points:
        result = points_dir / p.id / "result.json"
        if not result.is_file():
            continue
        try:
            stored = json.loads(result.read_text(encoding="utf-8")).get("config")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            stored = None
        expected = json.loads(json.dumps(p.config.to_dict()))
        if stored != expected:
            raise ValueError(f"out_dir: {str(out)!r} has no sweep.json and its point "
                             f"{p.id} was computed with a different configuration; use "
                             f"another folder")


def _run_locked(spec: SweepSpec, out: Path, *, scheduler: str | None, workers: int | None,
                processes: bool, client: Any, skip_failed: bool,
                say: Callable[[str], None], bar: bool | None = None) -> dict[str, Any]:
    """:func:`run_sweep` once the folder is checked and locked."""
    points_dir = out / "points"
    points_dir.mkdir(exist_ok=True)
    points = spec.points()
    old = out / "sweep.json"
    if old.is_file():
        previous = _io.read_json(old)  # a damaged file was refused by the folder check
        if previous.get("base_hash") != _base_hash(spec):
            raise ValueError(f"out_dir: {str(out)!r} holds a sweep of a different base "
                             f"configuration; use another folder")
    else:
        _check_done_points(points, points_dir, out)
    for leftover in points_dir.iterdir():  # temporary folders of a run that was killed
        if _TMP_POINT.fullmatch(leftover.name) and leftover.is_dir():
            _io.remove_temp_folder(leftover, _TMP_PREFIX)
    status = {p.id: _point_status(points_dir / p.id) for p in points}
    errors = {p.id: _error_of(points_dir / p.id) for p in points if status[p.id] == "failed"}
    todo = []
    for p in points:
        if status[p.id] == "failed" and skip_failed:
            continue
        if status[p.id] != "done":
            _remove_point(points_dir / p.id)
            status[p.id] = "pending"
            errors.pop(p.id, None)
            todo.append(p)
    total = len(points)
    done0 = sum(v == "done" for v in status.values())
    _write_summary(out, spec, points, status, "running" if todo else "complete", errors)
    say(f"sweep: {total} points, {done0} already done, "
        f"{sum(v == 'failed' for v in status.values())} failed kept, {len(todo)} to run")
    if not todo:
        return _write_summary(out, spec, points, status, "complete", errors)

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
    meter = progress_bar(len(todo), desc="sweep", unit="point", enabled=bar)
    try:
        futures = {client.submit(run_point, p.config.to_dict(), p.overrides, p.id,
                                 str(points_dir), pure=False): p for p in todo}
        finished = done0
        for fut in as_completed(futures):
            p = futures[fut]
            try:
                res = fut.result()
                state = "done" if res["status"] in ("done", "skipped") else "failed"
                seconds, error = res["seconds"], res.get("error")
            except Exception as exc:  # noqa: BLE001 (the task was lost, e.g. its worker died)
                tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{p.id}-", dir=points_dir))
                _write_error(tmp, p.id, p.overrides, exc, traceback.format_exc())
                _finish_point(tmp, points_dir / p.id)
                state, seconds, error = "failed", 0.0, (type(exc).__name__, str(exc))
            status[p.id] = state
            if state == "failed":
                errors[p.id] = tuple(error) if error is not None else None
            finished += 1
            _write_summary(out, spec, points, status, "running", errors)
            shown = " ".join(f"{k}={v}" for k, v in p.overrides.items())
            why = f" {_reason(errors.get(p.id))}" if state == "failed" else ""
            meter.update()
            with meter.external_write_mode():
                say(f"[{finished}/{total}] {p.id} {state} ({seconds:.1f} s) {shown}{why}")
    finally:
        meter.close()
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
    summary = _write_summary(out, spec, points, status, "complete", errors)
    diverged = f" ({summary['diverged']} of the failed diverged)" if summary["diverged"] else ""
    say(f"sweep: {summary['done']} done, {summary['failed']} failed, "
        f"{summary['pending']} pending of {total}{diverged}; results in {out}")
    return summary


def load_sweep(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``sweep.json`` of a sweep folder, with each point's status (and, for a failed point,
    its ``error``) re-read from disk; a damaged ``sweep.json`` is a ValueError naming it."""
    out = Path(out_dir)
    path = out / "sweep.json"
    if not path.is_file():
        raise ValueError(f"out_dir: {str(out)!r} is not a sweep folder (no sweep.json)")
    try:
        payload = _io.read_json(path)
    except _io.OutputFolderError as exc:
        raise ValueError(f"out_dir: {exc}; {SWEEP_OUTPUT.recover}") from None
    if not _is_sweep_summary(payload) or not isinstance(payload.get("points"), list):
        raise ValueError(f"out_dir: {str(path)!r} is not the summary of a sweep")
    diverged = 0
    for p in payload["points"]:
        folder = out / "points" / p["id"]
        p["status"] = _point_status(folder)
        p.pop("error", None)
        if p["status"] == "failed":
            error = _error_of(folder)
            p["error"] = _reason(error)
            diverged += error is not None and error[0] == "DivergenceError"
    for s in ("done", "failed", "pending"):
        payload[s] = sum(p["status"] == s for p in payload["points"])
    payload["diverged"] = diverged
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
    "LOCK_FILE",
    "POINT_FILES",
    "SWEEP_FORMAT",
    "SWEEP_OUTPUT",
    "SweepPoint",
    "SweepSpec",
    "load_sweep",
    "point_id",
    "run_point",
    "run_sweep",
    "to_dataframe",
]
