r"""Hypothesis strategies for the random families of spec part A ("Random families").

Each strategy draws a seed and a few parameters, then calls the matching numpy constructor of
:mod:`sgdnoise.sim.families`, so a failing example is reproducible from its seed and shrinks
towards small dimensions and sample counts.  Bounds are keyword-only and validated when the
strategy is built (a ``ValueError`` names the bad argument).

Example: a user's own property test
-----------------------------------
Conjecture: tr M ≥ (tr H)²/D for every family (true: tr M ≥ tr H² ≥ (tr H)²/D)::

    import numpy as np
    from hypothesis import given
    from sgdnoise.theory import hessian_moments
    from sgdnoise.verify.strategies import per_sample_hessian_families

    @given(h=per_sample_hessian_families(max_dim=6))
    def test_my_conjecture(h):
        H, M = hessian_moments(h)
        D = H.shape[0]
        assert np.trace(M) >= np.trace(H) ** 2 / D - 1e-12 * np.trace(M)

A false conjecture, say M ⪰ κ_min H with κ_min = min_p κ_max(p), fails on the first
``"identical"`` draw with distinct eigenvalues, and Hypothesis shrinks it to a small D and N.
Pass ``psd=False`` to include indefinite members, e.g. for the lower Loewner side (A1)::

    from sgdnoise.theory import loewner_sandwich

    @given(h=per_sample_hessian_families(max_dim=6, psd=False))
    def test_loewner_lower_side(h):
        H, M = hessian_moments(h)
        assert loewner_sandwich(H, M).lower >= -1e-12

References
----------
Spec "Random families for property tests"; Zhang, Yang & Tu, arXiv:2602.05600.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from sgdnoise._typing import FloatArray
from sgdnoise._validate import as_float_array, check_choice, check_positive, check_positive_int
from sgdnoise.sim.families import (
    MAX_DECADES,
    commuting_pair,
    identical_hessians,
    kronecker_family,
    log_uniform_spectrum,
    noncommuting_pair,
    random_psd,
    random_rank_r,
    rank_one_equal_curvature,
    symmetric_hessians,
    window_breaking_family,
)
from sgdnoise.theory import haar_orthogonal, kronecker_hessians

#: Per-sample Hessian families whose members are all PSD.
PSD_FAMILIES: tuple[str, ...] = ("identical", "rank_one", "rank_r", "kronecker", "window_breaking")
#: Families with indefinite members, added by ``psd=False``.
SYMMETRIC_FAMILIES: tuple[str, ...] = ("symmetric", "indefinite_kronecker")
#: The default families of :func:`per_sample_hessian_families`: spec families (i)–(iv).
DEFAULT_FAMILIES: tuple[str, ...] = ("identical", "rank_one", "rank_r", "kronecker")

_SEEDS = st.integers(0, 2**32 - 1)


def _check_range(value: Any, name: str, *, allow_zero: bool = False,
                 upper: float = MAX_DECADES) -> tuple[float, float]:
    """A number or a (low, high) pair of numbers in [0 or >0, upper], returned as a pair."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be a number or a (low, high) pair; got {value!r}")
    lo = check_positive(pair[0], name, allow_zero=allow_zero)
    hi = check_positive(pair[1], name, allow_zero=allow_zero)
    if lo > hi or hi > upper:
        raise ValueError(f"{name} must satisfy low <= high <= {upper:g}; got {value!r}")
    return lo, hi


def _check_bounds(low: Any, high: Any, low_name: str, high_name: str,
                  minimum: int = 1) -> tuple[int, int]:
    lo = check_positive_int(low, low_name, minimum=minimum)
    hi = check_positive_int(high, high_name, minimum=minimum)
    if lo > hi:
        raise ValueError(f"{high_name} must be >= {low_name} = {lo}; got {hi}")
    return lo, hi


