r"""The escape indicator Tr(HΣ) of spec part B, per noise variant, at a point of a problem.

Near a minimum a noise of covariance Σ raises the loss, to first order in time, by ½Tr(HΣ)
per unit time, so among variants of equal magnitude the indicator ranks how hard each pushes
out of the basin (spec claims B1, B3).  :func:`indicators` evaluates, at one point θ of any
problem of the replica engine, the covariance each noise variant would use there — exactly as
:func:`~sgdnoise.sim.dynamics.simulate` builds it at that point — and its indicator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_positive
from sgdnoise.sim.dynamics._noise import (
    PAPER_VARIANTS,
    NoiseModel,
    _paper_name,
    gd,
    langevin,
    paper_variant,
    sgd,
)
from sgdnoise.sim.dynamics._problems import ModelProblem, QuadraticProblem
from sgdnoise.sim.dynamics._structures import KINDS, minibatch_scale, structured_covariance

#: Kinds whose covariance is built from Σ̂ whatever the trace.
_NEEDS_SIGMA = ("sgd", "diag", "full", "leading")


@dataclass(frozen=True)
class NoiseIndicators(Mapping[str, float]):
    r"""Tr(HΣ) and Σ of each noise variant at one point (a read-only mapping name → Tr(HΣ)).

    Attributes
    ----------
    theta : (D,) array
        The point.
    H : (D, D) array
        The Hessian H = E_p h_p at θ.
    Sigma1 : (D, D) array or None
        Per-sample gradient covariance Σ₁ = E_p[(g_p − ḡ)(g_p − ḡ)ᵀ] at θ (1/N normalisation);
        None when no variant needed it (or the problem has no samples).
    trace : float or None
        The fixed magnitude Tr Σ every variant was scaled to, or None: each variant matches
        its own Tr Σ̂ (SGD's minibatch covariance at θ, of the variant's B and scheme).
    indicator : dict of str to float
        Tr(HΣ) per variant, in the order asked.
    covariance : dict of str to (D, D) array
        Σ per variant (zero for ``gd``).
    noise : dict of str to NoiseModel
        The noise model each name stands for (a paper name resolved by
        :func:`~sgdnoise.sim.dynamics.paper_variant`).

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), Sec. 3 (indicator Tr(HΣ)); spec
    claims B1 and B3.
    """

    theta: FloatArray
    H: FloatArray
    Sigma1: FloatArray | None
    trace: float | None
    indicator: dict[str, float]
    covariance: dict[str, FloatArray] = field(repr=False)
    noise: dict[str, NoiseModel] = field(repr=False)

    def __getitem__(self, name: str) -> float:
        return self.indicator[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.indicator)

    def __len__(self) -> int:
        return len(self.indicator)

    def ranked(self) -> list[str]:
        """The variant names from the smallest indicator to the largest (stable on ties)."""
        return sorted(self.indicator, key=self.indicator.__getitem__)


def _resolve(spec: Any, *, k: int | None, B: int, scheme: str, sigma2: float | None
             ) -> tuple[str, NoiseModel]:
    """(name, noise model) of one entry of ``kinds``."""
    if isinstance(spec, NoiseModel):
        return spec.label, spec
    if not isinstance(spec, str):
        raise ValueError(f"kinds must hold kind names, paper names or NoiseModel objects; "  # noqa: TRY004
                         f"got {spec!r}")
    if spec == "gd":
        return spec, gd()
    if spec == "sgd":
        return spec, sgd(B, scheme=scheme)
    if spec in KINDS:
        if spec == "fixed":
            raise ValueError("kinds: 'fixed' needs its covariance; pass "
                             "langevin('fixed', covariance=...) instead of the name")
        return spec, langevin(spec, k=k if spec in ("leading", "hessian") else None,
                              sigma2=sigma2 if spec == "const" else None, B=B, scheme=scheme)
    try:
        canonical = _paper_name(spec)
    except ValueError:
        raise ValueError(f"kinds: {spec!r} is neither a kind ({', '.join(KINDS[:-1])}, gd, sgd) "
                         f"nor a paper name ({', '.join(PAPER_VARIANTS)})") from None
    return spec, paper_variant(
        canonical, k=k if canonical in ("GLD leading", "GLD Hessian") else None, B=B,
        scheme=scheme, sigma2=sigma2 if canonical == "GLD const" else None)


def _needs_sigma(noise: NoiseModel, trace_given: bool) -> bool:
    if noise.name == "gd" or noise.kind == "fixed":
        return False
    if noise.name == "sgd" or noise.kind in _NEEDS_SIGMA:
        return True
    if noise.kind == "const" and noise.sigma2 is not None:
        return False
    return not trace_given


def indicators(problem: Any, kinds: Iterable[Any], trace: float | None = None, *,
               at: ArrayLike, B: int = 1, scheme: str = "replacement", k: int | None = None,
               sigma2: float | None = None) -> NoiseIndicators:
    r"""The escape indicator Tr(HΣ) of each noise variant at the point θ = ``at``.

    For each variant the covariance Σ is the one :func:`~sgdnoise.sim.dynamics.simulate`
    would use at θ:

    .. math::
        \Sigma = \texttt{structured\_covariance}(\text{kind}, \hat\Sigma, H, k, t),\qquad
        \hat\Sigma = c\,\Sigma_1,\quad
        \Sigma_1 = \frac1N\sum_p (g_p-\bar g)(g_p-\bar g)^\top,\quad H = \frac1N\sum_p h_p,

    with c from :func:`~sgdnoise.sim.dynamics.minibatch_scale` (the variant's B and scheme)
    and t = ``trace`` (the parameter form's Tr S, e.g. 0.01 in B3) or, when ``trace`` is None,
    t = Tr Σ̂ (matched magnitude, gradient form).  ``"sgd"`` gives Σ̂ itself (rescaled to t
    when ``trace`` is given, as the parameter form rescales the minibatch deviation; 0 where
    Tr Σ̂ = 0), ``"gd"`` gives 0, ``"const"`` gives σ²I with σ² = ``sigma2`` or t/D, and a
    ``langevin("fixed", covariance=C)`` model gives C unscaled.

    Parameters
    ----------
    problem : LinearRegressionProblem, Toy2DProblem, QuadraticProblem or ModelProblem
        Any problem of the replica engine.  The indicator needs H (a ModelProblem's model must
        have ``hessian``); variants built from Σ̂ need per-sample gradients (a QuadraticProblem
        needs ``G``).
    kinds : iterable
        Variants, each a kind of :data:`~sgdnoise.sim.dynamics.KINDS` (except ``"fixed"``),
        ``"gd"``, ``"sgd"``, a paper name of
        :data:`~sgdnoise.sim.dynamics.PAPER_VARIANTS` (``"GLD leading"``…, resolved by
        :func:`~sgdnoise.sim.dynamics.paper_variant`) or a
        :class:`~sgdnoise.sim.dynamics.NoiseModel` (keyed by its ``label``; its own k, σ²,
        B and scheme are used).
    trace : float, optional
        Fixed magnitude t = Tr Σ ≥ 0 (parameter form); None: each variant's Tr Σ̂.
    at : (D,) array
        The point θ (for the toy of B3: :func:`~sgdnoise.sim.dynamics.toy_sharp_minimum`).
    B : int
        Batch size of the SGD whose Σ̂ the named variants match (and of ``"sgd"``).
    scheme : str
        Its sampling scheme, one of :data:`~sgdnoise.sim.dynamics.ENGINE_SCHEMES`.
    k : int, optional
        Eigenpairs kept by ``"leading"``, ``"hessian"``, "GLD leading" and "GLD Hessian"
        given by name (None: all).
    sigma2 : float, optional
        σ² of ``"const"`` / "GLD const" given by name.

    Returns
    -------
    NoiseIndicators
        A mapping name → Tr(HΣ), with H, Σ₁ and every Σ.

    Raises
    ------
    ValueError
        Unknown or duplicate variant names, a point of the wrong shape, a problem without the
        Hessian, or a variant that needs Σ̂ on a problem without samples.

    Examples
    --------
    The indicators of spec claim B3 (Tr S = 0.01 at the toy's sharp minimum)::

        from sgdnoise.sim.dynamics import Toy2DProblem, indicators, toy_sharp_minimum
        from sgdnoise.sim.models import toy_data

        problem = Toy2DProblem(toy_data(0))
        ind = indicators(problem, ["GLD const", "GLD diag", "GLD leading", "GLD Hessian",
                                   "GLD 1st eigvec"], trace=0.01,
                         at=toy_sharp_minimum(problem))
        dict(ind)   # {'GLD const': 1.1, 'GLD diag': 1.1, 'GLD leading': 1.83,
                    #  'GLD Hessian': 1.84, 'GLD 1st eigvec': 2.0}

    References
    ----------
    Zhu, Wu, Yu, Wu & Ma, ICML 2019 (arXiv:1803.00195), Sec. 3–4 (indicator Tr(HΣ), GLD
    variants at matched magnitude); spec claims B1 and B3.
    """
    from sgdnoise.sim.dynamics._problems import PROBLEM_TYPES

    if not isinstance(problem, PROBLEM_TYPES):
        raise ValueError(f"problem must be one of {', '.join(t.__name__ for t in PROBLEM_TYPES)}; "  # noqa: TRY004
                         f"got {type(problem).__name__}")
    if isinstance(kinds, (str, NoiseModel)):
        kinds = [kinds]
    entries = [_resolve(s, k=k, B=B, scheme=scheme, sigma2=sigma2) for s in kinds]
    if not entries:
        raise ValueError("kinds must name at least one variant")
    names = [n for n, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"kinds: each variant once; {duplicates} appear more than once")
    t = None if trace is None else check_positive(trace, "trace", allow_zero=True)
    theta = as_float_array(at, "at", ndim=1)
    D = problem.num_params if problem.num_params is not None else theta.size
    if theta.shape != (D,):
        raise ValueError(f"at must have shape ({D},); got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("at must be finite")
    if isinstance(problem, ModelProblem) and not problem.has_hessian:
        raise ValueError(f"problem: the indicator needs H, and the model "
                         f"{type(problem.model).__name__} has no hessian method")
    device = problem._device(np)
    H = np.asarray(device.hessian(theta[None]), dtype=np.float64)[0]
    H = 0.5 * (H + H.T)
    need = [n for n, noise in entries if _needs_sigma(noise, t is not None)]
    Sigma1 = None
    if need:
        if isinstance(problem, QuadraticProblem) and problem.G is None:
            raise ValueError(f"kinds {need} need SGD's covariance Σ̂, and this QuadraticProblem "
                             f"has no per-sample gradients (give it G, or give trace= for "
                             f"dynamic, hessian, eigvec1 and const)")
        Sigma1 = np.asarray(device.statistics(theta[None], True)[1], dtype=np.float64)[0]
    N = problem.num_samples
    if Sigma1 is not None and N is None:   # a model holding its data without num_samples
        N = int(device.per_sample_gradients(theta).shape[0])
    indicator: dict[str, float] = {}
    covariance: dict[str, FloatArray] = {}
    for name, noise in entries:
        if noise.name == "gd":
            S = np.zeros((D, D))
        elif noise.kind == "fixed":
            if noise.covariance.shape != (D, D):
                raise ValueError(f"kinds: {name} has a covariance of shape "
                                 f"{noise.covariance.shape}, not ({D}, {D})")
            S = np.array(noise.covariance)
        else:
            Sigma_hat = None
            if Sigma1 is not None:
                Sigma_hat = minibatch_scale(N, noise.B, noise.scheme) * Sigma1
            if noise.name == "sgd":
                S = Sigma_hat.copy() if t is None else structured_covariance(
                    "full", Sigma_hat, H, trace=t)
            else:
                S = structured_covariance(noise.kind, Sigma_hat, H, k=noise.k, trace=t,
                                          sigma2=noise.sigma2)
        indicator[name] = float(np.trace(H @ S))
        covariance[name] = S
    return NoiseIndicators(theta=theta, H=H, Sigma1=Sigma1, trace=t, indicator=indicator,
                           covariance=covariance, noise=dict(entries))


__all__ = ["NoiseIndicators", "indicators"]
