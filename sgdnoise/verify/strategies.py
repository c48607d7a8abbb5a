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

Real curvature: :func:`mlp_networks` draws small MLPs trained for a few SGD epochs (shrinking
towards few and narrow layers, few samples and short training), and :func:`network_hessians`
and :func:`network_layer_factors` hand over their exact per-sample Hessians and layer
Kronecker factors.  Whole-model Hessians of a net with a hidden layer are indefinite; pass
``psd=True`` for the PSD layer blocks of ReLU/linear nets with a convex loss.

References
----------
Spec "Random families for property tests"; Zhang, Yang & Tu, arXiv:2602.05600.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from sgdnoise._typing import FloatArray, IntArray
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
from sgdnoise.sim.models import MLP
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
# real curvature: small trained MLPs
# ----------------------------------------------------------------------------------------------

#: Hidden activations drawn by :func:`mlp_networks` (a shrunk example has the first).
NETWORK_ACTIVATIONS: tuple[str, ...] = ("relu", "identity", "tanh", "gelu", "sigmoid")
#: Losses drawn by :func:`mlp_networks` (a shrunk example has the first).
NETWORK_LOSSES: tuple[str, ...] = ("cross_entropy", "mse", "softmax_mse")
#: Data sources of :func:`mlp_networks`: a Gaussian mixture
#: (:func:`sgdnoise.sim.data.gaussian_mixture`) or a class-balanced subset of scikit-learn's
#: digits with its 8×8 images averaged over 2×2 blocks (16 features in [0, 1], centred).
NETWORK_DATA: tuple[str, ...] = ("mixture", "digits")
#: Activations and losses whose layer blocks G_p ⊗ a_p a_pᵀ are PSD: piecewise-linear
#: activations (no φ″ term in the Hessian backpropagation) and a convex loss in the logits.
PSD_ACTIVATIONS: tuple[str, ...] = ("relu", "identity")
PSD_LOSSES: tuple[str, ...] = ("cross_entropy", "mse")


