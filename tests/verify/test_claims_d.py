"""Part-D claims: each passes at quick scale, fails when its theory is broken, draws its figure."""

import json

import numpy as np
import pytest

from sgdnoise import backends
from sgdnoise.verify import _part_d
from sgdnoise.verify._registry import Registry

REGISTRY_D = Registry(_part_d.CLAIMS_D)
BACKEND = "numba" if "numba" in backends.available() else "numpy"
FIGURES = {"D1": "D1_autocorrelation.png", "D3": "D3_variance.png",
           "D4": "D4_correlation_time.png", "D5": "D5_excess_loss.png"}


def test_registry_holds_d1_to_d5():
    assert REGISTRY_D.ids() == ["D1", "D2", "D3", "D4", "D5"]


@pytest.mark.parametrize("claim_id", ["D1", "D2", "D3", "D4", "D5"])
def test_part_d_claim_passes(claim_id, tmp_path):
    result = REGISTRY_D.get(claim_id).check(seed=0, backend=BACKEND, out_dir=str(tmp_path))
    assert result.error is None, result.error
    assert result.passed, (result.measurement, result.values)
    json.dumps(result.to_dict(), allow_nan=False)
    if claim_id in FIGURES:
        assert (tmp_path / FIGURES[claim_id]).stat().st_size > 10_000


def _scaled(name, factor):
    real = getattr(_part_d.theory, name)
    return lambda *a, **k: factor * np.asarray(real(*a, **k))


@pytest.mark.parametrize(("claim_id", "name", "replacement"), [
    # the i.i.d. law in place of the epoch one: R(h) = 0 for h ≠ 0
    ("D1", "epoch_autocorrelation", lambda h, C, M: np.where(np.asarray(h) == 0, C, 0.0)),
    ("D2", "weight_variance_iid", _scaled("weight_variance_iid", 1.1)),
    ("D3", "weight_variance_epoch", _scaled("weight_variance_epoch", 1.1)),
    ("D4", "correlation_time", _scaled("correlation_time", 1.1)),
    ("D5", "excess_loss", _scaled("excess_loss", 1.1)),
])
def test_part_d_claim_fails_when_its_theory_is_broken(monkeypatch, claim_id, name, replacement):
    monkeypatch.setattr(_part_d.theory, name, replacement)
    result = REGISTRY_D.get(claim_id).check(seed=0, backend=BACKEND)
    assert result.error is None, result.error
    assert not result.passed


def test_d3_fails_when_the_boundary_is_confused_with_the_phase_average(monkeypatch):
    """Predicting the phase average at the epoch boundary (the pitfall) must be caught."""
    real = _part_d.theory.weight_variance_epoch
    monkeypatch.setattr(_part_d.theory, "weight_variance_epoch",
                        lambda *a, position=None: real(*a))
    assert not REGISTRY_D.get("D3").check(seed=0, backend=BACKEND).passed


def test_d5_fails_without_a_flat_bulk(monkeypatch):
    """With the D1–D4 spectrum (trace dominated by stiff directions) D5's reading is false."""
    monkeypatch.setattr(_part_d, "_CACHE", {})
    real = _part_d.d_setting
    monkeypatch.setattr(_part_d, "d_setting", lambda ctx, spectrum="log_uniform":
                        real(ctx, "log_uniform"))
    result = REGISTRY_D.get("D5").check(seed=0, backend=BACKEND)
    assert result.error is None, result.error
    assert not result.passed


def test_setting_has_noise_covariance_proportional_to_the_hessian():
    from sgdnoise.verify._registry import RunContext

    for spectrum in _part_d.D_SPECTRA:
        st = _part_d.d_setting(RunContext(), spectrum)
        G = st["problem"].G
        Sigma1 = G.T @ G / st["N"]
        np.testing.assert_allclose(Sigma1, np.diag(st["lam"]) * st["kappa"], atol=1e-12)
        np.testing.assert_allclose(st["problem"].H, np.diag(st["lam"]), atol=1e-12)
