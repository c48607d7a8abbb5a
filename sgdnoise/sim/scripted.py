r"""Scripted simulations: a TOML file describes one :func:`~sgdnoise.sim.dynamics.simulate` run.

A configuration has five sections (every key is checked; unknown keys are errors)::

    [problem]   kind = "linear_regression" | "toy2d" | "quadratic", plus its data parameters
    [noise]     kind = "gd" | "sgd" | "langevin", B, scheme, langevin_kind, k, sigma2,
                covariance, noise_trace, form
    [dynamics]  eta, num_steps, num_replicas, beta, momentum_style, theta0
    [measure]   one sub-table per observer of simulate (each optional):
      [measure.record]         every, loss                   → Record(every=, loss=)
      [measure.moments]        after, every, phase, about    → Moments(after=, …, about=)
      [measure.first_passage]  loss, stop                    → FirstPassage(loss=, stop=)
      [measure.noise_lags]     num_lags, after               → NoiseLags(num_lags=, after=)
    [run]       seed, backend, num_threads, name             → Execution(backend=, …)

Override and sweep keys are dotted paths: ``dynamics.eta``, ``measure.moments.after``.

:func:`run_config` builds the problem and the noise, runs the replicas and writes a folder
(``config.toml``, ``result.json``, ``arrays.npz``) that :func:`load_run`, :func:`to_dataframe`
and :func:`to_xarray` read back.  ``sgdnoise run CONFIG.toml`` does the same from the shell.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
import time
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgdnoise import _io, backends
from sgdnoise.sim.dynamics import (
    ENGINE_SCHEMES,
    FORMS,
    KINDS,
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    Moments,
    Momentum,
    NoiseLags,
    Observer,
    Record,
    NoiseModel,
    QuadraticProblem,
    ReplicaRun,
    Toy2DProblem,
    gd,
    langevin,
    sgd,
    simulate,
)
from sgdnoise.sim.training import MOMENTUM_STYLES

#: Version tag written to ``result.json``.
RUN_FORMAT = "sgdnoise-run/1"
#: The sections of a configuration, in file order.
SECTIONS: tuple[str, ...] = ("problem", "noise", "dynamics", "measure", "run")
#: ``problem.kind`` values.
PROBLEM_KINDS: tuple[str, ...] = ("linear_regression", "toy2d", "quadratic")
_NOISE_KINDS: tuple[str, ...] = ("gd", "sgd", "langevin")
_REQUIRED = object()


# ------------------------------------------------------------------------------ key checkers
def _fail(path: str, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


def _int(lo: int | None = None, hi: int | None = None) -> Any:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _fail(path, f"expected an integer; got {value!r}")
        v = int(value)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            bounds = " and ".join(b for b in (f">= {lo}" if lo is not None else "",
                                              f"<= {hi}" if hi is not None else "") if b)
            raise _fail(path, f"must be {bounds}; got {v}")
        return v
    return check


def _float(lo: float | None = None, *, open_lo: bool = False, hi: float | None = None,
           open_hi: bool = False) -> Any:
    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _fail(path, f"expected a number; got {value!r}")
        v = float(value)
        if not math.isfinite(v):
            raise _fail(path, f"must be finite; got {value!r}")
        if lo is not None and (v < lo or (open_lo and v == lo)):
            raise _fail(path, f"must be {'>' if open_lo else '>='} {lo}; got {v}")
        if hi is not None and (v > hi or (open_hi and v == hi)):
            raise _fail(path, f"must be {'<' if open_hi else '<='} {hi}; got {v}")
        return v
    return check


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false; got {value!r}")
    return value


def _choice(choices: tuple[str, ...]) -> Any:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise _fail(path, f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "/\\\0"):
        raise _fail(path, f"expected a non-empty name without path separators; got {value!r}")
    return value


def _float_array(ndim: tuple[int, ...]) -> Any:
    def check(value: Any, path: str) -> list[Any]:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise _fail(path, f"expected a list of numbers; got {value!r}") from None
        if arr.ndim not in ndim or arr.size == 0 or isinstance(value, (str, bool)):
            shape = " or ".join({1: "a list", 2: "a list of equal-length lists"}[n] for n in ndim)
            raise _fail(path, f"expected {shape} of numbers; got {value!r}")
        if not np.isfinite(arr).all():
            raise _fail(path, "must contain finite numbers only")
        return arr.tolist()
    return check


# key -> (checker, default); _REQUIRED marks required keys, None means "not set"
_PROBLEM_KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "linear_regression": {
        "N": (_int(1), 1000), "d": (_int(1), 10), "noise": (_float(0.0), 0.5),
        "input_variances": (_float_array((1,)), None), "seed": (_int(0), 0),
    },
    "toy2d": {"N": (_int(1), 100), "seed": (_int(0), 0)},
    "quadratic": {
        "lam": (_float_array((1,)), None), "H": (_float_array((2,)), None),
        "theta_star": (_float_array((1,)), None), "N": (_int(1), None),
        "tilt_variances": (_float_array((1,)), None), "seed": (_int(0), 0),
    },
}
_NOISE_KEYS: dict[str, tuple[Any, Any]] = {
    "B": (_int(1), 1), "scheme": (_choice(ENGINE_SCHEMES), "replacement"),
    "langevin_kind": (_choice(KINDS), _REQUIRED), "k": (_int(1), None),
    "sigma2": (_float(0.0), None), "covariance": (_float_array((2,)), None),
    "noise_trace": (_float(0.0), None), "form": (_choice(FORMS), "gradient"),
}
#: Keys of [noise] each noise kind accepts (besides ``kind``).
_NOISE_ALLOWED = {
    "gd": ("noise_trace", "form"),
    "sgd": ("B", "scheme", "noise_trace", "form"),
    "langevin": tuple(_NOISE_KEYS),
}
_SECTION_KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "dynamics": {
        "eta": (_float(0.0, open_lo=True), _REQUIRED), "num_steps": (_int(0), _REQUIRED),
        "num_replicas": (_int(1), 1), "beta": (_float(0.0, hi=1.0, open_hi=True), 0.0),
        "momentum_style": (_choice(MOMENTUM_STYLES), "heavy_ball"),
        "theta0": (_float_array((1, 2)), None),
    },
    "run": {
        "seed": (_int(0, 2**63 - 1), 0),
        "backend": (_choice((*backends.BACKENDS, "auto")), "numpy"),
        "num_threads": (_int(1), None), "name": (_string, "run"),
    },
}


def _about(value: Any, path: str) -> Any:
    if isinstance(value, str):
        return _choice(("mean", "theta_star"))(value, path)
    return _float_array((1,))(value, path)


#: Sub-tables of [measure]: the observers of :func:`~sgdnoise.sim.dynamics.simulate`.
_MEASURE_KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "record": {"every": (_int(1), _REQUIRED), "loss": (_bool, False)},
    "moments": {"after": (_int(0), 0), "every": (_int(1), 1), "phase": (_int(0), 0),
                "about": (_about, "mean")},
    "first_passage": {"loss": (_float(), _REQUIRED), "stop": (_bool, False)},
    "noise_lags": {"num_lags": (_int(1), _REQUIRED), "after": (_int(0), 0)},
}
_OBSERVER_CLASSES: dict[str, type[Observer]] = {
    "record": Record, "moments": Moments, "first_passage": FirstPassage,
    "noise_lags": NoiseLags,
}
#: Flat [measure] keys of earlier versions and the key that replaces each.
MOVED_MEASURE_KEYS: dict[str, str] = {
    "record_every": "measure.record.every",
    "track_loss": "measure.record.loss",
    "first_passage_loss": "measure.first_passage.loss",
    "stop_at_first_passage": "measure.first_passage.stop",
    "moments_after": "measure.moments.after",
}


def _check_measure(raw: Any) -> dict[str, dict[str, Any]]:
    """[measure]: one optional sub-table per observer, validated with its defaults."""
    if not isinstance(raw, dict):
        raise _fail("measure", f"expected a table; got {raw!r}")
    for key in raw:
        if key in MOVED_MEASURE_KEYS:
            raise _fail(f"measure.{key}", f"moved: now {MOVED_MEASURE_KEYS[key]} (one "
                                          f"sub-table per measurement, e.g. [measure.record] "
                                          f"every = 50)")
        if key not in _MEASURE_KEYS:
            raise _fail(f"measure.{key}", f"unknown measurement; allowed: "
                                          f"{', '.join(_MEASURE_KEYS)}")
    return {name: _check_section(raw[name], f"measure.{name}", keys)
            for name, keys in _MEASURE_KEYS.items() if name in raw}


def _check_section(raw: Any, path: str, keys: dict[str, tuple[Any, Any]],
                   allowed: tuple[str, ...] | None = None, skip: tuple[str, ...] = (),
                   why: str = "") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(path, f"expected a table; got {raw!r}")
    allowed = tuple(keys) if allowed is None else allowed
    for key in raw:
        if key in skip:
            continue
        if key not in allowed:
            listed = ", ".join(sorted((*allowed, *skip)))
            reason = f" {why}" if why and key in keys else ""
            raise _fail(f"{path}.{key}", f"unknown key{reason}; allowed keys: {listed}")
    out: dict[str, Any] = {}
    for key in allowed:
        check, default = keys[key]
        if key in raw:
            out[key] = check(raw[key], f"{path}.{key}")
        elif default is _REQUIRED:
            raise _fail(f"{path}.{key}", "required key is missing")
        else:
            out[key] = default
    return out


def _validate(raw: Any) -> dict[str, dict[str, Any]]:
    """Check every key of a configuration dict and fill in the defaults."""
    if not isinstance(raw, dict):
        raise ValueError(f"config: expected a table of sections; got {type(raw).__name__}")  # noqa: TRY004
    for name in raw:
        if name not in SECTIONS:
            raise _fail(str(name), f"unknown section; allowed sections: {', '.join(SECTIONS)}")
    for name in ("problem", "noise", "dynamics"):
        if name not in raw:
            raise _fail(name, "required section is missing")
    cfg: dict[str, dict[str, Any]] = {}

    prob = raw["problem"]
    if not isinstance(prob, dict):
        raise _fail("problem", f"expected a table; got {prob!r}")
    if "kind" not in prob:
        raise _fail("problem.kind", f"required key is missing; one of {', '.join(PROBLEM_KINDS)}")
    kind = _choice(PROBLEM_KINDS)(prob["kind"], "problem.kind")
    cfg["problem"] = {"kind": kind, **_check_section(
        prob, "problem", _PROBLEM_KEYS[kind], skip=("kind",))}

    noise = raw["noise"]
    if not isinstance(noise, dict):
        raise _fail("noise", f"expected a table; got {noise!r}")
    if "kind" not in noise:
        raise _fail("noise.kind", f"required key is missing; one of {', '.join(_NOISE_KINDS)}")
    nkind = _choice(_NOISE_KINDS)(noise["kind"], "noise.kind")
    cfg["noise"] = {"kind": nkind, **_check_section(
        noise, "noise", _NOISE_KEYS, allowed=_NOISE_ALLOWED[nkind], skip=("kind",),
        why=f"for noise.kind = {nkind!r}")}

    for name in ("dynamics", "run"):
        cfg[name] = _check_section(raw.get(name, {}), name, _SECTION_KEYS[name])
    cfg["measure"] = _check_measure(raw.get("measure", {}))
    _cross_check(cfg)
    return cfg


def _problem_dim(p: dict[str, Any]) -> int | None:
    if p["kind"] == "toy2d":
        return 2
    if p["kind"] == "linear_regression":
        return p["d"]
    if p["H"] is not None:
        return len(p["H"])
    return None if p["lam"] is None else len(p["lam"])


def _cross_check(cfg: dict[str, dict[str, Any]]) -> None:
    """Consistency between keys that can be checked without building the problem."""
    p, n, dyn, m = cfg["problem"], cfg["noise"], cfg["dynamics"], cfg["measure"]
    if p["kind"] == "quadratic":
        if (p["lam"] is None) == (p["H"] is None):
            raise _fail("problem.lam", "give exactly one of problem.lam (the diagonal of H) and "
                                       "problem.H (the full matrix)")
        if p["H"] is not None and len(p["H"]) != len(p["H"][0]):
            raise _fail("problem.H", "must be a square matrix")
        if p["tilt_variances"] is not None and p["N"] is None:
            raise _fail("problem.tilt_variances", "needs problem.N (the number of tilts)")
    D = _problem_dim(p)
    for key in ("input_variances", "theta_star", "tilt_variances"):
        if p.get(key) is not None and len(p[key]) != D:
            raise _fail(f"problem.{key}", f"must have length {D}; got {len(p[key])}")
    if D is not None and dyn["theta0"] is not None:
        th0 = np.asarray(dyn["theta0"])
        if th0.shape[-1] != D or (th0.ndim == 2 and th0.shape[0] != dyn["num_replicas"]):
            raise _fail("dynamics.theta0", f"must have length {D} or shape "
                                           f"({dyn['num_replicas']}, {D}); got {th0.shape}")
    N = p.get("N")
    if n["kind"] != "gd" and N is not None and n["B"] > N:
        raise _fail("noise.B", f"must be <= problem.N = {N}; got {n['B']}")
    if n["kind"] == "langevin":
        lk = n["langevin_kind"]
        for key, kinds in (("k", ("leading", "hessian")), ("sigma2", ("const",)),
                           ("covariance", ("fixed",))):
            if n[key] is not None and lk not in kinds:
                raise _fail(f"noise.{key}", f"only used with noise.langevin_kind in "
                                            f"{', '.join(kinds)}; got {lk!r}")
        if lk == "fixed" and n["covariance"] is None:
            raise _fail("noise.covariance", "required with noise.langevin_kind = 'fixed'")
    K = dyn["num_steps"]
    for table in ("moments", "noise_lags"):
        if table in m and m[table]["after"] > K:
            raise _fail(f"measure.{table}.after", f"must be <= dynamics.num_steps = {K}")
    if "moments" in m and m["moments"]["phase"] >= m["moments"]["every"]:
        raise _fail("measure.moments.phase",
                    f"must be < measure.moments.every = {m['moments']['every']}")
    if "noise_lags" in m:
        lags = m["noise_lags"]
        if lags["num_lags"] > K - lags["after"]:
            raise _fail("measure.noise_lags.num_lags",
                        f"must be <= dynamics.num_steps - measure.noise_lags.after = "
                        f"{K - lags['after']}")
        if m.get("first_passage", {}).get("stop"):
            raise _fail("measure.noise_lags", "cannot be combined with "
                                              "measure.first_passage.stop = true")


# ----------------------------------------------------------------------------------- config
def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a syntax error becomes a ValueError naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None


@dataclass(frozen=True)
class RunConfig:
    r"""A validated simulation configuration: five sections with every default filled in.

    Build it with :meth:`from_toml` or :meth:`from_dict`; every error is a ``ValueError`` whose
    message starts with the dotted path of the bad key, e.g.
    ``noise.scheme: 'shuffle' is not one of replacement, iid, reshuffle, shuffle_once``.

    Attributes
    ----------
    problem, noise, dynamics, measure, run : dict
        The sections; unset optional keys are None.

    References
    ----------
    The dynamics are those of :func:`sgdnoise.sim.dynamics.simulate` (spec parts B, C, D).
    """

    problem: dict[str, Any]
    noise: dict[str, Any]
    dynamics: dict[str, Any]
    measure: dict[str, Any]
    run: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Validate a nested dict (section → key → value) and fill in the defaults."""
        return cls(**_validate(d))

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Read and validate a TOML file."""
        return cls.from_dict(_read_toml(path))

    def to_dict(self) -> dict[str, Any]:
        """Nested dict of the set keys (None omitted); ``from_dict(to_dict())`` is equal."""
        out = {s: {k: v for k, v in getattr(self, s).items() if v is not None}
               for s in SECTIONS}
        out["measure"] = {name: dict(table) for name, table in self.measure.items()}
        return out

    def to_toml(self) -> str:
        """The normalised configuration as TOML text."""
        return _dump_toml(self.to_dict())

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A new validated config with dotted keys (``"dynamics.eta"``) replaced."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    def build_problem(self) -> LinearRegressionProblem | Toy2DProblem | QuadraticProblem:
        """The problem of ``[problem]``, its data drawn from ``problem.seed``."""
        p = self.problem
        rng = np.random.default_rng(p["seed"])
        if p["kind"] == "toy2d":
            from sgdnoise.sim.models import toy_data

            return Toy2DProblem(toy_data(rng, p["N"]))
        if p["kind"] == "linear_regression":
            from sgdnoise.sim.data import gaussian_regression

            var = np.ones(p["d"]) if p["input_variances"] is None else \
                np.asarray(p["input_variances"])
            if (var < 0).any():
                raise _fail("problem.input_variances", "must be >= 0")
            data = gaussian_regression(p["N"], np.diag(var), sigma=p["noise"], rng=rng)
            return LinearRegressionProblem(data.x, data.y)
        H = np.asarray(p["H"]) if p["H"] is not None else np.diag(p["lam"])
        D = H.shape[0]
        G = None
        if p["N"] is not None:
            var = np.ones(D) if p["tilt_variances"] is None else np.asarray(p["tilt_variances"])
            if (var < 0).any():
                raise _fail("problem.tilt_variances", "must be >= 0")
            G = rng.standard_normal((p["N"], D)) * np.sqrt(var)
        return QuadraticProblem(H, theta_star=p["theta_star"], G=G)

    def build_noise(self) -> NoiseModel:
        """The noise model of ``[noise]``."""
        n = self.noise
        if n["kind"] == "gd":
            return gd()
        if n["kind"] == "sgd":
            return sgd(n["B"], scheme=n["scheme"])
        return langevin(n["langevin_kind"], k=n["k"], sigma2=n["sigma2"],
                        covariance=n["covariance"], B=n["B"], scheme=n["scheme"])

    def observers(self) -> list[Observer]:
        """The observers of ``[measure]``: Record, Moments, FirstPassage, NoiseLags (in this
        order, those whose sub-table is present)."""
        return [_OBSERVER_CLASSES[name](**self.measure[name]) for name in _MEASURE_KEYS
                if name in self.measure]

    def simulate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~sgdnoise.sim.dynamics.simulate` (without problem and
        noise)."""
        d, r, n = self.dynamics, self.run, self.noise
        return {
            "eta": d["eta"], "num_steps": d["num_steps"], "num_replicas": d["num_replicas"],
            "seed": r["seed"], "theta0": d["theta0"], "form": n["form"],
            "noise_trace": n["noise_trace"],
            "momentum": Momentum(d["beta"], style=d["momentum_style"]),
            "observe": self.observers(),
            "execution": Execution(backend=r["backend"], num_threads=r["num_threads"]),
        }


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Copy of a nested config dict with dotted keys replaced: ``{"noise.B": 8}``,
    ``{"measure.moments.after": 100}`` (a measurement's sub-table is created if absent).

    Raises
    ------
    ValueError
        A key is not of the form ``section.key`` (``measure.table.key`` in [measure]) or
        names an unknown section.
    """
    out = {s: dict(v) if isinstance(v, dict) else v for s, v in config.items()}
    if isinstance(out.get("measure"), dict):
        out["measure"] = {k: dict(v) if isinstance(v, dict) else v
                          for k, v in out["measure"].items()}
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        depth = 3 if parts[0] == "measure" else 2
        if len(parts) != depth or not all(parts):
            raise ValueError(f"{dotted}: expected a key of the form section.key (e.g. "
                             f"dynamics.eta), or measure.table.key (e.g. "
                             f"measure.moments.after)")
        section, *path = parts
        if section not in SECTIONS:
            raise _fail(dotted, f"unknown section {section!r}; allowed sections: "
                                f"{', '.join(SECTIONS)}")
        table = out.setdefault(section, {})
        where = section
        for name in path[:-1]:
            if not isinstance(table, dict):
                raise _fail(where, "expected a table")
            table = table.setdefault(name, {})
            where = f"{where}.{name}"
        if not isinstance(table, dict):
            raise _fail(where, "expected a table")
        table[path[-1]] = value
    return out


# ----------------------------------------------------------------------------- toml writing
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def _dump_toml(d: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for section, table in d.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items()
                     if not isinstance(v, dict))
        lines.append("")
        for name, sub in table.items():
            if isinstance(sub, dict):
                lines.append(f"[{section}.{name}]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in sub.items())
                lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ output
def _jsonable(x: Any) -> Any:
    """Floats that JSON can hold (NaN and ±inf become None)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_summary(run: ReplicaRun) -> dict[str, Any]:
    r"""Scalar summaries of a run over its R replicas.

    .. math::
        \overline{L} = \frac1R \sum_r L(\theta^{(r)}_K),\qquad
        \mathrm{s.e.} = \frac{s_L}{\sqrt R},\quad s_L^2 = \frac{1}{R-1}\sum_r (L_r - \overline L)^2

    Keys: ``num_replicas``, ``loss_final_mean``, ``loss_final_std`` (sample, 1/(R−1); None
    for R = 1), ``loss_final_sem``, ``theta_final_mean_norm`` (‖mean_r θ_K‖); with a
    first-passage level ``first_passage_fraction`` (replicas that reached it) and
    ``first_passage_mean`` (mean step among those, None if none, a lower bound on the mean
    passage time whenever some replicas are censored); with moments ``theta_var_mean`` (the
    time variance of θ averaged over replicas and coordinates) and ``moments_count``.

    References
    ----------
    Spec parts C (first passage, censoring) and D (stationary moments).
    """
    R = run.num_replicas
    L = run.loss_final
    with np.errstate(over="ignore", invalid="ignore"):  # huge but finite values give inf: None
        std = float(L.std(ddof=1)) if R > 1 else None
        out: dict[str, Any] = {
            "num_replicas": R, "loss_final_mean": float(L.mean()), "loss_final_std": std,
            "loss_final_sem": None if std is None else std / math.sqrt(R),
            "theta_final_mean_norm": float(np.linalg.norm(run.theta.mean(axis=0))),
        }
    if run.first_passage is not None:
        hit = run.first_passage >= 0
        out["first_passage_fraction"] = float(hit.mean())
        out["first_passage_mean"] = float(run.first_passage[hit].mean()) if hit.any() else None
    if run.theta_var is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            out["theta_var_mean"] = float(run.theta_var.mean())
        out["moments_count"] = run.moments_count
    return {k: _jsonable(v) for k, v in out.items()}


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What :func:`run_config` wrote: the folder, the config, the run and its summary.

    Attributes
    ----------
    path : Path
        The output folder (``config.toml``, ``result.json``, ``arrays.npz``).
    config : RunConfig
    run : ReplicaRun
    summary : dict
        :func:`run_summary` of the run.
    timings : dict
        Seconds spent building the problem (``build_s``), simulating (``simulate_s``) and in
        total (``total_s``).
    """

    path: Path
    config: RunConfig
    run: ReplicaRun
    summary: dict[str, Any]
    timings: dict[str, float]


#: The files of a run folder (what :func:`write_run_folder` writes).
RUN_FILES: tuple[str, ...] = ("config.toml", "result.json", "arrays.npz")


def _is_run_result(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == RUN_FORMAT


#: The output folder of :func:`run_config` (``sgdnoise run``): recognised by a ``result.json``
#: whose ``format`` is :data:`RUN_FORMAT`, and holding nothing but :data:`RUN_FILES`.
RUN_OUTPUT = _io.OutputLayout(command="sgdnoise run", marker="result.json",
                              recognise=_is_run_result, files=RUN_FILES)


def _lock_path(target: Path) -> Path:
    """The lock of a run folder: a hidden file beside it (the folder itself is swapped)."""
    return target.with_name(f".{target.name}.lock")


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the finished temporary folder ``tmp`` to ``target``.

    ``target`` was checked by :func:`sgdnoise._io.check_output_folder` (absent, empty, or an
    earlier run folder holding only :data:`RUN_FILES`).  An earlier one is first renamed to a
    hidden name beside it, put back if the second rename fails, and deleted file by file once
    the new folder is in place (:func:`sgdnoise._io.remove_own_folder`: only the files a run
    writes).
    """
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)  # the earlier run stays as it was
        raise
    if not _io.remove_own_folder(old, RUN_FILES):
        warnings.warn(f"the earlier run was kept in {str(old)!r}: files that a run does not "
                      f"write appeared in it while this run was being written", stacklevel=3)