@dataclass(frozen=True, eq=False)
class TrainedNetwork:
    r"""A small MLP after a few SGD epochs, with its data: what :func:`mlp_networks` draws.

    Attributes
    ----------
    model : sgdnoise.sim.MLP
    w : (D,) array
        Weights after training.
    x : (N, d_0) array
        Training inputs.
    y : (N,) int array or (N, d_L) float array
        Labels (``cross_entropy``, ``softmax_mse``) or one-hot targets (``mse``).
    data : str
        Data source, one of :data:`NETWORK_DATA`.
    num_epochs : int
        SGD epochs run from the initialisation (0: the network at initialisation).
    seed : int
        Seed of the data draw, the initialisation and the minibatches.

    References
    ----------
    Spec part A ("Dense-layer structure", "Random families"); Zhang, Yang & Tu,
    arXiv:2602.05600.
    """

    model: MLP
    w: FloatArray
    x: FloatArray
    y: Any
    data: str
    num_epochs: int
    seed: int

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The one-line summary in Hypothesis' reports (not every weight)."""
        printer.text(repr(self))

    def __repr__(self) -> str:
        m = self.model
        return (f"TrainedNetwork(widths={m.widths}, activation={m.activation!r}, "
                f"loss={m.loss_name!r}, bias={m.bias}, data={self.data!r}, "
                f"N={self.x.shape[0]}, num_epochs={self.num_epochs}, seed={self.seed})")

    @property
    def num_samples(self) -> int:
        """N."""
        return int(self.x.shape[0])

    def per_sample_hessians(self) -> FloatArray:
        """Whole-model per-sample Hessians h_p = ∇²ℓ_p(w), shape (N, D, D) (exact)."""
        return self.model.per_sample_hessians(self.w, self.x, self.y)

    def per_sample_gradients(self) -> FloatArray:
        """Per-sample gradients g_p, shape (N, D)."""
        return self.model.per_sample_gradients(self.w, self.x, self.y)

    def layer_factors(self, layer: int | str) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Exact per-sample Kronecker factors (G, a, δ) of one dense layer (``MLP.layer_factors``)."""
        return self.model.layer_factors(self.w, self.x, self.y, layer)


def _pooled_digits(N: int, num_classes: int, rng: np.random.Generator
                   ) -> tuple[FloatArray, IntArray]:
    """N digits of the first ``num_classes`` classes (balanced, drawn), 2×2-pooled and centred."""
    from sgdnoise.sim.datasets import digits

    per_class = -(-N // num_classes)
    d = digits(classes=list(range(num_classes)), samples_per_class=per_class, rng=rng,
               standardize=False)
    pick = rng.permutation(d.x.shape[0])[:N]
    x = d.x[pick].reshape(N, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(N, 16)
    return x - x.mean(axis=0), np.asarray(d.y[pick], dtype=np.int64)


def _check_names(value: Any, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty tuple of names; got {value!r}")
    for v in value:
        check_choice(v, name, allowed)
    return tuple(value)


def mlp_networks(*, max_hidden_layers: int = 2, max_width: int = 4, min_samples: int = 2,
                 max_samples: int = 32, max_epochs: int = 3, max_classes: int = 3,
                 max_input: int = 4, activations: tuple[str, ...] = NETWORK_ACTIVATIONS,
                 losses: tuple[str, ...] = NETWORK_LOSSES,
                 data: tuple[str, ...] = NETWORK_DATA, bias: bool | None = None,
                 eta: float = 0.1, batch_size: int = 8,
                 clip_norm: float | None = 5.0) -> SearchStrategy[TrainedNetwork]:
    r"""Small MLPs trained for a few SGD epochs: real per-sample curvature, cheap to compute.

    Draws, in this order (so that Hypothesis shrinks towards small nets, few samples and short
    training, then towards the first activation, loss and data source): the number of hidden
    layers (0 … ``max_hidden_layers``; 0 is softmax/linear regression), each hidden width
    (1 … ``max_width``), N (``min_samples`` … ``max_samples``), the epochs (0 …
    ``max_epochs``), the number of classes (2 … ``max_classes``), the activation, the loss,
    the bias flag (unless fixed), the data source, the input dimension of the mixture
    (1 … ``max_input``; digits have 16 pooled features) and a seed.  Then it draws the data
    (:data:`NETWORK_DATA`), initialises the MLP (:meth:`sgdnoise.sim.MLP.init`) and trains it
    with :func:`sgdnoise.sim.train` (numpy backend, constant η, random reshuffling with
    batches of min(``batch_size``, N), last partial batch kept, gradients clipped at norm
    ``clip_norm`` as in the paper's protocol), all from that seed; the rare run that still
    diverges is rejected (Hypothesis draws another).  With
    ``loss="mse"`` the targets are the one-hot labels; the other losses take the labels.

    Parameters
    ----------
    max_hidden_layers : int
        Upper bound on the number of hidden layers (≥ 0).
    max_width : int
        Upper bound on each hidden width (≥ 1).
    min_samples, max_samples : int
        Bounds on N (2 ≤ min_samples ≤ max_samples).
    max_epochs : int
        Upper bound on the SGD epochs (≥ 0).
    max_classes : int
        Upper bound on the number of classes, i.e. outputs (2 … 10).
    max_input : int
        Upper bound on the input dimension of the Gaussian-mixture data (≥ 1).
    activations, losses, data : tuple of str
        Subsets of :data:`NETWORK_ACTIVATIONS`, :data:`NETWORK_LOSSES`, :data:`NETWORK_DATA`.
    bias : bool or None
        Fix the bias flag, or draw it (None).
    eta : float
        SGD learning rate.
    batch_size : int
        SGD batch size (capped at N).
    clip_norm : float or None
        Clip each minibatch gradient to this norm (None: no clipping).

    Returns
    -------
    strategy of TrainedNetwork

    Examples
    --------
    A property of every trained ReLU network's layer blocks (see
    :func:`network_layer_factors` for the factors alone)::

        @given(net=mlp_networks(activations=("relu",)))
        def test_layer_block_is_psd(net):
            G, a, _ = net.layer_factors(0)
            assert np.linalg.eigvalsh(G).min() >= -1e-12 * max(1.0, np.abs(G).max())

    References
    ----------
    Spec part A ("Dense-layer structure", "Random families"); Zhang, Yang & Tu,
    arXiv:2602.05600.
    """
    if isinstance(max_hidden_layers, bool) or not isinstance(max_hidden_layers, int) \
            or max_hidden_layers < 0:
        raise ValueError(f"max_hidden_layers must be an integer >= 0; got {max_hidden_layers!r}")
    max_width = check_positive_int(max_width, "max_width")
    n_lo, n_hi = _check_bounds(min_samples, max_samples, "min_samples", "max_samples", minimum=2)
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 0:
        raise ValueError(f"max_epochs must be an integer >= 0; got {max_epochs!r}")
    max_classes = check_positive_int(max_classes, "max_classes", minimum=2)
    if max_classes > 10:
        raise ValueError(f"max_classes must be <= 10; got {max_classes}")
    max_input = check_positive_int(max_input, "max_input")
    acts = _check_names(activations, "activations", NETWORK_ACTIVATIONS)
    loss_pool = _check_names(losses, "losses", NETWORK_LOSSES)
    sources = _check_names(data, "data", NETWORK_DATA)
    if bias is not None and not isinstance(bias, (bool, np.bool_)):
        raise ValueError(f"bias must be True, False or None; got {bias!r}")
    eta = check_positive(eta, "eta")
    batch_size = check_positive_int(batch_size, "batch_size")
    if clip_norm is not None:
        clip_norm = check_positive(clip_norm, "clip_norm")

    @st.composite
    def draw_network(draw: st.DrawFn) -> TrainedNetwork:
        from sgdnoise.sim.data import gaussian_mixture
        from sgdnoise.sim.training import DivergenceError, TrainConfig, train

        num_hidden = draw(st.integers(0, max_hidden_layers), label="hidden layers")
        hidden = [draw(st.integers(1, max_width), label="width") for _ in range(num_hidden)]
        N = draw(st.integers(n_lo, n_hi), label="N")
        epochs = draw(st.integers(0, max_epochs), label="epochs")
        classes = draw(st.integers(2, max_classes), label="classes")
        activation = draw(st.sampled_from(acts), label="activation")
        loss = draw(st.sampled_from(loss_pool), label="loss")
        with_bias = draw(st.booleans(), label="bias") if bias is None else bool(bias)
        source = draw(st.sampled_from(sources), label="data")
        d_in = draw(st.integers(1, max_input), label="input dimension") \
            if source == "mixture" else 16
        seed = draw(_SEEDS, label="seed")
        rng = np.random.default_rng(seed)
        if source == "mixture":
            ds = gaussian_mixture(N, d_in, classes, rng=rng)
            x, labels = ds.x, np.asarray(ds.y, dtype=np.int64)
        else:
            x, labels = _pooled_digits(N, classes, rng)
        y = np.eye(classes)[labels] if loss == "mse" else labels
        model = MLP((x.shape[1], *hidden, classes), activation=activation, loss=loss,
                    bias=with_bias)
        w = model.init(rng)
        if epochs:
            config = TrainConfig(eta=eta, batch_size=min(batch_size, N), num_epochs=epochs,
                                 drop_last=False, clip_norm=clip_norm,
                                 seed=int(rng.integers(2**32)))
            try:
                w = train(model, w, x, y, config).w
            except DivergenceError:
                reject()      # not a network anyone would analyse; Hypothesis draws another
        return TrainedNetwork(model=model, w=w, x=x, y=y, data=source, num_epochs=epochs,
                              seed=seed)

    return draw_network()


def network_layer_factors(*, psd: bool = False, **network_options: Any
                          ) -> SearchStrategy[tuple[FloatArray, FloatArray, FloatArray]]:
    r"""Exact per-sample Kronecker factors (G, a, δ) of one layer of a trained MLP.

    A network from :func:`mlp_networks` (``network_options`` are its bounds), then a layer of
    it (shrinking towards the first), then :meth:`sgdnoise.sim.MLP.layer_factors`: the layer's
    diagonal Hessian block is h_p = G_p ⊗ a_p a_pᵀ and its per-sample gradient g_p = δ_p ⊗ a_p
    (``sgdnoise.theory.kronecker_hessians`` and ``kronecker_layer_moments`` take them as they
    are).  The same triple as :func:`kronecker_factors`, but with the curvature of a real net.

    Parameters
    ----------
    psd : bool
        Restrict to :data:`PSD_ACTIVATIONS` and :data:`PSD_LOSSES`, where every G_p (hence every
        layer block h_p) is positive semi-definite: with a piecewise-linear activation
        G_l = D_l W_{l+1}ᵀ G_{l+1} W_{l+1} D_l has no φ″ term, and the loss Hessian in the
        logits is PSD (softmax: diag(q) − qqᵀ; MSE: I).  Softmax-then-MSE and smooth
        activations give indefinite G_p.
    **network_options
        Bounds of :func:`mlp_networks`.

    Returns
    -------
    strategy of (G (N, out, out), a (N, in), delta (N, out)) tuples

    References
    ----------
    Spec part A, "Dense-layer structure"; Botev, Ritter & Barber, ICML 2017 (Hessian
    backpropagation); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    networks = mlp_networks(**_psd_options(psd, network_options))

    @st.composite
    def draw_factors(draw: st.DrawFn) -> tuple[FloatArray, FloatArray, FloatArray]:
        net = draw(networks, label="network")
        layer = draw(st.integers(0, net.model.num_layers - 1), label="layer")
        return net.layer_factors(layer)

    return draw_factors()


