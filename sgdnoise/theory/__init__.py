"""Closed forms, bounds and symbolic derivations (no randomness beyond seeded baselines).

Part A (Zhang, Yang & Tu, arXiv:2602.05600): curvature moments H, M = E_p[h_p²], Σ₁ and C from
dense or Kronecker input; eigenbasis diagonals; the Loewner sandwich (A1) and diagonal wedge (A2);
power-law fits with the exponent identity and a guaranteed interval (A3); commutation metrics
(A5); sympy derivations (A3, A5, A7).

Matrix-free curvature at network scale: blocked linear operators for H, M, K, Σ₁ and C
(:func:`kronecker_layer_operators` for one dense layer, also from low-rank factors), their top
eigenpairs with residual norms (:func:`top_eigenbasis`), windowed commutation, Hutchinson and
Hutch++ traces and stochastic-Lanczos-quadrature spectral densities with their errors.  Dense
paths refuse allocations past the memory limit with :class:`MemoryLimitError`.

Part B (Zhu, Wu, Yu, Wu & Ma, arXiv:1803.00195): the indicator Tr(HΣ), the gain of anisotropic
noise with its bounds and alignment condition (B2), exact OU and discrete-time covariances and
loss increases near a minimum (B1), and their sympy derivations.

Part C (Mori, Ziyin, Liu & Ueda, arXiv:2105.09557): φ, temperature, 1-D and n-D power-law escape
rates, n_c, Arrhenius alternatives, exact 1-D mean first-passage times by quadrature, the noise
trace of linear regression; sympy: Itô time change and the escape rate in the changed time.

Part D (Kühn & Rosenow, arXiv:2306.05300): epoch-noise autocorrelation and spectrum, the AR(2)
impulse response, exact stationary weight and velocity variances for i.i.d. and epoch sampling
(phase-averaged and per position), correlation time, crossover curvature, excess loss; sympy:
Yule–Walker, sum rule, flat limit.
"""