def write_run_folder(folder: str | os.PathLike[str], config: RunConfig, run: ReplicaRun,
                     timings: dict[str, float]) -> dict[str, Any]:
    """Write ``config.toml``, ``arrays.npz`` and ``result.json`` into an existing folder
    (not atomic by itself; :func:`run_config` writes into a temporary folder and renames it).
    Returns the ``result.json`` payload."""
    folder = Path(folder)
    (folder / "config.toml").write_text(config.to_toml(), encoding="utf-8")
    arrays = run.arrays()
    np.savez(folder / "arrays.npz", **arrays)
    summary = run_summary(run)
    payload = {
        "format": RUN_FORMAT, "config": config.to_dict(), "seed": config.run["seed"],
        "backend": run.config["backend"], "versions": run.provenance.get("versions"),
        "provenance": {k: v for k, v in run.provenance.items() if k != "versions"},
        "timings": timings, "summary": summary, "engine_config": run.config,
        "moments_count": run.moments_count,
        "arrays_file": "arrays.npz",
        "arrays": {n: {"shape": list(a.shape), "dtype": str(a.dtype)} for n, a in arrays.items()},
    }
    _io.write_json_atomic(folder / "result.json", payload)
    return payload


def run_config(config: RunConfig | dict[str, Any] | str | os.PathLike[str], *,
               out_dir: str | os.PathLike[str] | None) -> RunRecord:
    r"""Build the problem and noise of a configuration, simulate, and write the output folder.

    The dynamics are :func:`~sgdnoise.sim.dynamics.simulate`'s,

    .. math:: \theta_{k+1} = \theta_k - \eta\,(\nabla L(\theta_k) + \xi_k),

    with R replicas drawing from the Philox streams of ``run.seed`` (results do not depend on
    the backend beyond round-off).  The folder ``out_dir`` receives ``config.toml`` (the
    normalised config, every default written out), ``result.json`` (config, seed, backend,
    versions, timings, :func:`run_summary`) and ``arrays.npz`` (the arrays of the
    :class:`~sgdnoise.sim.dynamics.ReplicaRun`).  It is written to a temporary folder beside
    it and renamed, so it is either complete or absent.

    ``out_dir`` may be a new folder, an empty one, or the folder of an earlier run (a
    ``result.json`` of format :data:`RUN_FORMAT` and nothing but :data:`RUN_FILES`), which is
    then replaced; anything else is refused before the simulation starts, and so are the
    file-system root, the home folder, the current folder, the folders above it and, for a
    configuration given as a path, the folder of that file and those above it.  While it runs,
    the hidden file ``.<name>.lock`` beside ``out_dir`` locks the folder against a second run
    (:class:`sgdnoise._io.FolderLock`).

    Parameters
    ----------
    config : RunConfig, dict or path of a TOML file
    out_dir : path or None
        The output folder; None runs without writing anything (``record.path`` is None).

    Returns
    -------
    RunRecord

    Raises
    ------
    ValueError
        An invalid configuration; or ``out_dir`` may not be used
        (:class:`sgdnoise._io.OutputFolderError`, a ``ValueError``) or another run holds its
        lock (:class:`sgdnoise._io.FolderLockedError`); the message says what is in the way.
    DivergenceError
        The dynamics diverged (:class:`sgdnoise.sim.training.DivergenceError`); nothing is
        written.

    References
    ----------
    Spec parts B, C and D (the replica dynamics and their measurements).
    """
    t0 = time.perf_counter()
    protect = []
    if not isinstance(config, (dict, RunConfig)):
        protect.append(Path(config).parent)
        config = RunConfig.from_toml(config)
    elif isinstance(config, dict):
        config = RunConfig.from_dict(config)
    path = None if out_dir is None else Path(out_dir)
    if path is None:
        return _simulate_config(config, t0)[0]
    target = _io.check_output_folder(path, RUN_OUTPUT, protect=protect)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _io.FolderLock(_lock_path(target), folder=path, command=RUN_OUTPUT.command):
        # again, now that no other run can write to it
        _io.check_output_folder(path, RUN_OUTPUT, protect=protect)
        record, timings = _simulate_config(config, t0)
        prefix = f".{target.name}.tmp-"
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        try:
            tmp.chmod(0o755)
            timings["total_s"] = time.perf_counter() - t0
            write_run_folder(tmp, config, record.run, timings)
            _swap_in(tmp, target)
        except BaseException:
            _io.remove_temp_folder(tmp, prefix)
            raise
    return RunRecord(path=path, config=config, run=record.run, summary=record.summary,
                     timings=timings)