def _floats(lo: float, hi: float) -> SearchStrategy[float]:
    return st.just(lo) if lo == hi else st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def spectra(*, min_dim: int = 2, max_dim: int = 8, decades: float | tuple[float, float] = (1.0, 4.0),
            decay: float | tuple[float, float] | None = None) -> SearchStrategy[FloatArray]:
    r"""Positive spectra in descending order: log-uniform over several decades, or a power law.

    Parameters
    ----------
    min_dim : int
        Lower bound on the length D (1 ≤ min_dim ≤ max_dim).
    max_dim : int
        Upper bound on the length D.
    decades : float or (float, float)
        Spread log10(λ_1/λ_D), or the range it is drawn from (0 < low ≤ high ≤ 100).
    decay : float or (float, float), optional
        If given, λ_i = i^(−d) with d drawn from this range (``decades`` is then ignored).

    Returns
    -------
    strategy of (D,) float64 arrays

    References
    ----------
    Spec "Random families for property tests" (spectra); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim")
    dec = _check_range(decades, "decades")
    dk = None if decay is None else _check_range(decay, "decay")

    @st.composite
    def draw_spectrum(draw: st.DrawFn) -> FloatArray:
        D = draw(st.integers(d_lo, d_hi))
        seed = draw(_SEEDS)
        if dk is None:
            return log_uniform_spectrum(D, rng=seed, decades=draw(_floats(*dec)))
        return log_uniform_spectrum(D, rng=seed, decay=draw(_floats(*dk)))

    return draw_spectrum()


def psd_matrices(*, min_dim: int = 2, max_dim: int = 8,
                 decades: float | tuple[float, float] = (1.0, 4.0),
                 decay: float | tuple[float, float] | None = None,
                 spectrum: Any = None) -> SearchStrategy[FloatArray]:
    r"""Symmetric PSD matrices V diag(λ) Vᵀ with V Haar-random.

    Parameters
    ----------
    min_dim : int
        Lower bound on D, as in :func:`spectra`.
    max_dim : int
        Upper bound on D, as in :func:`spectra`.
    decades : float or (float, float)
        Spread of the spectrum, or its range, as in :func:`spectra`.
    decay : float or (float, float), optional
        Power-law exponent of the spectrum, or its range, as in :func:`spectra`.
    spectrum : (D,) array, optional
        A fixed non-negative spectrum (then only the eigenvectors are random).

    Returns
    -------
    strategy of (D, D) float64 arrays

    References
    ----------
    Spec "Random families for property tests"; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    if spectrum is not None:
        fixed = as_float_array(spectrum, "spectrum", ndim=1)
        if fixed.size < 1 or fixed.min() < 0:
            raise ValueError("spectrum must be a non-empty array of non-negative eigenvalues")
        spec: SearchStrategy[FloatArray] = st.just(fixed)
    else:
        spec = spectra(min_dim=min_dim, max_dim=max_dim, decades=decades, decay=decay)
    return st.builds(lambda lam, seed: random_psd(lam, rng=seed), spec, _SEEDS)


