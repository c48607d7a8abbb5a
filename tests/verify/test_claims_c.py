"""Part-C claims: each passes at quick scale, writes its figure, and fails with broken theory."""

import json

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.verify import _part_c
from sgdnoise.verify._registry import Registry

REG = Registry(_part_c.CLAIMS_C)
FIGURES = {"C1": "C1_noise_trace.png", "C2": "C2_stationary.png", "C3": "C3_escape.png",
           "C4": "C4_exponent.png"}


@pytest.mark.parametrize("claim_id", ["C1", "C2", "C3", "C4"])
def test_part_c_claim_passes(claim_id, tmp_path):
    result = REG.get(claim_id).check(seed=0, backend="auto", out_dir=str(tmp_path))
    assert result.error is None, result.error
    assert result.passed, (result.measurement, result.tolerance)
    json.dumps(result.to_dict(), allow_nan=False)
    assert (tmp_path / FIGURES[claim_id]).stat().st_size > 10_000


def test_c1_fails_when_the_decoupling_is_taken_as_exact(monkeypatch):
    real = theory.noise_trace_linear_regression

    def decoupled_only(H, d, s2):
        r = real(H, d, s2)
        return r._replace(exact=r.decoupled)

    monkeypatch.setattr(_part_c.theory, "noise_trace_linear_regression", decoupled_only)
    assert not REG.get("C1").check(seed=0, backend="auto").passed


def test_c2_fails_with_the_stratonovich_exponent(monkeypatch):
    def stratonovich(L, theta, *, B, eta, h_star):     # L^-(φ - 1/2): the other reading
        p = np.asarray(L) ** -(float(theory.phi(B=B, eta=eta, h_star=h_star)) - 0.5)
        return p / np.trapezoid(p, theta)

    monkeypatch.setattr(_part_c.theory, "stationary_density_1d", stratonovich)
    assert not REG.get("C2").check(seed=0, backend="auto").passed


def test_c3_fails_when_the_exponent_is_off_by_a_half(monkeypatch):
    real = theory.escape_exponent
    monkeypatch.setattr(_part_c.theory, "escape_exponent", lambda **k: real(**k) + 0.5)
    assert not REG.get("C3").check(seed=0, backend="auto").passed


def test_c4_fails_when_the_exponent_does_not_depend_on_n(monkeypatch):
    real = theory.escape_exponent
    monkeypatch.setattr(_part_c.theory, "escape_exponent", lambda **k: real(**{**k, "n": 1}))
    assert not REG.get("C4").check(seed=0, backend="auto").passed


def test_weighted_slope_recovers_a_line():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    s, se, a = _part_c.weighted_slope(x, 2.0 - 0.5 * x, np.full(4, 0.1))
    assert s == pytest.approx(-0.5) and a == pytest.approx(2.0)
    assert se == pytest.approx(0.1 / np.sqrt(5.0))