def network_hessians(*, block: str = "model", psd: bool = False, **network_options: Any
                     ) -> SearchStrategy[FloatArray]:
    r"""Exact per-sample Hessians (N, D, D) of a trained MLP: the whole model or one layer block.

    ``block="model"``: h_p = ∇²ℓ_p(w) over all D parameters (``MLP.per_sample_hessians``).
    With a hidden layer these are indefinite for every activation and loss: the cross-layer
    blocks carry the residual term Σ_k (∂ℓ/∂z_k) ∇²z_k, which is non-zero even for ReLU
    (z is bilinear in the weights of two layers).  ``block="layer"``: the diagonal block
    G_p ⊗ a_p a_pᵀ of a drawn layer (``kronecker_hessians`` of :func:`network_layer_factors`).

    Parameters
    ----------
    block : {"model", "layer"}
    psd : bool
        Only PSD members: for ``"layer"`` the activations and losses of
        :func:`network_layer_factors` with ``psd=True``; for ``"model"`` also no hidden layer
        (softmax or linear regression, h_p = Λ_p ⊗ x_p x_pᵀ).
    **network_options
        Bounds of :func:`mlp_networks` (keep N·D² small: the default bounds give D ≤ 92).

    Returns
    -------
    strategy of (N, D, D) float64 arrays

    References
    ----------
    Spec part A (objects h_p, "Dense-layer structure"); Pearlmutter, Neural Computation 6
    (1994) (exact per-sample Hessians); Zhang, Yang & Tu, arXiv:2602.05600.
    """
    block = check_choice(block, "block", ("model", "layer"))
    if block == "layer":
        return network_layer_factors(psd=psd, **network_options).map(
            lambda f: kronecker_hessians(f[0], f[1]))
    options = _psd_options(psd, network_options)
    if psd:
        options["max_hidden_layers"] = 0
    return mlp_networks(**options).map(lambda net: net.per_sample_hessians())