from sgdnoise._memory import MemoryLimitError
from sgdnoise.theory._anisotropic import (
    aligned_gain_lower_bound,
    alignment,
    discrete_covariance,
    discrete_expected_loss_increase,
    gain_bounds,
    gain_ratio,
    hessian_noise_gain,
    indicator,
    isotropic_counterpart,
    ou_covariance,
    ou_expected_loss_increase,
    ou_loss_increase_small_t,
    stationary_covariance_discrete,
)
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
from sgdnoise.theory._epoch_noise import (
    ar2_impulse_response,
    correlation_time,
    crossover_curvature,
    epoch_autocorrelation,
    epoch_noise_spectrum,
    excess_loss,
    excess_loss_constant_variance,
    loss_variance,
    stationary_variance_correlated,
    velocity_variance_epoch,
    velocity_variance_iid,
    weight_variance_epoch,
    weight_variance_epoch_flat_limit,
    weight_variance_epoch_profile,
    weight_variance_iid,
)
from sgdnoise.theory._layer_operators import (
    LowRankFactors,
    kronecker_layer_operators,
    low_rank_max_eigenvalues,
)
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
from sgdnoise.theory._operators import BlockOperator, CurvatureOperators
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
from sgdnoise.theory._powerlaw_escape import (
    DoubleWell,
    EscapeParameters,
    NoiseTrace,
    SaddleGeometry,
    arrhenius_rate_frozen_noise,
    critical_dimension,
    escape_exponent,
    escape_rate,
    escape_rate_1d,
    kramers_rate,
    linear_regression_passage_time_1d,
    mean_first_passage_time_1d,
    noise_trace_linear_regression,
    phi,
    saddle_geometry,
    stationary_density_1d,
    stationary_density_sde_1d,
    temperature,
)
from sgdnoise.theory._spectral import (
    TopEigenBasis,
    top_eigenbasis,
    window_commutation_metrics,
)
from sgdnoise.theory._stochastic_trace import (
    SpectralDensity,
    TraceEstimate,
    slq_density,
    trace_estimate,
    trace_product,
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
from sgdnoise.theory._symbolic_b import (
    discrete_covariance_symbolic,
    discrete_loss_increase_symbolic,
    discrete_lyapunov_identity,
    hessian_noise_gain_identity,
    ou_covariance_symbolic,
    ou_loss_increase_series,
    ou_loss_increase_symbolic,
    ou_lyapunov_identity,
)
from sgdnoise.theory._symbolic_cd import (
    ar2_variance_derivation,
    epoch_autocorrelation_derivation,
    epoch_flat_limit_derivation,
    epoch_spectrum_derivation,
    epoch_variance_sgd_derivation,
    escape_rate_time_change,
    escape_rate_time_change_1d,
    ito_time_change,
    momentum_forms_identity,
    noise_trace_identity,
    stationary_covariance_ar2,
    yule_walker_ar2,
)

__all__ = [
    "PROTOCOLS",
    "BlockOperator",
    "CommutationReport",
    "CurvatureOperators",
    "DoubleWell",
    "EigenBasis",
    "EscapeParameters",
    "ExponentFit",
    "LayerMoments",
    "LowRankFactors",
    "MemoryLimitError",
    "NoiseTrace",
    "PowerLawFit",
    "RandomBaseline",
    "SaddleGeometry",
    "SandwichMargins",
    "SpectralDensity",
    "TopEigenBasis",
    "TraceEstimate",
    "Wedge",
    "aligned_gain_lower_bound",
    "alignment",
    "ar2_impulse_response",
    "ar2_variance_derivation",
    "arrhenius_rate_frozen_noise",
    "commutation_error",
    "commutation_metrics",
    "commutator_identity",
    "correlation_time",
    "critical_dimension",
    "crossover_curvature",
    "dense_layer_moments",
    "diagonal_energy",
    "diagonal_wedge",
    "discrete_covariance",
    "discrete_covariance_symbolic",
    "discrete_expected_loss_increase",
    "discrete_loss_increase_symbolic",
    "discrete_lyapunov_identity",
    "effective_curvature",
    "eigenbasis",
    "epoch_autocorrelation",
    "epoch_autocorrelation_derivation",
    "epoch_flat_limit_derivation",
    "epoch_noise_spectrum",
    "epoch_spectrum_derivation",
    "epoch_variance_sgd_derivation",
    "escape_exponent",
    "escape_rate",
    "escape_rate_1d",
    "escape_rate_time_change",
    "escape_rate_time_change_1d",
    "excess_loss",
    "excess_loss_constant_variance",
    "expected_random_commutator",
    "exponent_interval",
    "fit_exponent",
    "fit_power_law",
    "gain_bounds",
    "gain_ratio",
    "gradient_covariance",
    "haar_orthogonal",
    "hessian_moments",
    "hessian_noise_gain",
    "hessian_noise_gain_identity",
    "indicator",
    "isotropic_counterpart",
    "ito_time_change",
    "kramers_rate",
    "kronecker_gradient_variance",
    "kronecker_hessian_diagonal",
    "kronecker_hessians",
    "kronecker_layer_moments",
    "kronecker_layer_operators",
    "kronecker_max_curvatures",
    "kronecker_second_moment_diagonal",
    "linear_regression_gradient_moments",
    "linear_regression_gradient_second_moment",
    "linear_regression_noise_covariance",
    "linear_regression_passage_time_1d",
    "loewner_sandwich",
    "logistic_gradient_identity",
    "logistic_noise_factor",
    "loss_variance",
    "low_rank_max_eigenvalues",
    "max_curvatures",
    "mean_first_passage_time_1d",
    "momentum_forms_identity",
    "monotone_condition",
    "noise_covariance",
    "noise_trace_identity",
    "noise_trace_linear_regression",
    "ols_exponent_identity",
    "ols_slope",
    "ou_covariance",
    "ou_covariance_symbolic",
    "ou_expected_loss_increase",
    "ou_loss_increase_series",
    "ou_loss_increase_small_t",
    "ou_loss_increase_symbolic",
    "ou_lyapunov_identity",
    "phi",
    "random_commutation_baseline",
    "require_psd",
    "saddle_geometry",
    "slq_density",
    "stationary_covariance_ar2",
    "stationary_covariance_discrete",
    "stationary_density_1d",
    "stationary_density_sde_1d",
    "stationary_variance_correlated",
    "temperature",
    "top_eigenbasis",
    "trace_estimate",
    "trace_product",
    "variance_identity",
    "velocity_variance_epoch",
    "velocity_variance_iid",
    "weight_variance_epoch",
    "weight_variance_epoch_flat_limit",
    "weight_variance_epoch_profile",
    "weight_variance_iid",
    "window_commutation",
    "window_commutation_metrics",
    "yule_walker_ar2",
]
