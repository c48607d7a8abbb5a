"""Invalid input to the theory functions: one table, each a ValueError that names the argument."""

from __future__ import annotations

import numpy as np
import pytest

from sgdnoise import theory

_EYE2 = np.eye(2)
_H = np.stack([np.eye(2), np.diag([2.0, 0.5])])  # a valid (2, 2, 2) stack
_ASYM = np.array([[1.0, 2.0], [0.0, 1.0]])
_NAN2 = np.array([[1.0, np.nan], [np.nan, 1.0]])
_G = np.stack([np.eye(2)] * 3)  # (3, 2, 2)
_A = np.ones((3, 2))
_LAM = np.array([1.0, 0.1, 0.01])
_BASIS = theory.eigenbasis(np.diag([3.0, 2.0, 1.0]))

BAD_INPUTS = [
    # moments
    ("h", lambda: theory.hessian_moments(np.ones((2, 2, 3)))),
    ("h", lambda: theory.hessian_moments(np.eye(2))),
    ("h", lambda: theory.hessian_moments(np.stack([_NAN2]))),
    ("h", lambda: theory.hessian_moments(np.stack([_ASYM]))),
    ("h", lambda: theory.hessian_moments(np.zeros((0, 2, 2)))),
    ("h", lambda: theory.hessian_moments([["a"]])),
    ("h", lambda: theory.max_curvatures(np.stack([_ASYM]))),
    ("h", lambda: theory.require_psd(np.stack([np.diag([1.0, -1.0])]))),
    ("h", lambda: theory.require_psd(np.stack([np.triu(np.ones((3, 3)))]))),
    ("h", lambda: theory.require_psd(np.stack([np.tril(np.ones((3, 3)))]))),
    ("grads", lambda: theory.gradient_covariance(np.ones(3))),
    ("grads", lambda: theory.gradient_covariance(np.full((2, 2), np.inf))),
    ("grads", lambda: theory.gradient_covariance(np.zeros((0, 2)))),
    ("grads", lambda: theory.dense_layer_moments(_H, np.ones((2, 3)))),
    ("Sigma1", lambda: theory.noise_covariance(_NAN2, 2)),
    ("B", lambda: theory.noise_covariance(_EYE2, 0)),
    ("B", lambda: theory.noise_covariance(_EYE2, 1.5)),
    ("B", lambda: theory.noise_covariance(_EYE2, True)),
    ("Sigma1", lambda: theory.noise_covariance(np.ones((2, 3)), 2)),
    ("Sigma1", lambda: theory.noise_covariance(np.zeros((0, 0)), 2)),
    ("Sigma1", lambda: theory.noise_covariance(_ASYM, 2)),
    ("Sigma1", lambda: theory.noise_covariance(np.diag([1.0, -1.0]), 2)),
    ("Sigma1", lambda: theory.noise_covariance(1e300 * np.diag([1.0, -1e-6]), 2)),
    ("replacement", lambda: theory.noise_covariance(_EYE2, 2, replacement="no")),
    ("replacement", lambda: theory.noise_covariance(_EYE2, 2, replacement=0)),
    ("N", lambda: theory.noise_covariance(_EYE2, 2, replacement=False)),
    ("N", lambda: theory.noise_covariance(_EYE2, 1, N=1, replacement=False)),
    ("B", lambda: theory.noise_covariance(_EYE2, 5, N=4, replacement=False)),
    ("G", lambda: theory.kronecker_hessians(np.stack([_ASYM] * 3), _A)),
    ("G", lambda: theory.kronecker_hessians(np.ones((3, 2, 1)), _A)),
    ("a", lambda: theory.kronecker_hessians(_G, np.ones((2, 2)))),
    ("a", lambda: theory.kronecker_hessians(_G, np.ones(3))),
    ("a", lambda: theory.kronecker_hessians(_G, np.ones((3, 0)))),
    ("a", lambda: theory.kronecker_max_curvatures(_G, np.full((3, 2), np.nan))),
    ("delta", lambda: theory.kronecker_layer_moments(_G, _A, np.ones((3, 3)))),
    ("chunk", lambda: theory.kronecker_layer_moments(_G, _A, chunk=0)),
    ("backend", lambda: theory.kronecker_layer_moments(_G, _A, backend="fortran")),
    ("backend", lambda: theory.kronecker_layer_moments(_G, _A, backend="numba")),
    # bounds
    ("H", lambda: theory.loewner_sandwich(np.ones((2, 3)), _EYE2)),
    ("H", lambda: theory.loewner_sandwich(_ASYM, _EYE2)),
    ("M", lambda: theory.loewner_sandwich(_EYE2, _NAN2)),
    ("M", lambda: theory.loewner_sandwich(_EYE2, np.eye(3))),
    ("kappa_star", lambda: theory.loewner_sandwich(_EYE2, _EYE2, kappa_star=-1.0)),
    ("kappa_star", lambda: theory.loewner_sandwich(_EYE2, _EYE2, kappa_star=np.nan)),
    ("M_ii", lambda: theory.diagonal_wedge(_LAM, np.ones(2), 1.0)),
    ("lam", lambda: theory.diagonal_wedge(np.array([np.nan, 1.0]), np.ones(2), 1.0)),
    ("kappa_star", lambda: theory.diagonal_wedge(_LAM, _LAM, -2.0)),
    ("K_ii", lambda: theory.diagonal_wedge(_LAM, _LAM, 1.0, K_ii=np.ones(2))),
    # eigenbasis
    ("H", lambda: theory.eigenbasis(_ASYM)),
    ("H", lambda: theory.eigenbasis(np.ones((2, 3)))),
    ("H", lambda: theory.eigenbasis(_NAN2)),
    ("A", lambda: _BASIS.diagonal(_EYE2)),
    ("C", lambda: _BASIS.rotate(_EYE2, name="C")),
    ("lam", lambda: theory.effective_curvature(np.array([1.0, 0.0]), np.ones(2))),
    ("lam", lambda: theory.effective_curvature(np.array([1.0, np.nan]), np.ones(2))),
    ("M_ii", lambda: theory.effective_curvature(np.ones(2), np.ones(3))),
    # power laws
    ("x", lambda: theory.ols_slope(np.ones(3), np.arange(3.0))),
    ("x", lambda: theory.ols_slope(np.ones(1), np.ones(1))),
    ("y", lambda: theory.ols_slope(np.arange(3.0), np.ones(2))),
    ("y", lambda: theory.ols_slope(np.arange(3.0), np.array([1.0, np.nan, 2.0]))),
    ("protocol", lambda: theory.fit_power_law(_LAM, _LAM, protocol="bottom")),
    ("top", lambda: theory.fit_power_law(_LAM, _LAM, top=1)),
    ("top", lambda: theory.fit_power_law(_LAM, _LAM, top=2.0)),
    ("trim_percentile", lambda: theory.fit_power_law(_LAM, _LAM, trim_percentile=100.0)),
    ("trim_percentile", lambda: theory.fit_power_law(_LAM, _LAM, trim_percentile=-1.0)),
    ("keep_fraction", lambda: theory.fit_power_law(_LAM, _LAM, keep_fraction=0.0)),
    ("keep_fraction", lambda: theory.fit_power_law(_LAM, _LAM, keep_fraction=1.5)),
    ("y", lambda: theory.fit_power_law(_LAM, np.ones(2))),
    ("lam", lambda: theory.fit_power_law(np.array([1.0, -1.0, 0.0]), _LAM)),
    ("lam", lambda: theory.fit_power_law(np.ones(3), _LAM)),
    ("lam", lambda: theory.fit_power_law(np.ones((3, 1)), _LAM)),
    ("kappa_upper", lambda: theory.exponent_interval(_LAM, _LAM, 0.5 * _LAM)),
    ("kappa_upper", lambda: theory.exponent_interval(_LAM, _LAM, np.array([1.0, np.nan, 1.0]))),
    ("kappa_lower", lambda: theory.exponent_interval(_LAM, np.zeros(3), _LAM)),
    ("lam", lambda: theory.exponent_interval(np.ones(3), _LAM, _LAM)),
    ("lam", lambda: theory.exponent_interval(_LAM, np.ones(2), np.ones(2))),
    ("kappa_star", lambda: theory.fit_exponent(_LAM, _LAM**2, kappa_star=0.0)),
    ("kappa_star", lambda: theory.fit_exponent(_LAM, _LAM**1.5, kappa_star=0.5)),
    ("rel_floor", lambda: theory.fit_exponent(_LAM, _LAM**2, rel_floor=1.0)),
    ("rel_floor", lambda: theory.fit_power_law(_LAM, _LAM, rel_floor=-1e-3)),
    ("rel_floor", lambda: theory.fit_power_law(_LAM, _LAM, rel_floor=np.nan)),
    ("kappa_upper", lambda: theory.fit_exponent(_LAM, _LAM**2, kappa_upper=np.ones(2))),
    ("kappa_upper", lambda: theory.fit_exponent(_LAM, _LAM**2, kappa_upper=np.full(3, np.nan))),
    ("protocol", lambda: theory.fit_exponent(_LAM, _LAM**2, protocol="all")),
    ("kappa_eff", lambda: theory.monotone_condition(_LAM, np.array([1.0, np.nan, 1.0]))),
    ("lam", lambda: theory.monotone_condition(np.ones((2, 2)), np.ones(2))),
    # commutation
    ("C", lambda: theory.commutation_error(_ASYM, _EYE2)),
    ("H", lambda: theory.commutation_error(_EYE2, _NAN2)),
    ("H", lambda: theory.commutation_error(_EYE2, np.eye(3))),
    ("C", lambda: theory.commutation_error(np.zeros((2, 2)), _EYE2)),
    ("D", lambda: theory.haar_orthogonal(0, 0)),
    ("rng", lambda: theory.haar_orthogonal(2, "seed")),
    ("rng", lambda: theory.haar_orthogonal(2, -3)),
    ("eig_C", lambda: theory.expected_random_commutator(np.ones(2), np.ones(3))),
    ("eig_H", lambda: theory.expected_random_commutator(np.ones(1), np.ones(1))),
    ("num_samples", lambda: theory.random_commutation_baseline(_EYE2, np.diag([1.0, 2.0]),
                                                               num_samples=-1)),
    ("rng", lambda: theory.random_commutation_baseline(_EYE2, np.diag([1.0, 2.0]), rng=1.5)),
    ("top_k", lambda: theory.commutation_metrics(np.eye(3), np.diag([3.0, 2.0, 1.0]), top_k=3)),
    ("top_k", lambda: theory.commutation_metrics(np.eye(3), np.diag([3.0, 2.0, 1.0]), top_k=0)),
    ("window", lambda: theory.window_commutation(np.eye(3), _LAM, slice(3, 3))),
    ("window", lambda: theory.window_commutation(np.zeros((3, 3)), _LAM, slice(0, 2))),
    ("C_eig", lambda: theory.diagonal_energy(np.zeros((2, 2)))),
    ("C_eig", lambda: theory.diagonal_energy(np.ones(2))),
    ("basis", lambda: theory.commutation_metrics(np.eye(3), np.diag([3.0, 2.0, 1.0]),
                                                 basis=theory.eigenbasis(np.diag([1.0, 2.0, 3.0])))),
    ("basis", lambda: theory.commutation_metrics(np.eye(3), np.diag([3.0, 2.0, 1.0]),
                                                 basis=theory.eigenbasis(np.eye(2)))),
    ("basis", lambda: theory.commutation_metrics(np.eye(3), np.diag([3.0, 2.0, 1.0]),
                                                 basis=np.eye(3))),
    ("basis", lambda: theory.random_commutation_baseline(
        np.eye(2), np.diag([2.0, 1.0]), basis=theory.EigenBasis(np.zeros(2), np.zeros((2, 2))))),
    ("window", lambda: theory.window_commutation(np.eye(3), _LAM, 1.5)),
    ("window", lambda: theory.window_commutation(np.eye(3), _LAM, np.array([0, 7]))),
    ("lam", lambda: theory.window_commutation(np.eye(3), np.ones(2), slice(0, 2))),
]