def _psd_options(psd: bool, options: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(psd, (bool, np.bool_)):
        raise ValueError(f"psd must be True or False; got {psd!r}")  # noqa: TRY004
    options = dict(options)
    if psd:
        for key, allowed in (("activations", PSD_ACTIVATIONS), ("losses", PSD_LOSSES)):
            chosen = _check_names(options.get(key, allowed), key, NETWORK_ACTIVATIONS
                                  if key == "activations" else NETWORK_LOSSES)
            bad = [c for c in chosen if c not in allowed]
            if bad:
                raise ValueError(f"{key} {bad} give indefinite curvature: drop them or pass "
                                 f"psd=False")
            options[key] = chosen
    return options


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



# ----------------------------------------------------------------------------------------------
# extreme values: for fuzzing closed forms over the whole float64 range
# ----------------------------------------------------------------------------------------------

#: Default decimal exponents of :func:`finite_floats_wide`: from subnormal 1e-320 to 1e300.
WIDE_EXPONENTS: tuple[int, int] = (-320, 300)


def finite_floats_wide(*, min_exponent: int = WIDE_EXPONENTS[0],
                       max_exponent: int = WIDE_EXPONENTS[1], allow_negative: bool = True,
                       allow_zero: bool = True) -> SearchStrategy[float]:
    r"""Finite floats over the whole float64 range, for fuzzing.

    A mixture of ordinary values (|x| ≤ 100), magnitudes m·10^e with e uniform in
    [min_exponent, max_exponent] and 1 ≤ m < 10 (so 1e-320, a subnormal, and 1e300 are as likely
    as 1), and edge values (0, 1, 10^min_exponent, 10^max_exponent).  Never NaN or inf.

    Parameters
    ----------
    min_exponent, max_exponent : int
        Decimal exponent range of the extreme draws, −323 ≤ min_exponent ≤ max_exponent ≤ 307.
    allow_negative : bool
        Also draw negative values (each value's sign is drawn separately).
    allow_zero : bool
        Also draw 0.0.

    Returns
    -------
    strategy of float

    References
    ----------
    IEEE 754-2008 binary64 (range 4.9e-324 … 1.8e308); Hypothesis ``floats``.
    """
    lo = _check_int_in(min_exponent, "min_exponent", -323, 307)
    hi = _check_int_in(max_exponent, "max_exponent", lo, 307)
    magnitudes = st.one_of(
        st.floats(0.0, 100.0, exclude_min=not allow_zero),
        st.builds(lambda m, e: m * 10.0**e, st.floats(1.0, 10.0, exclude_max=True),
                  st.integers(lo, hi)),
        st.sampled_from([1.0, 10.0**lo, 10.0**hi] + ([0.0] if allow_zero else [])),
    )
    if not allow_negative:
        return magnitudes
    return st.builds(lambda x, negative: -x if negative else x, magnitudes, st.booleans())


def _check_int_in(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {value!r}")  # noqa: TRY004
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}]; got {value}")
    return int(value)


