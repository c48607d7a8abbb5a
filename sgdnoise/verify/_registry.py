"""Claims: a prediction held against a measurement, with a tolerance and a verdict.

A :class:`Claim` carries the stable id of SPEC.md (``"A1"``, ``"D2"``…), its source and a plain
statement; its ``run`` receives a :class:`RunContext` (seed, backend, scale) and returns an
:class:`Outcome`.  :meth:`Claim.check` times the run and wraps it in a :class:`ClaimResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sgdnoise import backends
from sgdnoise._validate import check_choice

#: Problem sizes a claim can run at: ``"quick"`` (CI and the default ``sgdnoise verify``) and
#: ``"full"`` (paper scale).
SCALES: tuple[str, ...] = ("quick", "full")


@dataclass(frozen=True)
class RunContext:
    """What a claim's ``run`` may depend on besides its own constants.

    Attributes
    ----------
    seed : int
        Root seed; claims derive child generators with :meth:`rng`.
    backend : str
        A resolved backend name (``numpy``, ``numba`` or ``cupy``).
    scale : {"quick", "full"}
        Problem sizes: quick for CI and the default ``sgdnoise verify``, full for paper scale.
    out_dir : str or None
        Folder for the claim's figures and tables (None: draw nothing).
    progress : callable or None
        ``progress(done, total, what)``, called by long claims as their parts finish (the
        ``sgdnoise verify`` command prints it); None: silent.
    layer : int, "all" or None
        What the trained-network claims (A6) analyse: None, every dense layer separately (the
        default); an int, that layer only; ``"all"``, the whole network (every layer jointly,
        with the cross-layer blocks).
    """

    seed: int = 0
    backend: str = "numpy"
    scale: str = "quick"
    out_dir: str | None = None
    progress: Callable[[int, int, str], None] | None = field(default=None, compare=False,
                                                              repr=False)
    layer: int | str | None = None

    def report(self, done: int, total: int, what: str) -> None:
        """Tell the caller that ``done`` of ``total`` parts (``what``) have finished."""
        if self.progress is not None:
            self.progress(int(done), int(total), what)

    def rng(self, *key: int) -> np.random.Generator:
        """A generator derived from (seed, *key): independent streams per sub-experiment."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, *key]))


@dataclass(frozen=True)
class Outcome:
    """What a claim's run measured.

    Attributes
    ----------
    prediction : str
        The predicted value or relation, human-readable, for the summary table.
    measurement : str
        What was measured, human-readable, for the summary table.
    tolerance : str
        The acceptance criterion, human-readable, for the summary table.
    passed : bool
        Whether the measurement agrees with the prediction within the tolerance.
    values : dict
        Every number behind the strings (JSON-serialisable), for ``results.json``.
    """

    prediction: str
    measurement: str
    tolerance: str
    passed: bool
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimResult:
    """A claim's outcome with its provenance (seed, backend, scale, seconds).

    Attributes
    ----------
    id : str
        Spec id of the claim, e.g. ``"A3"``.
    source : str
        Paper (and section) the statement comes from.
    statement : str
        The claim in one or two sentences.
    prediction : str
        Human-readable prediction (see :class:`Outcome`); ``"—"`` when the run raised.
    measurement : str
        Human-readable measurement; ``"—"`` when the run raised.
    tolerance : str
        Human-readable acceptance criterion; ``"—"`` when the run raised.
    passed : bool
        True when the run completed and its outcome passed.
    values : dict
        Every number behind the strings, for ``results.json``.
    seed : int
        Root seed of the run.
    backend : str
        The resolved backend the run used.
    scale : {"quick", "full"}
        Problem sizes of the run.
    seconds : float
        Wall-clock duration of the run.
    error : str or None
        ``"ExceptionType: message"`` when the run raised, else None.
    """

    id: str
    source: str
    statement: str
    prediction: str
    measurement: str
    tolerance: str
    passed: bool
    values: dict[str, Any]
    seed: int
    backend: str
    scale: str
    seconds: float
    error: str | None = None

    @property
    def verdict(self) -> str:
        """``"pass"``, ``"FAIL"`` or ``"ERROR"`` (the run raised)."""
        if self.error is not None:
            return "ERROR"
        return "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN and inf become strings)."""
        out = asdict(self)
        out["verdict"] = self.verdict
        out["values"] = _jsonable(self.values)
        return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else str(v)
    return x


@dataclass(frozen=True)
class Claim:
    """One checkable statement of SPEC.md.

    Attributes
    ----------
    id : str
        Spec id, e.g. ``"A3"``.
    source : str
        Paper (and section) the statement comes from.
    statement : str
        The claim in one or two sentences, including choices made where the paper is open.
    run : callable
        ``run(ctx: RunContext) -> Outcome``.
    """

    id: str
    source: str
    statement: str
    run: Callable[[RunContext], Outcome]

    def check(self, *, seed: int = 0, backend: str = "auto", scale: str = "quick",
              out_dir: str | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              layer: int | str | None = None) -> ClaimResult:
        """Run the claim and return its :class:`ClaimResult`; an exception becomes an ERROR.

        ``progress(done, total, what)`` receives the progress reports of long claims;
        ``layer`` is :attr:`RunContext.layer` (the layers the network claims analyse).
        """
        check_choice(scale, "scale", SCALES)
        resolved = backends.resolve(backend)
        if layer is not None and layer != "all" and (
                isinstance(layer, bool) or not isinstance(layer, int)):
            raise ValueError(f"layer must be None, 'all' or an int; got {layer!r}")
        ctx = RunContext(seed=int(seed), backend=resolved, scale=scale, out_dir=out_dir,
                         progress=progress, layer=layer)
        start = time.perf_counter()
        try:
            out = self.run(ctx)
            error = None
        except Exception as exc:  # reported, never swallowed silently  # noqa: BLE001
            out = Outcome("—", "—", "—", False, {})
            error = f"{type(exc).__name__}: {exc}"
        return ClaimResult(
            id=self.id, source=self.source, statement=self.statement,
            prediction=out.prediction, measurement=out.measurement, tolerance=out.tolerance,
            passed=bool(out.passed) and error is None, values=out.values, seed=int(seed),
            backend=resolved, scale=scale, seconds=time.perf_counter() - start, error=error,
        )


class Registry:
    """An ordered collection of claims keyed by id (no global mutable state beyond the default)."""

    def __init__(self, claims: Iterable[Claim] = ()) -> None:
        self._claims: dict[str, Claim] = {}
        for c in claims:
            self.add(c)

    def add(self, claim: Claim) -> Claim:
        """Register a claim; ids are unique."""
        if claim.id in self._claims:
            raise ValueError(f"claim id {claim.id!r} is already registered")
        self._claims[claim.id] = claim
        return claim

    def get(self, claim_id: str) -> Claim:
        """The claim with this id."""
        try:
            return self._claims[claim_id]
        except KeyError:
            raise ValueError(
                f"unknown claim id {claim_id!r}; known: {', '.join(self._claims)}"
            ) from None

    def ids(self) -> list[str]:
        """Registered ids in registration order."""
        return list(self._claims)

    def __iter__(self):  # noqa: ANN204
        return iter(self._claims.values())

    def __len__(self) -> int:
        return len(self._claims)


__all__ = ["SCALES", "Claim", "ClaimResult", "Outcome", "Registry", "RunContext"]