def commuting_pairs(*, min_dim: int = 2, max_dim: int = 8,
                    decades: float | tuple[float, float] = (1.0, 4.0)
                    ) -> SearchStrategy[tuple[FloatArray, FloatArray]]:
    r"""Commuting PSD pairs (C, H) sharing a Haar eigenbasis (ε(C, H) = 0 up to round-off).

    Parameters
    ----------
    min_dim : int
        Lower bound on D.
    max_dim : int
        Upper bound on D.
    decades : float or (float, float)
        Spread of both spectra, or its range.

    Returns
    -------
    strategy of ((D, D), (D, D)) tuples

    References
    ----------
    Spec "Random families" and claim A5; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim")
    dec = _check_range(decades, "decades")
    return st.builds(lambda D, seed, dd: commuting_pair(D, rng=seed, decades=dd),
                     st.integers(d_lo, d_hi), _SEEDS, _floats(*dec))


def noncommuting_pairs(*, min_dim: int = 2, max_dim: int = 8,
                       decades: float | tuple[float, float] = (1.0, 4.0)
                       ) -> SearchStrategy[tuple[FloatArray, FloatArray]]:
    r"""PSD pairs (C, H) with independent Haar eigenbases (distributed as the A5 baseline).

    Parameters
    ----------
    min_dim : int
        Lower bound on D.
    max_dim : int
        Upper bound on D.
    decades : float or (float, float)
        Spread of both spectra, or its range.

    Returns
    -------
    strategy of ((D, D), (D, D)) tuples

    References
    ----------
    Spec "Random families" and claim A5; Zhang, Yang & Tu, arXiv:2602.05600.
    """
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim")
    dec = _check_range(decades, "decades")
    return st.builds(lambda D, seed, dd: noncommuting_pair(D, rng=seed, decades=dd),
                     st.integers(d_lo, d_hi), _SEEDS, _floats(*dec))


def _kronecker_shapes(min_dim: int, max_dim: int) -> list[tuple[int, int]]:
    return [(o, i) for o in range(1, max_dim + 1) for i in range(1, max_dim + 1)
            if min_dim <= o * i <= max_dim]


def per_sample_hessian_families(*, min_dim: int = 2, max_dim: int = 6, min_samples: int = 1,
                                max_samples: int = 20,
                                families: tuple[str, ...] = DEFAULT_FAMILIES,
                                psd: bool = True,
                                decades: float | tuple[float, float] = (1.0, 3.0)
                                ) -> SearchStrategy[FloatArray]:
    r"""Stacks h of per-sample Hessians, shape (N, D, D), from the spec's random families.

    Families (names for ``families``):

    ``"identical"``
        h_p = H, H PSD with Haar eigenvectors (γ = 2).
    ``"rank_one"``
        h_p = κ u_p u_pᵀ, anisotropic unit u_p (γ = 1).
    ``"rank_r"``
        rank-r PSD, random eigenvectors and per-sample spectra.
    ``"kronecker"``
        G_p ⊗ a_p a_pᵀ of a dense layer (softmax or Gauss–Newton G_p), D = out·in.
    ``"window_breaking"``
        coordinate rank-one family whose fitted γ leaves [1, 2] (needs N ≥ D + 1).
    ``"symmetric"``, ``"indefinite_kronecker"``
        indefinite members (Haar eigenvectors with random signs; Gauss–Newton plus a residual
        term); added automatically by ``psd=False``.

    Parameters
    ----------
    min_dim : int
        Lower bound on D (a Kronecker draw picks out·in within the bounds).
    max_dim : int
        Upper bound on D.
    min_samples : int
        Lower bound on N.
    max_samples : int
        Upper bound on N.
    families : tuple of str
        Which families to draw from.
    psd : bool
        If False, also draw the indefinite families (every member is still symmetric).
    decades : float or (float, float)
        Anisotropy of spectra and direction distributions, or its range.

    Returns
    -------
    strategy of (N, D, D) float64 arrays

    References
    ----------
    Spec "Random families for property tests" (i)–(v); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim")
    n_lo, n_hi = _check_bounds(min_samples, max_samples, "min_samples", "max_samples")
    dec = _check_range(decades, "decades")
    if isinstance(families, str) or not families:
        raise ValueError(f"families must be a non-empty tuple of names; got {families!r}")
    for name in families:
        check_choice(name, "families", PSD_FAMILIES + SYMMETRIC_FAMILIES)
    if not isinstance(psd, (bool, np.bool_)):
        raise ValueError(f"psd must be True or False; got {psd!r}")
    if psd:
        bad = [f for f in families if f in SYMMETRIC_FAMILIES]
        if bad:
            raise ValueError(f"families {bad} are indefinite: pass psd=False to draw them")
        pool = tuple(families)
    else:
        pool = tuple(families) + tuple(f for f in SYMMETRIC_FAMILIES if f not in families)
    if "window_breaking" in pool and (n_hi < 3 or d_hi < 2):
        raise ValueError("the window_breaking family needs max_dim >= 2 and max_samples >= 3")
    shapes = _kronecker_shapes(d_lo, d_hi)

    @st.composite
    def draw_family(draw: st.DrawFn) -> FloatArray:
        family = draw(st.sampled_from(pool))
        seed = draw(_SEEDS)
        dd = draw(_floats(*dec))
        if family in ("kronecker", "indefinite_kronecker"):
            out, inn = draw(st.sampled_from(shapes))
            N = draw(st.integers(n_lo, n_hi))
            rank = draw(st.one_of(st.none(), st.integers(1, out)))
            if family == "kronecker":
                G, a = kronecker_family(out, inn, N, rng=seed, decades=dd, gauss_newton_rank=rank)
            else:
                residual = draw(st.floats(0.1, 2.0))
                G, a = kronecker_family(out, inn, N, rng=seed, decades=dd,
                                        gauss_newton_rank=rank or out, residual=residual)
            return kronecker_hessians(G, a)
        if family == "window_breaking":
            D = draw(st.integers(max(d_lo, 2), min(d_hi, n_hi - 1)))
            N = draw(st.integers(max(n_lo, D + 1), n_hi))
            side = draw(st.sampled_from(("below", "above")))
            return window_breaking_family(D, N, rng=seed, side=side)
        D = draw(st.integers(d_lo, d_hi))
        N = draw(st.integers(n_lo, n_hi))
        if family == "identical":
            rng = np.random.default_rng(seed)
            lam = log_uniform_spectrum(D, rng=rng, decades=dd)
            return identical_hessians(random_psd(lam, rng=rng), N)
        if family == "rank_one":
            kappa = draw(st.floats(0.1, 10.0))
            return rank_one_equal_curvature(D, N, rng=seed, kappa=kappa, decades=dd)
        if family == "rank_r":
            rank = draw(st.integers(1, D))
            spread = draw(st.floats(0.0, 2.0))
            return random_rank_r(D, N, rng=seed, rank=rank, decades=dd, spectrum_decades=spread)
        return symmetric_hessians(D, N, rng=seed, decades=dd)

    return draw_family()