def _simulate_config(config: RunConfig, t0: float) -> tuple[RunRecord, dict[str, float]]:
    problem = config.build_problem()
    noise = config.build_noise()
    t1 = time.perf_counter()
    run = simulate(problem, noise, **config.simulate_kwargs())
    t2 = time.perf_counter()
    timings = {"build_s": t1 - t0, "simulate_s": t2 - t1, "total_s": t2 - t0}
    return RunRecord(path=None, config=config, run=run, summary=run_summary(run),
                     timings=timings), timings


# ------------------------------------------------------------------------------------ loading
def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run folder written by :func:`run_config`.

    Returns
    -------
    dict
        ``result`` (the ``result.json`` payload), ``config`` (a :class:`RunConfig` from
        ``config.toml``), ``arrays`` (name → numpy array), ``path``.
    """
    path = Path(path)
    result_file = path / "result.json"
    if not result_file.is_file():
        raise ValueError(f"path: {str(path)!r} is not a run folder (no result.json)")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    with np.load(path / result.get("arrays_file", "arrays.npz"), allow_pickle=False) as f:
        arrays = {n: f[n].copy() for n in f.files}
    return {"path": path, "result": result, "config": RunConfig.from_toml(path / "config.toml"),
            "arrays": arrays}


def _arrays_of(source: RunRecord | str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    if isinstance(source, RunRecord):
        return source.run.arrays(), source.config
    loaded = load_run(source)
    return loaded["arrays"], loaded["config"]


def to_dataframe(source: RunRecord | str | os.PathLike[str]) -> Any:
    """One row per replica: final θ, loss, first passage and moments (pandas).

    Columns: ``replica``; ``theta_0`` … ``theta_{D-1}`` (final parameters), ``theta0_i``
    (start), ``loss_final``; with a first-passage level ``first_passage`` (step, −1 if none)
    and ``censored``; with moments ``theta_mean_i``, ``theta_var_i``, ``velocity_mean_i``,
    ``velocity_var_i``.

    Parameters
    ----------
    source : RunRecord or path of a run folder
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install 'sgdnoise[analysis]' "
                          "(or pip install pandas)") from None

    arrays, _ = _arrays_of(source)
    R, D = arrays["theta"].shape
    cols: dict[str, Any] = {"replica": np.arange(R)}
    for name, prefix in (("theta", "theta"), ("theta0", "theta0")):
        for i in range(D):
            cols[f"{prefix}_{i}"] = arrays[name][:, i]
    cols["loss_final"] = arrays["loss_final"]
    if "first_passage" in arrays:
        cols["first_passage"] = arrays["first_passage"]
        cols["censored"] = arrays["censored"]
    for name in ("theta_mean", "theta_var", "velocity_mean", "velocity_var"):
        if name in arrays:
            for i in range(D):
                cols[f"{name}_{i}"] = arrays[name][:, i]
    return pd.DataFrame(cols)