def _default_elements(elements: SearchStrategy[float] | None) -> SearchStrategy[float]:
    if elements is None:
        return finite_floats_wide()
    if not isinstance(elements, SearchStrategy):
        raise ValueError(  # noqa: TRY004
            f"elements must be a Hypothesis strategy of floats; got {elements!r}")
    return elements


def float_arrays_wide(*, min_dims: int = 0, max_dims: int = 2, min_side: int = 0,
                      max_side: int = 4,
                      elements: SearchStrategy[float] | None = None) -> SearchStrategy[FloatArray]:
    r"""Float64 arrays of any small shape (empty ones included) with wide-range entries.

    Parameters
    ----------
    min_dims, max_dims : int
        Range of the number of dimensions (0 gives a 0-d array).
    min_side, max_side : int
        Range of each side (0 gives an empty array).
    elements : strategy of float, optional
        Entries; default :func:`finite_floats_wide`.

    Returns
    -------
    strategy of float64 arrays

    References
    ----------
    Hypothesis ``hypothesis.extra.numpy.arrays``.
    """
    from hypothesis.extra.numpy import array_shapes, arrays

    d_lo = _check_int_in(min_dims, "min_dims", 0, 32)
    d_hi = _check_int_in(max_dims, "max_dims", d_lo, 32)
    s_lo = _check_int_in(min_side, "min_side", 0, 10**6)
    s_hi = _check_int_in(max_side, "max_side", s_lo, 10**6)
    shapes = array_shapes(min_dims=d_lo, max_dims=d_hi, min_side=s_lo, max_side=s_hi)
    return arrays(np.float64, shapes, elements=_default_elements(elements))