def kronecker_factors(*, max_out: int = 4, max_in: int = 4, max_samples: int = 20,
                      min_samples: int = 1, psd: bool = True,
                      decades: float | tuple[float, float] = (0.5, 3.0)
                      ) -> SearchStrategy[tuple[FloatArray, FloatArray, FloatArray]]:
    r"""Dense-layer factors (G, a, delta): h_p = G_p ⊗ a_p a_pᵀ and g_p = δ_p ⊗ a_p.

    G_p is softmax-like diag(q) − qqᵀ (binary logistic for out = 1) or Gauss–Newton of random
    rank; with ``psd=False`` some draws add the indefinite residual term.  δ_p is Gaussian
    (the Kronecker identities hold for any δ_p).

    Parameters
    ----------
    max_out : int
        Upper bound on the layer's output width (≥ 1).
    max_in : int
        Upper bound on the layer's input width (≥ 1).
    max_samples : int
        Upper bound on N.
    min_samples : int
        Lower bound on N.
    psd : bool
        If False, G_p may be indefinite.
    decades : float or (float, float)
        Anisotropy of the inputs, or its range.

    Returns
    -------
    strategy of (G (N, out, out), a (N, in), delta (N, out)) tuples

    References
    ----------
    Spec part A, "Dense-layer structure" and "Random families" (iv); Zhang, Yang & Tu,
    arXiv:2602.05600.
    """
    max_out = check_positive_int(max_out, "max_out")
    max_in = check_positive_int(max_in, "max_in")
    n_lo, n_hi = _check_bounds(min_samples, max_samples, "min_samples", "max_samples")
    dec = _check_range(decades, "decades")
    if not isinstance(psd, (bool, np.bool_)):
        raise ValueError(f"psd must be True or False; got {psd!r}")

    @st.composite
    def draw_factors(draw: st.DrawFn) -> tuple[FloatArray, FloatArray, FloatArray]:
        out = draw(st.integers(1, max_out))
        inn = draw(st.integers(1, max_in))
        N = draw(st.integers(n_lo, n_hi))
        seed = draw(_SEEDS)
        rank = draw(st.one_of(st.none(), st.integers(1, out)))
        residual = 0.0 if psd else draw(st.sampled_from((0.0, 0.5, 2.0)))
        if residual > 0 and rank is None:
            rank = out
        rng = np.random.default_rng(seed)
        G, a = kronecker_family(out, inn, N, rng=rng, decades=draw(_floats(*dec)),
                                gauss_newton_rank=rank, residual=residual)
        delta = rng.standard_normal((N, out))
        return G, a, delta

    return draw_factors()