def to_xarray(source: RunRecord | str | os.PathLike[str]) -> Any:
    """The run as an ``xarray.Dataset`` with dims ``replica``, ``record`` and ``param``.

    Variables: ``theta``, ``theta0``, ``velocity`` (replica, param), ``loss_final``
    (replica), and when present ``trajectory`` (record, replica, param), ``loss`` (record,
    replica), ``first_passage``, ``censored`` (replica) and the moments (replica, param);
    coordinate ``step`` along ``record``; the normalised config as the JSON attribute
    ``config``.  Needs xarray (``pip install 'sgdnoise[analysis]'``).
    """
    try:
        import xarray as xr
    except ImportError:
        raise ImportError("to_xarray needs xarray: pip install 'sgdnoise[analysis]' "
                          "(or pip install xarray)") from None
    arrays, config = _arrays_of(source)
    R, D = arrays["theta"].shape
    dims = {"theta": ("replica", "param"), "theta0": ("replica", "param"),
            "velocity": ("replica", "param"), "loss_final": ("replica",),
            "trajectory": ("record", "replica", "param"), "loss": ("record", "replica"),
            "first_passage": ("replica",), "censored": ("replica",),
            "theta_mean": ("replica", "param"), "theta_var": ("replica", "param"),
            "velocity_mean": ("replica", "param"), "velocity_var": ("replica", "param")}
    data = {n: (dims[n], a) for n, a in arrays.items() if n in dims}
    coords: dict[str, Any] = {"replica": np.arange(R), "param": np.arange(D)}
    if "record_steps" in arrays:
        coords["step"] = ("record", arrays["record_steps"])
    return xr.Dataset(data, coords=coords,
                      attrs={"config": json.dumps(config.to_dict(), sort_keys=True)})


__all__ = [
    "PROBLEM_KINDS",
    "RUN_FILES",
    "RUN_FORMAT",
    "RUN_OUTPUT",
    "SECTIONS",
    "RunConfig",
    "RunRecord",
    "apply_overrides",
    "load_run",
    "run_config",
    "run_summary",
    "to_dataframe",
    "to_xarray",
    "write_run_folder",
]
