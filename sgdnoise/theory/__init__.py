"""Closed forms, bounds and symbolic derivations (no randomness beyond seeded baselines).

Part A (Zhang, Yang & Tu, arXiv:2602.05600): curvature moments H, M = E_p[h_p²], Σ₁ and C from
dense or Kronecker input; eigenbasis diagonals; the Loewner sandwich (A1) and diagonal wedge (A2);
power-law fits with the exponent identity and a guaranteed interval (A3); commutation metrics
(A5); sympy derivations (A3, A5, A7).
"""

from sgdnoise.theory._bounds import SandwichMargins, Wedge, diagonal_wedge, loewner_sandwich
from sgdnoise.theory._commutation import (
    CommutationReport,
    RandomBaseline,
    commutation_error,
    commutation_metrics,
    diagonal_energy,
    expected_random_commutator,
    haar_orthogonal,
    random_commutation_baseline,
    window_commutation,
)
from sgdnoise.theory._diagonals import (
    kronecker_gradient_variance,
    kronecker_hessian_diagonal,
    kronecker_second_moment_diagonal,
)
from sgdnoise.theory._eigenbasis import EigenBasis, effective_curvature, eigenbasis
from sgdnoise.theory._moments import (
    LayerMoments,
    dense_layer_moments,
    gradient_covariance,
    hessian_moments,
    kronecker_hessians,
    kronecker_layer_moments,
    kronecker_max_curvatures,
    max_curvatures,
    noise_covariance,
    require_psd,
)
from sgdnoise.theory._powerlaw import (
    PROTOCOLS,
    ExponentFit,
    PowerLawFit,
    exponent_interval,
    fit_exponent,
    fit_power_law,
    monotone_condition,
    ols_slope,
)
from sgdnoise.theory._symbolic import (
    commutator_identity,
    linear_regression_gradient_moments,
    linear_regression_gradient_second_moment,
    linear_regression_noise_covariance,
    logistic_gradient_identity,
    logistic_noise_factor,
    ols_exponent_identity,
    variance_identity,
)

__all__ = [
    "PROTOCOLS",
    "CommutationReport",
    "EigenBasis",
    "ExponentFit",
    "LayerMoments",
    "PowerLawFit",
    "RandomBaseline",
    "SandwichMargins",
    "Wedge",
    "commutation_error",
    "commutation_metrics",
    "commutator_identity",
    "dense_layer_moments",
    "diagonal_energy",
    "diagonal_wedge",
    "effective_curvature",
    "eigenbasis",
    "expected_random_commutator",
    "exponent_interval",
    "fit_exponent",
    "fit_power_law",
    "gradient_covariance",
    "haar_orthogonal",
    "hessian_moments",
    "kronecker_gradient_variance",
    "kronecker_hessian_diagonal",
    "kronecker_hessians",
    "kronecker_layer_moments",
    "kronecker_max_curvatures",
    "kronecker_second_moment_diagonal",
    "linear_regression_gradient_moments",
    "linear_regression_gradient_second_moment",
    "linear_regression_noise_covariance",
    "loewner_sandwich",
    "logistic_gradient_identity",
    "logistic_noise_factor",
    "max_curvatures",
    "monotone_condition",
    "noise_covariance",
    "ols_exponent_identity",
    "ols_slope",
    "random_commutation_baseline",
    "require_psd",
    "variance_identity",
    "window_commutation",
]