def low_rank_kronecker_factors(*, max_out: int = 4, max_in: int = 4, max_rank: int = 4,
                               max_samples: int = 20, min_samples: int = 1, psd: bool = True
                               ) -> SearchStrategy[tuple[Any, FloatArray, FloatArray]]:
    r"""Dense-layer factors with G_p = B_pᵀ Λ_p B_p in low-rank form: (LowRankFactors, a, delta).

    B_p (r × out) is Gaussian, Λ_p is a softmax Hessian diag(q_p) − q_p q_pᵀ of r classes (PSD),
    or with ``psd=False`` possibly an indefinite symmetric matrix; r may exceed out.  The dense
    G_p is ``B.transpose(0, 2, 1) @ Lam @ B``.

    Parameters
    ----------
    max_out, max_in : int
        Upper bounds on the layer's output and input widths (≥ 1).
    max_rank : int
        Upper bound on r (≥ 1).
    max_samples, min_samples : int
        Bounds on N.
    psd : bool
        If False, Λ_p may be indefinite.

    Returns
    -------
    strategy of (LowRankFactors(B (N, r, out), Lam (N, r, r)), a (N, in), delta (N, out))

    References
    ----------
    Spec part A, "Dense-layer structure"; Martens, JMLR 21 (2020) (generalised Gauss–Newton
    form J_pᵀ Λ_p J_p).
    """
    from sgdnoise.theory import LowRankFactors

    max_out = check_positive_int(max_out, "max_out")
    max_in = check_positive_int(max_in, "max_in")
    max_rank = check_positive_int(max_rank, "max_rank")
    n_lo, n_hi = _check_bounds(min_samples, max_samples, "min_samples", "max_samples")
    if not isinstance(psd, (bool, np.bool_)):
        raise ValueError(f"psd must be True or False; got {psd!r}")

    @st.composite
    def draw_factors(draw: st.DrawFn) -> tuple[Any, FloatArray, FloatArray]:
        out = draw(st.integers(1, max_out))
        inn = draw(st.integers(1, max_in))
        r = draw(st.integers(1, max_rank))
        N = draw(st.integers(n_lo, n_hi))
        rng = np.random.default_rng(draw(_SEEDS))
        B = rng.standard_normal((N, r, out))
        if psd or draw(st.booleans()):
            z = 2.0 * rng.standard_normal((N, r))
            q = np.exp(z - z.max(axis=1, keepdims=True))
            q /= q.sum(axis=1, keepdims=True)
            Lam = q[:, :, None] * np.eye(r) - q[:, :, None] * q[:, None, :]
        else:
            Lam = rng.standard_normal((N, r, r))
            Lam = Lam + np.swapaxes(Lam, 1, 2)
        a = rng.standard_normal((N, inn))
        delta = rng.standard_normal((N, out))
        return LowRankFactors(B, 0.5 * (Lam + np.swapaxes(Lam, 1, 2))), a, delta

    return draw_factors()


def mlp_problems(*, activations: tuple[str, ...] | None = None,
                 losses: tuple[str, ...] | None = None, bias: bool | None = None,
                 max_depth: int = 3, max_width: int = 4, max_samples: int = 6
                 ) -> SearchStrategy[tuple[Any, FloatArray, FloatArray, Any]]:
    r"""Small MLPs at a random point with random data: (model, w, x, y).

    Widths (d_0, …, d_L) with 1 ≤ L ≤ ``max_depth`` layers and each d ≤ ``max_width``
    (at least 2 outputs for the softmax losses); w = init(scale 1.5) plus a Gaussian shift
    of standard deviation 0.3 (so biases are non-zero); x standard normal; y integer labels
    or Gaussian targets as the loss requires.

    Parameters
    ----------
    activations, losses : tuple of str, optional
        Draw from these (default: every activation and loss of the MLP).
    bias : bool, optional
        Fix the bias flag (default: drawn).
    max_depth, max_width, max_samples : int
        Upper bounds on L, the widths and N.

    Returns
    -------
    strategy of (MLP, w (D,), x (N, d_0), y) tuples

    References
    ----------
    Spec part A, "Dense-layer structure" (exact per-sample derivatives of an MLP).
    """
    from sgdnoise.sim.models import ACTIVATIONS, LOSSES, MLP

    acts = tuple(ACTIVATIONS) if activations is None else tuple(
        check_choice(a, "activations", tuple(ACTIVATIONS)) for a in activations)
    loss_names = LOSSES if losses is None else tuple(
        check_choice(name, "losses", LOSSES) for name in losses)
    if not acts or not loss_names:
        raise ValueError("activations and losses must not be empty")
    if bias is not None and not isinstance(bias, (bool, np.bool_)):
        raise ValueError(f"bias must be True, False or None; got {bias!r}")
    max_depth = check_positive_int(max_depth, "max_depth")
    max_width = check_positive_int(max_width, "max_width", minimum=2)
    max_samples = check_positive_int(max_samples, "max_samples")

    @st.composite
    def draw_problem(draw: st.DrawFn) -> tuple[Any, FloatArray, FloatArray, Any]:
        act = draw(st.sampled_from(acts))
        loss = draw(st.sampled_from(loss_names))
        with_bias = draw(st.booleans()) if bias is None else bool(bias)
        depth = draw(st.integers(1, max_depth))
        widths = [draw(st.integers(1, max_width)) for _ in range(depth)]
        widths.append(draw(st.integers(1 if loss == "mse" else 2, max_width)))
        N = draw(st.integers(1, max_samples))
        rng = np.random.default_rng(draw(_SEEDS))
        model = MLP(widths, activation=act, loss=loss, bias=with_bias)
        w = model.init(rng, scale=1.5) + 0.3 * rng.standard_normal(model.num_params)
        x = rng.standard_normal((N, widths[0]))
        y = (rng.standard_normal((N, widths[-1])) if loss == "mse"
             else rng.integers(0, widths[-1], N))
        return model, w, x, y

    return draw_problem()