@pytest.mark.parametrize(("argument", "call"), BAD_INPUTS,
                         ids=[f"{arg}-{i}" for i, (arg, _) in enumerate(BAD_INPUTS)])
def test_invalid_input_raises_value_error_naming_the_argument(argument, call):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()


_EMPTY = np.array([])

DEGENERATE_INPUTS = [  # empty or all-zero input: a ValueError, never a warning or NaN
    pytest.param("x", lambda: theory.ols_slope(_EMPTY, _EMPTY), id="ols_slope-empty"),
    pytest.param("lam", lambda: theory.exponent_interval(_EMPTY, _EMPTY, _EMPTY),
                 id="exponent_interval-empty"),
    pytest.param("eig_C", lambda: theory.expected_random_commutator(np.zeros(3), np.ones(3)),
                 id="expected_random_commutator-zero-spectrum"),
]


@pytest.mark.parametrize(("argument", "call"), DEGENERATE_INPUTS)
def test_degenerate_input_raises_value_error_naming_the_argument(argument, call):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        call()


def test_valid_inputs_of_the_table_pass():
    """The fixtures above are valid where the table does not break them on purpose."""
    H, M = theory.hessian_moments(_H)
    assert theory.loewner_sandwich(H, M, float(theory.max_curvatures(_H).max())).holds()
    assert theory.kronecker_layer_moments(_G, _A, np.ones((3, 2))).H.shape == (4, 4)
    assert theory.fit_exponent(_LAM, _LAM**2).gamma == pytest.approx(2.0, abs=1e-12)
    assert theory.noise_covariance(_EYE2, 2, N=4, replacement=False)[0, 0] == pytest.approx(1 / 3)
