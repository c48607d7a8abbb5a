"""Network analysis on the dense and the operator path: same numbers where both run.

The operator path computes the top-k eigenpairs of H to a relative residual of 1e-10 here; the
eigenvalues then agree with LAPACK's to about that tolerance times the gap-free bound
‖r‖ (Weyl), and M_ii, C_ii (quadratic forms on nearly equal vectors, error quadratic in the
vector error) to well below it: ``RTOL`` = 1e-7 leaves room for clustered eigenvalues.
"""

import functools

import numpy as np
import pytest

from sgdnoise.cli import build_parser
from sgdnoise.sim import datasets
from sgdnoise.verify import _part_a_networks, networks
from sgdnoise.verify.claims import REGISTRY
from sgdnoise.verify.table1 import Table1Config

RTOL = 1e-7
TOP = 20


@functools.cache
def _net(loss="cross_entropy"):
    d = datasets.digits()
    x, y = d.x[:240], d.y[:240]
    return networks.train_paper_mlp(x, y, hidden=(6, 5), loss=loss, num_epochs=3, seed=1)


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("layer", [0, 1, "all"])
def test_operator_path_gives_the_dense_numbers(layer):
    net = _net()
    kw = {"top": TOP, "protocol": "top", "with_awd": False, "num_baseline": 0, "rng": 3,
          "tol": 1e-10}
    dense = networks.analyse_layer(net, layer, method="dense", **kw)
    op = networks.analyse_layer(net, layer, method="operator", num_eigenpairs=TOP + 5, **kw)
    assert (dense.method, op.method) == ("dense", "operator")
    assert dense.D == op.D == (net.model.num_params if layer == "all"
                               else int(np.prod(net.model.layer_shapes[layer])))
    k = op.lam.size
    assert k == TOP + 5 and op.residual_norms.shape == (k,)
    assert np.all(op.residual_norms <= 1e-10 * np.abs(op.lam).max())
    _close(op.lam, dense.lam[:k])
    _close(op.M_ii[:TOP], dense.M_ii[:TOP])
    _close(op.C_ii[:TOP], dense.C_ii[:TOP])
    for name in ("fit_emp", "fit_awd"):
        assert abs(getattr(op, name).slope - getattr(dense, name).slope) < 1e-6


def test_whole_network_dense_path_is_the_materialised_operators():
    net = _net("softmax_mse")
    an = networks.analyse_layer(net, "all", with_awd=False, num_baseline=0)
    ops = net.model.curvature_operators(net.w, net.x, net.y)
    H = ops.H.to_dense()
    assert an.D == H.shape[0] and an.lam.size == an.D
    _close(an.lam, np.sort(np.linalg.eigvalsh(H))[::-1], rtol=1e-10)
    assert np.isfinite(an.residual_M) and np.isfinite(an.commutation.ratio)


def test_auto_method_switches_at_the_threshold(monkeypatch):
    net = _net()
    D1 = int(np.prod(net.model.layer_shapes[1]))
    monkeypatch.setattr(networks, "DENSE_MAX_DIM", D1 - 1)
    an = networks.analyse_layer(net, 1, top=8, protocol="top", with_awd=False, num_baseline=0,
                                with_residuals=False)
    assert an.method == "operator" and an.lam.size == 8 and np.isnan(an.residual_M)
    monkeypatch.setattr(networks, "DENSE_MAX_DIM", D1)
    assert networks.analyse_layer(net, 1, with_awd=False, num_baseline=0).method == "dense"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"layer": 1, "method": "operator"}, "protocol must be 'top'"),
    ({"layer": "all", "with_awd": True}, "with_awd"),
    ({"layer": 1, "method": "operator", "protocol": "top", "top": 5, "with_awd": True},
     "with_awd"),
    ({"layer": 1, "method": "sideways"}, "method"),
    ({"layer": 9}, "layer"),
    ({"layer": 1, "method": "operator", "protocol": "top", "top": 30, "num_eigenpairs": 10,
      "with_awd": False}, "top"),
])
def test_invalid_analysis_arguments(kwargs, match):
    kwargs = {"with_awd": False, **kwargs}
    layer = kwargs.pop("layer")
    with pytest.raises(ValueError, match=match):
        networks.analyse_layer(_net(), layer, **kwargs)


