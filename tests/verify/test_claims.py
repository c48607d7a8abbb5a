"""The claims registry: every part-A claim passes, and fails when its theory is broken."""

import json

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.verify import _part_a
from sgdnoise.verify.claims import REGISTRY, Claim, Outcome, Registry, default_registry

EXPECTED = ["A1", "A2", "A3", "A4", "A5", "A6", "A7"]
ALL_IDS = [*EXPECTED, "B1", "B2", "B3", "B4", "C1", "C2", "C3", "C4", "D1", "D2", "D3", "D4", "D5"]


def test_registry_holds_part_a_claims():
    assert REGISTRY.ids() == ALL_IDS
    for claim_id in EXPECTED:
        claim = REGISTRY.get(claim_id)
        assert claim.source.startswith("Zhang, Yang & Tu")
        assert len(claim.statement) > 40


@pytest.mark.parametrize("claim_id", [c for c in EXPECTED if c != "A6"])  # A6: figure test
def test_claim_passes(claim_id):
    result = REGISTRY.get(claim_id).check(seed=0, backend="numpy")
    assert result.error is None, result.error
    assert result.passed, (result.measurement, result.values)
    json.dumps(result.to_dict(), allow_nan=False)  # serialisable, no NaN


@pytest.mark.parametrize("claim_id", ["A1", "A3"])
def test_claim_passes_on_another_seed(claim_id):
    assert REGISTRY.get(claim_id).check(seed=7, backend="numpy").passed


def test_same_seed_same_numbers():
    a = REGISTRY.get("A5").check(seed=3, backend="numpy")
    b = REGISTRY.get("A5").check(seed=3, backend="numpy")
    assert a.values == b.values


_real_hessian_moments = theory.hessian_moments


def _broken_moments(h):
    H, M = _real_hessian_moments(h)
    return H, H @ H - 0.1 * np.abs(M).max() * np.eye(H.shape[0])  # M below H²: breaks A1


def test_a1_fails_when_theory_is_broken(monkeypatch):
    monkeypatch.setattr(_part_a.theory, "hessian_moments", _broken_moments)
    result = REGISTRY.get("A1").check(seed=0, backend="numpy")
    assert not result.passed and result.verdict == "FAIL"


def test_a2_fails_when_kappa_star_is_understated(monkeypatch):
    real = theory.dense_layer_moments

    def shrunk(h, *args, **kwargs):
        lm = real(h, *args, **kwargs)
        return theory.LayerMoments(H=lm.H, M=lm.M, kappa_max=0.01 * lm.kappa_max, K=0.01 * lm.K,
                                   Sigma1=lm.Sigma1, g_mean=lm.g_mean, num_samples=lm.num_samples)

    monkeypatch.setattr(_part_a.theory, "dense_layer_moments", shrunk)
    assert not REGISTRY.get("A2").check(seed=0, backend="numpy").passed


def test_a3_fails_when_fit_is_biased(monkeypatch):
    real = theory.fit_exponent

    def biased(*args, **kwargs):
        f = real(*args, **kwargs)
        return type(f)(gamma=f.gamma + 0.01, kappa_slope=f.kappa_slope,
                       identity_residual=f.identity_residual + 0.01, interval=f.interval,
                       in_unit_range=f.in_unit_range, monotone_condition=f.monotone_condition,
                       fit=f.fit)

    monkeypatch.setattr(_part_a.theory, "fit_exponent", biased)
    assert not REGISTRY.get("A3").check(seed=0, backend="numpy").passed


def test_a5_fails_for_a_random_noise_covariance(monkeypatch):
    def scrambled(Sigma1, B, **kwargs):
        rng = np.random.default_rng(0)
        Q = theory.haar_orthogonal(Sigma1.shape[0], rng)
        return Q @ Sigma1 @ Q.T / B

    monkeypatch.setattr(_part_a.theory, "noise_covariance", scrambled)
    assert not REGISTRY.get("A5").check(seed=0, backend="numpy").passed


def test_a7_fails_with_a_wrong_isserlis_formula(monkeypatch):
    real = theory.linear_regression_noise_covariance

    def wrong(S, e, sigma2):  # drops the (eᵀSe)S term
        return real(S, e, sigma2) - float(e @ S @ e) * np.asarray(S)

    monkeypatch.setattr(_part_a.theory, "linear_regression_noise_covariance", wrong)
    assert not REGISTRY.get("A7").check(seed=0, backend="numpy").passed


def test_a4_fails_when_noise_is_made_proportional_to_H(monkeypatch):
    from sgdnoise.verify import networks

    real = networks.theory.kronecker_layer_moments

    def moments_with_c_equal_h(G, a, delta=None, **kwargs):
        lm = real(G, a, delta, **kwargs)
        return theory.LayerMoments(H=lm.H, M=lm.M, kappa_max=lm.kappa_max, K=lm.K,
                                   Sigma1=lm.H.copy(), g_mean=lm.g_mean,
                                   num_samples=lm.num_samples)

    monkeypatch.setattr(networks.theory, "kronecker_layer_moments", moments_with_c_equal_h)
    result = REGISTRY.get("A4").check(seed=0, backend="numpy")
    assert result.error is None and not result.passed


def test_a6_writes_its_figure(tmp_path):
    result = REGISTRY.get("A6").check(seed=0, backend="numpy", out_dir=str(tmp_path))
    assert result.passed
    fig, table = result.values["figures"]
    assert fig.endswith("A6_powerlaw.png") and (tmp_path / "A6_powerlaw.png").stat().st_size > 10_000
    assert (tmp_path / "A6_gamma_table.md").read_text().count("| digits |") == 6
    layers = {(r["loss"], r["layer"]) for r in result.values["rows"]}
    assert layers == {(loss, layer) for loss in ("cross_entropy", "softmax_mse")
                      for layer in range(3)}


def test_exception_in_a_claim_is_reported_as_error():
    def boom(ctx):
        raise RuntimeError("kaput")

    result = Claim("X1", "src", "statement", boom).check()
    assert result.verdict == "ERROR" and "kaput" in result.error and not result.passed


def test_registry_rejects_duplicates_and_unknown_ids():
    reg = Registry([Claim("X1", "s", "t", lambda ctx: Outcome("p", "m", "t", True))])
    with pytest.raises(ValueError, match="already registered"):
        reg.add(Claim("X1", "s", "t", lambda ctx: Outcome("p", "m", "t", True)))
    with pytest.raises(ValueError, match="unknown claim id"):
        reg.get("Z9")
    assert default_registry().ids() == ALL_IDS


def test_scale_is_validated():
    with pytest.raises(ValueError, match="scale"):
        REGISTRY.get("A1").check(scale="huge")