def symmetric_matrices(*, min_dim: int = 1, max_dim: int = 4, psd: bool = False,
                       elements: SearchStrategy[float] | None = None
                       ) -> SearchStrategy[FloatArray]:
    r"""Symmetric matrices with wide-range entries and degenerate spectra, for fuzzing.

    Each draw is one of: the upper triangle drawn entrywise and mirrored (not with ``psd``);
    c·I (all eigenvalues identical); diagonal with repeated entries (ties); the zero matrix;
    and, with ``psd``, V diag(|λ|) Vᵀ with Haar V and |λ| drawn from ``elements`` (PSD up to
    round-off relative to its largest entry).  With ``psd`` every entry drawn is made
    non-negative.  Entries stay within a factor 2·max_dim of the magnitudes drawn, so keep
    ``elements`` below about 1e305.

    Parameters
    ----------
    min_dim, max_dim : int
        Range of the size D (1 ≤ min_dim ≤ max_dim).
    psd : bool
        Only positive semi-definite matrices.
    elements : strategy of float, optional
        Entries or eigenvalues; default :func:`finite_floats_wide`.

    Returns
    -------
    strategy of (D, D) float64 arrays

    References
    ----------
    Mezzadri, Notices AMS 54 (2007) (Haar rotations, :func:`sgdnoise.theory.haar_orthogonal`).
    """
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim")
    values = _default_elements(elements)
    if psd:
        values = values.map(abs)

    @st.composite
    def draw_symmetric(draw: st.DrawFn) -> FloatArray:
        D = draw(st.integers(d_lo, d_hi))
        kinds = ["identity", "diagonal", "zero", "rotated" if psd else "mirrored"]
        kind = draw(st.sampled_from(kinds))
        if kind == "identity":
            return draw(values) * np.eye(D)
        if kind == "zero":
            return np.zeros((D, D))
        if kind == "diagonal":
            distinct = draw(st.lists(values, min_size=1, max_size=D))
            picks = draw(st.lists(st.integers(0, len(distinct) - 1), min_size=D, max_size=D))
            return np.diag(np.asarray(distinct, dtype=np.float64)[picks])
        if kind == "mirrored":
            A = np.zeros((D, D))
            iu = np.triu_indices(D)
            A[iu] = draw(st.lists(values, min_size=iu[0].size, max_size=iu[0].size))
            return np.triu(A) + np.triu(A, 1).T
        lam = np.asarray(draw(st.lists(values, min_size=D, max_size=D)), dtype=np.float64)
        V = haar_orthogonal(D, draw(_SEEDS))
        with np.errstate(under="ignore"):
            A = (V * lam) @ V.T
        return 0.5 * A + 0.5 * A.T

    return draw_symmetric()


def symmetric_stacks(*, min_samples: int = 1, max_samples: int = 4, min_dim: int = 1,
                     max_dim: int = 3, psd: bool = False,
                     elements: SearchStrategy[float] | None = None
                     ) -> SearchStrategy[FloatArray]:
    r"""Stacks (N, D, D) of :func:`symmetric_matrices` of one size D, for fuzzing.

    Parameters
    ----------
    min_samples, max_samples : int
        Range of N (≥ 1).
    min_dim, max_dim : int
        Range of D (≥ 1).
    psd : bool
        Only positive semi-definite members.
    elements : strategy of float, optional
        As in :func:`symmetric_matrices`.

    Returns
    -------
    strategy of (N, D, D) float64 arrays

    References
    ----------
    Spec "Random families for property tests" (per-sample Hessians h_p).
    """
    n_lo, n_hi = _check_bounds(min_samples, max_samples, "min_samples", "max_samples")
    d_lo, d_hi = _check_bounds(min_dim, max_dim, "min_dim", "max_dim")

    @st.composite
    def draw_stack(draw: st.DrawFn) -> FloatArray:
        D = draw(st.integers(d_lo, d_hi))
        member = symmetric_matrices(min_dim=D, max_dim=D, psd=psd, elements=elements)
        return np.stack(draw(st.lists(member, min_size=n_lo, max_size=n_hi)))

    return draw_stack()

__all__ = [
    "DEFAULT_FAMILIES",
    "NETWORK_ACTIVATIONS",
    "NETWORK_DATA",
    "NETWORK_LOSSES",
    "NOISE_KINDS",
    "PSD_ACTIVATIONS",
    "PSD_FAMILIES",
    "PSD_LOSSES",
    "SYMMETRIC_FAMILIES",
    "TrainedNetwork",
    "WIDE_EXPONENTS",
    "commuting_pairs",
    "finite_floats_wide",
    "float_arrays_wide",
    "kronecker_factors",
    "mlp_networks",
    "network_hessians",
    "network_layer_factors",
    "low_rank_kronecker_factors",
    "mlp_problems",
    "noncommuting_pairs",
    "per_sample_hessian_families",
    "psd_matrices",
    "psd_noise_pairs",
    "spectra",
    "symmetric_matrices",
    "symmetric_stacks",
    "window_breaking_families",
]