def test_layer_argument_of_verify_and_table1():
    parser = build_parser()
    assert parser.parse_args(["verify", "--layer", "all"]).layer == "all"
    assert parser.parse_args(["verify", "--layer", "2"]).layer == 2
    assert parser.parse_args(["verify"]).layer is None
    assert parser.parse_args(["table1", "--root", "."]).layer == 1
    assert parser.parse_args(["table1", "--root", ".", "--layer", "all"]).layer == "all"
    with pytest.raises(SystemExit):
        parser.parse_args(["verify", "--layer", "first"])
    assert Table1Config(layer="all").layer == "all"
    with pytest.raises(ValueError, match="layer"):
        Table1Config(layer=3)
    with pytest.raises(ValueError, match="layer"):
        REGISTRY.get("A1").check(layer="first")


@pytest.mark.parametrize(("layer", "expected"), [("all", {"all"}), (0, {0})])
def test_a6_analyses_the_layers_asked_for(monkeypatch, layer, expected):
    def small(ctx, name, settings, loss, seed):
        return _net(loss)

    monkeypatch.setattr(_part_a_networks, "_train", small)
    result = REGISTRY.get("A6").check(seed=0, backend="numpy", layer=layer)
    assert result.error is None, result.error
    rows = result.values["rows"]
    assert {r["layer"] for r in rows} == expected
    assert {r["loss"] for r in rows} == {"cross_entropy", "softmax_mse"}
    assert all(np.isfinite(r["gamma_emp"]) for r in rows)


def test_a6_full_scale_reports_the_whole_network(monkeypatch):
    monkeypatch.setattr(_part_a_networks, "_train",
                        lambda ctx, name, settings, loss, seed: _net(loss))
    monkeypatch.setattr(_part_a_networks, "_runs", lambda ctx: [("digits", {})])
    monkeypatch.setattr(_part_a_networks, "WHOLE_NETWORK_WINDOWS", (10, 30))
    result = REGISTRY.get("A6").check(seed=0, backend="numpy", scale="full")
    assert result.error is None, result.error
    whole = result.values["whole_network"]
    assert {(r["loss"], r["window"]) for r in whole} == {
        (loss, w) for loss in ("cross_entropy", "softmax_mse") for w in (10, 30)}
    assert all(r["seeds"] == 4 and r["D"] == _net().model.num_params for r in whole)
    assert "whole digits network" in result.measurement
    # every seed here is the same network: the rows are the fits of its top window
    an = networks.analyse_layer(_net(), "all", method="dense", protocol="top", top=10,
                                with_awd=False, num_baseline=0)
    row = next(r for r in whole if r["loss"] == "cross_entropy" and r["window"] == 10)
    assert abs(row["gamma_emp"] - an.fit_emp.slope) < 1e-6 and row["gamma_emp_sd"] < 1e-6
    assert abs(row["gamma_awd"] - an.fit_awd.slope) < 1e-6


def _write_idx(path, array):
    import struct

    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.tobytes())


def test_table1_whole_network_uses_the_operators(tmp_path):
    import json

    from sgdnoise.cli import main

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    images = rng.integers(0, 256, size=(200, 28, 28))
    images[:, :4, :4] = labels[:, None, None] * 25
    _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    out = tmp_path / "out"
    code = main(["table1", "--root", str(tmp_path), "--classes", "3", "--samples-per-class", "20",
                 "--seeds", "1", "--epochs", "2", "--top", "20", "--hidden", "8", "8",
                 "--losses", "cross_entropy", "--layer", "all", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "table1.json").read_text())
    assert data["provenance"]["config"]["layer"] == "all"
    assert [r["loss"] for r in data["rows"]] == ["cross_entropy"]
    assert np.isfinite(data["rows"][0]["gamma_emp"])
