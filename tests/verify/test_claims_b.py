"""Part-B claims: each passes at quick scale, and fails when the theory it checks is broken."""

import json

import numpy as np
import pytest

from sgdnoise import theory
from sgdnoise.verify import _part_b
from sgdnoise.verify.claims import REGISTRY


@pytest.mark.parametrize("claim_id", ["B1", "B2", "B3", "B4"])
def test_part_b_claim_passes(claim_id, tmp_path):
    result = REGISTRY.get(claim_id).check(seed=0, backend="auto", out_dir=str(tmp_path))
    assert result.error is None, result.error
    assert result.passed, (result.measurement, result.values)
    json.dumps(result.to_dict(), allow_nan=False)
    if claim_id in ("B3", "B4"):
        figure = tmp_path / ("B3_escape.png" if claim_id == "B3" else "B4_gain.png")
        assert figure.stat().st_size > 10_000


def test_b1_fails_when_the_loss_formula_is_off_by_ten_percent(monkeypatch):
    real = theory.discrete_expected_loss_increase
    monkeypatch.setattr(_part_b.theory, "discrete_expected_loss_increase",
                        lambda *a, **k: 1.1 * np.asarray(real(*a, **k)))
    assert not REGISTRY.get("B1").check(seed=0, backend="auto").passed


def test_b2_fails_when_the_upper_bound_is_understated(monkeypatch):
    real = theory.gain_bounds
    monkeypatch.setattr(_part_b.theory, "gain_bounds",
                        lambda H: (real(H)[0], 0.9 * real(H)[1]))
    assert not REGISTRY.get("B2").check(seed=0, backend="numpy").passed


def _row(freq, indicator, n=1000):
    from sgdnoise.verify.stats import wilson_interval

    k = round(freq * n)
    return {"escaped": k, "runs": n, "frequency": k / n, "wilson_95": wilson_interval(k, n),
            "indicator": indicator}


def _rows(**override):
    rows = {"GD": _row(0.0, 0.0), "GLD const": _row(0.1, 1.1), "GLD diag": _row(0.15, 1.3),
            "GLD full (leading)": _row(0.6, 1.9), "GLD Hessian": _row(0.55, 1.8),
            "GLD eigvec1": _row(0.7, 2.0), "SGD (B=1, rescaled)": _row(0.6, 1.9)}
    rows.update(override)
    return rows


def test_b3_verdict_accepts_the_predicted_order():
    passed, discordant, _ = _part_b._b3_verdict(_rows())
    assert passed and not discordant


def test_b3_verdict_rejects_gd_escapes_and_reversed_order():
    assert not _part_b._b3_verdict(_rows(GD=_row(0.01, 0.0)))[0]
    passed, discordant, _ = _part_b._b3_verdict(_rows(**{"GLD diag": _row(0.9, 1.3)}))
    assert not passed and discordant


def test_b4_fails_for_isotropic_noise(monkeypatch):
    real = theory.gain_ratio
    monkeypatch.setattr(_part_b.theory, "gain_ratio",
                        lambda H, S: real(H, np.eye(H.shape[0])))
    assert not REGISTRY.get("B4").check(seed=0, backend="numpy").passed