def window_breaking_families(*, side: str = "below", min_dim: int = 2, max_dim: int = 6,
                             max_samples: int = 20) -> SearchStrategy[FloatArray]:
    r"""Per-sample Hessians (N, D, D) whose fitted exponent leaves [1, 2] on every window.

    See :func:`sgdnoise.sim.families.window_breaking_family`: γ_fit = 1/2 (``side="below"``)
    or 3 (``side="above"``) exactly, while every h_p is PSD and the wedge interval contains it.

    Parameters
    ----------
    side : {"below", "above", "either"}
        Side of [1, 2]; "either" draws it.
    min_dim : int
        Lower bound on D (≥ 2).
    max_dim : int
        Upper bound on D.
    max_samples : int
        Upper bound on N (≥ min_dim + 1; N ≥ D + 1 always).

    Returns
    -------
    strategy of (N, D, D) float64 arrays

    References
    ----------
    Spec claim A3 and "Random families" (v); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    side = check_choice(side, "side", ("below", "above", "either"))
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim", minimum=2)
    n_hi = check_positive_int(max_samples, "max_samples")
    if n_hi < d_lo + 1:
        raise ValueError(f"max_samples must be >= min_dim + 1 = {d_lo + 1}; got {n_hi}")
    sides = ("below", "above") if side == "either" else (side,)

    @st.composite
    def draw_window_breaking(draw: st.DrawFn) -> FloatArray:
        D = draw(st.integers(d_lo, min(d_hi, n_hi - 1)))
        N = draw(st.integers(D + 1, n_hi))
        return window_breaking_family(D, N, rng=draw(_SEEDS), side=draw(st.sampled_from(sides)))

    return draw_window_breaking()


# ----------------------------------------------------------------------------------------------
# spec part B: (Hessian, noise covariance) pairs
# ----------------------------------------------------------------------------------------------

#: Structures of the noise covariance Σ drawn by :func:`psd_noise_pairs`.
NOISE_KINDS: tuple[str, ...] = ("independent", "aligned", "low_rank", "isotropic", "proportional")


def _noise_pair(D: int, kind: str, rng: np.random.Generator, decades: float,
                noise_decades: float, num_zero: int) -> tuple[FloatArray, FloatArray]:
    """One (H, Σ) pair; H = V diag(λ) Vᵀ with V Haar and the smallest ``num_zero`` λ set to 0."""
    lam = log_uniform_spectrum(D, rng=rng, decades=decades,
                               lam_max=10.0 ** rng.uniform(-2.0, 2.0))
    if num_zero:
        lam[D - num_zero:] = 0.0
    V = haar_orthogonal(D, rng)
    H = (V * lam) @ V.T
    H = 0.5 * (H + H.T)
    scale = 10.0 ** rng.uniform(-2.0, 2.0)
    if kind == "isotropic":
        Sigma = scale * np.eye(D)
    elif kind == "proportional":
        Sigma = scale * H
    else:
        c = scale * log_uniform_spectrum(D, rng=rng, decades=noise_decades)
        if kind == "aligned":
            W = V  # Σ shares H's eigenvectors, largest noise along the largest curvature
        else:
            W = haar_orthogonal(D, rng)
            if kind == "low_rank":
                c[int(rng.integers(1, D)):] = 0.0
        Sigma = (W * c) @ W.T
        Sigma = 0.5 * (Sigma + Sigma.T)
    return H, Sigma


def psd_noise_pairs(*, min_dim: int = 2, max_dim: int = 6,
                    decades: float | tuple[float, float] = (1.0, 4.0),
                    noise_decades: float | tuple[float, float] = (0.5, 3.0),
                    kinds: tuple[str, ...] = NOISE_KINDS,
                    max_zero_eigenvalues: int = 0
                    ) -> SearchStrategy[tuple[FloatArray, FloatArray]]:
    r"""Pairs (H, Σ) of a PSD Hessian and a PSD noise covariance, as in spec part B.

    H = V diag(λ) Vᵀ with V Haar-random and λ log-uniform over ``decades`` (λ₁ = 10^u,
    u ~ U(−2, 2), so scale invariance is exercised), optionally with up to
    ``max_zero_eigenvalues`` of the smallest eigenvalues set to zero (Tr H > 0 always).  Σ, of a
    random overall scale 10^u, u ~ U(−2, 2), is one of (names for ``kinds``):

    ``"independent"``
        V_Σ diag(c) V_Σᵀ with its own Haar eigenvectors and a log-uniform spectrum c.
    ``"aligned"``
        V diag(c) Vᵀ: H's eigenvectors, c sorted like λ (largest noise along the sharpest
        direction), so [H, Σ] = 0.
    ``"low_rank"``
        as ``"independent"`` with rank r ∈ [1, D − 1] (for D ≥ 2).
    ``"isotropic"``
        c I (gain r = 1).
    ``"proportional"``
        c H (gain r = D Tr H²/(Tr H)²).

    Parameters
    ----------
    min_dim : int
        Lower bound on D (≥ 2).
    max_dim : int
        Upper bound on D.
    decades : float or (float, float)
        Spread log10(λ₁/λ_D) of H's positive spectrum, or its range (ill-conditioning).
    noise_decades : float or (float, float)
        Spread of Σ's spectrum, or its range.
    kinds : tuple of str
        Which structures of Σ to draw from (a subset of ``NOISE_KINDS``).
    max_zero_eigenvalues : int
        Largest number of zero eigenvalues of H (0 ≤ it < max_dim; at most D − 1 in a draw).

    Returns
    -------
    strategy of ((D, D), (D, D)) tuples
        Both exactly symmetric and PSD up to round-off; Tr H > 0 and Tr Σ > 0.

    References
    ----------
    Spec claims B1, B2 and "Random families for property tests"; Zhu, Wu, Yu, Wu & Ma, ICML
    2019, arXiv:1803.00195.
    """
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim", minimum=2)
    dec = _check_range(decades, "decades")
    noise_dec = _check_range(noise_decades, "noise_decades")
    if isinstance(kinds, str) or not kinds:
        raise ValueError(f"kinds must be a non-empty tuple of names; got {kinds!r}")
    for name in kinds:
        check_choice(name, "kinds", NOISE_KINDS)
    if isinstance(max_zero_eigenvalues, bool) or not isinstance(max_zero_eigenvalues, int) \
            or not 0 <= max_zero_eigenvalues < d_hi:
        raise ValueError(f"max_zero_eigenvalues must be an integer in [0, max_dim); got "
                         f"{max_zero_eigenvalues!r}")
    pool = tuple(kinds)

    @st.composite
    def draw_noise_pair(draw: st.DrawFn) -> tuple[FloatArray, FloatArray]:
        D = draw(st.integers(d_lo, d_hi))
        kind = draw(st.sampled_from(pool))
        num_zero = draw(st.integers(0, min(max_zero_eigenvalues, D - 1)))
        rng = np.random.default_rng(draw(_SEEDS))
        return _noise_pair(D, kind, rng, draw(_floats(*dec)), draw(_floats(*noise_dec)),
                           num_zero)

    return draw_noise_pair()


__all__ = [
    "DEFAULT_FAMILIES",
    "NOISE_KINDS",
    "PSD_FAMILIES",
    "SYMMETRIC_FAMILIES",
    "commuting_pairs",
    "kronecker_factors",
    "low_rank_kronecker_factors",
    "mlp_problems",
    "noncommuting_pairs",
    "per_sample_hessian_families",
    "psd_matrices",
    "psd_noise_pairs",
    "spectra",
    "window_breaking_families",
]
