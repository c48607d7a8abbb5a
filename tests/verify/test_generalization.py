"""The generalization comparison of spec part B: noise samplers against the dense covariances of
``structured_covariance``, matched trace, Lanczos and flatness estimators, determinism, the
end-to-end run (JSON + PNG), the command line and invalid configurations."""

import json

import numpy as np
import pytest

from sgdnoise.sim.dynamics import minibatch_gradient_covariance, structured_covariance
from sgdnoise.sim.models import MLP
from sgdnoise.verify.generalization import (
    NOISE_KINDS,
    GeneralizationConfig,
    compare_noise,
    format_table,
    hutchinson_trace,
    lanczos_top,
    main,
    noise_factor,
    perturbed_loss_increase,
    sgd_noise_trace,
)

B = 4


@pytest.fixture(scope="module")
def tiny():
    """A 4-3-3 MLP with biases (D = 27) at a random point, its per-sample gradients, dense Σ̂, H."""
    rng = np.random.default_rng(7)
    model = MLP((4, 3, 3), activation="tanh", loss="cross_entropy", bias=True)
    x = rng.standard_normal((40, 4))
    y = rng.integers(0, 3, size=40)
    w = model.init(rng)
    G = model.per_sample_gradients(w, x, y)
    Sigma = minibatch_gradient_covariance(G, B)
    H = model.hessian(w, x, y)
    return model, w, x, y, G, Sigma, H


def _factor(kind, G, H, k=3, sigma2=None):
    v1 = None
    if kind == "eigvec1":
        # a full Krylov space (m = D) makes Lanczos exact
        v1 = lanczos_top(lambda v: H @ v, np.ones(H.shape[0]), num_iters=H.shape[0]).v
    return noise_factor(kind, G, B=B, k=k, sigma2=sigma2, v1=v1)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_factor_covariance_equals_structured_covariance(tiny, kind):
    _, _, _, _, G, Sigma, H = tiny
    t = float(np.trace(Sigma))
    sigma2 = 0.37 * t / G.shape[1] if kind == "const" else None
    fac = _factor(kind, G, H, k=3, sigma2=sigma2)
    expected = structured_covariance(kind, Sigma, H, k=3, trace=t, sigma2=sigma2)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(fac.covariance(), expected, rtol=0, atol=1e-10 * scale)


def test_leading_with_k_above_the_rank_keeps_the_nonzero_eigenpairs(tiny):
    # 5 samples: Σ̂ has rank <= 4 < k = 10, the remaining eigenvalues are 0 and get no weight
    _, _, _, _, G, _, H = tiny
    G5 = G[:5]
    Sigma5 = minibatch_gradient_covariance(G5, B)
    fac = noise_factor("leading", G5, B=B, k=10)
    expected = structured_covariance("leading", Sigma5, H, k=10, trace=float(np.trace(Sigma5)))
    np.testing.assert_allclose(fac.covariance(), expected, rtol=0,
                               atol=1e-10 * np.abs(expected).max())
    assert fac.U.shape[1] <= 4


@pytest.mark.parametrize("kind", ["diag", "leading"])
def test_monte_carlo_covariance_of_samples(tiny, kind):
    _, _, _, _, G, Sigma, H = tiny
    fac = _factor(kind, G, H)
    expected = structured_covariance(kind, Sigma, H, k=3, trace=float(np.trace(Sigma)))
    rng = np.random.default_rng(11)
    n = 20000
    xi = np.stack([fac.sample(rng) for _ in range(n)])
    emp = xi.T @ xi / n  # mean known to be 0
    # for a zero-mean Gaussian Var(ξ_i ξ_j) = Σ_ii Σ_jj + Σ_ij², so each entry of the empirical
    # covariance has standard error sqrt((Σ_ii Σ_jj + Σ_ij²)/n); 5 s.e. over 378 entries
    d = np.diag(expected)
    se = np.sqrt((np.outer(d, d) + expected**2) / n)
    assert np.all(np.abs(emp - expected) <= 5 * se + 1e-15)


@pytest.mark.parametrize("kind", ["dynamic", "diag", "leading", "eigvec1"])
def test_matched_trace_without_dense_matrices(kind):
    # digits-sized D: Tr Σ = Σ U² (or Σ std²) equals Tr Σ̂ = Σ_p ‖g_p − ḡ‖²/(NB)
    rng = np.random.default_rng(3)
    G = rng.standard_normal((60, 2410)) * rng.uniform(0.1, 2.0, size=2410)
    t = sgd_noise_trace(G, B)
    Gc = G - G.mean(axis=0)
    assert t == pytest.approx(np.sum(Gc**2) / (60 * B), rel=1e-12)
    fac = noise_factor(kind, G, B=B, k=5, v1=rng.standard_normal(2410))
    stored = np.sum(fac.std**2) if fac.std is not None else np.sum(fac.U**2)
    assert fac.trace == pytest.approx(t, rel=1e-10)
    assert stored == pytest.approx(t, rel=1e-10)


def test_sgd_noise_trace_matches_dense_covariance(tiny):
    _, _, _, _, G, Sigma, _ = tiny
    assert sgd_noise_trace(G, B) == pytest.approx(np.trace(Sigma), rel=1e-12)


def test_lanczos_matches_eigh_and_warm_start(tiny):
    model, w, x, y, _, _, H = tiny
    lam, V = np.linalg.eigh(H)
    hvp = lambda v: model.hvp(w, x, y, v)  # exact R-operator product
    full = lanczos_top(hvp, np.ones(H.shape[0]), num_iters=H.shape[0])
    assert full.lam == pytest.approx(lam[-1], rel=1e-9)
    assert abs(full.v @ V[:, -1]) == pytest.approx(1.0, abs=1e-8)
    warm = lanczos_top(hvp, V[:, -1], num_iters=2)
    assert warm.lam == pytest.approx(lam[-1], rel=1e-9)
    assert abs(warm.v @ V[:, -1]) == pytest.approx(1.0, abs=1e-8)


def test_hutchinson_exact_on_diagonal_and_unbiased():
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 2.0, size=50)
    est, se = hutchinson_trace(lambda v: d * v, 50, num_probes=5, rng=rng)
    assert est == pytest.approx(d.sum(), rel=1e-12)  # zᵀ diag(d) z = Σ d for z ∈ {±1}^D
    assert se == pytest.approx(0.0, abs=1e-10)
    A = rng.standard_normal((50, 50))
    A = A @ A.T / 50
    est, se = hutchinson_trace(lambda v: A @ v, 50, num_probes=400, rng=rng)
    # the estimate is a mean of 400 i.i.d. zᵀAz: within 4 of its standard errors
    assert abs(est - np.trace(A)) <= 4 * se


def test_perturbed_loss_increase_on_a_quadratic():
    rng = np.random.default_rng(1)
    A = np.diag(rng.uniform(0.0, 3.0, size=30))
    loss = lambda th: 0.5 * th @ A @ th
    mean, se = perturbed_loss_increase(loss, np.zeros(30), radius=0.5, num_perturbations=2000,
                                       rng=rng)
    # E[ρ²/2 uᵀAu] = ρ² Tr A / (2D) for u uniform on the sphere; the mean of 2000 i.i.d. values
    # is within 4 standard errors of it
    assert abs(mean - 0.25 * np.trace(A) / 60) <= 4 * se


TINY = {"hidden": (6,), "train_size": 60, "B": 5, "num_steps": 6, "k": 3, "eigvec_iters": 2,
        "warm_max_steps": 100, "warm_loss": 0.3, "lanczos_iters": 6, "num_probes": 3,
        "num_perturbations": 3, "eval_every": 3, "num_seeds": 2}


def test_end_to_end_writes_json_and_png_and_is_deterministic(tmp_path):
    config = GeneralizationConfig(**TINY)
    out = compare_noise(config, out_dir=tmp_path)
    again = compare_noise(config)
    assert (tmp_path / "generalization.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "generalization.json").read_text())
    assert saved["seed"] == 0
    assert "versions" in saved["provenance"]
    assert list(saved["summary"]) == list(config.variants)
    for name in config.variants:
        for r in range(2):
            a = out["replicas"][r]["variants"][name]
            b = again["replicas"][r]["variants"][name]
            for metric in ("train_loss", "test_accuracy", "top_eigenvalue", "trace_H",
                           "perturbed_loss_increase"):
                assert a[metric] == b[metric], (name, metric)
        assert saved["summary"][name]["test_accuracy"]["se"] is not None
    # every variant starts from the same warm start; the noisy ones move away from GD's path
    gd = out["replicas"][0]["variants"]["gd"]
    assert out["replicas"][0]["variants"]["sgd"]["train_loss"] != gd["train_loss"]
    assert out["replicas"][0]["variants"]["leading"]["noise_trace_mean"] > 0
    other = compare_noise(GeneralizationConfig(**{**TINY, "seed": 1, "num_seeds": 1}))
    assert other["replicas"][0]["variants"]["sgd"]["train_loss"] != \
        out["replicas"][0]["variants"]["sgd"]["train_loss"]
    assert "eigvec1" in format_table(out)


def test_command_line_prints_table(tmp_path, capsys):
    rc = main(["--out", str(tmp_path), "--steps", "2", "--train-size", "40",
               "--variants", "gd", "sgd", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "sgd" in text and "test acc" in text
    assert (tmp_path / "generalization.json").exists()
    assert main(["--out", str(tmp_path), "--train-size", "1"]) == 2


def test_bar_counts_the_variant_runs_where_asked_and_keeps_the_lines(tmp_path, capsys):
    config = GeneralizationConfig(**{**TINY, "num_seeds": 1, "variants": ("gd", "sgd")})
    lines = []
    compare_noise(config, progress=lines.append, bar=True)
    err = capsys.readouterr().err
    assert "generalization" in err and "0/2 [" in err and err.endswith("\r")
    assert len(lines) == 3                                   # warm start + one per variant
    compare_noise(config, progress=lines.append)            # default: only on a terminal
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("field", "value"), [
    ("hidden", (0,)),
    ("train_size", 1),
    ("train_size", 1790),
    ("corrupt_labels", -0.1),
    ("corrupt_labels", 1.0),
    ("eta", 0.0),
    ("B", 0),
    ("B", 501),
    ("num_steps", -1),
    ("variants", ("gd", "adam")),
    ("variants", ()),
    ("variants", ("gd", "gd")),
    ("k", 0),
    ("eigvec_iters", 0),
    ("warm_eta", -1.0),
    ("warm_loss", 0.0),
    ("lanczos_iters", 1),
    ("num_probes", 1),
    ("radius", 0.0),
    ("num_perturbations", 1),
    ("num_seeds", 0),
    ("seed", -1),
    ("bias", 1),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GeneralizationConfig(**{field: value})


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"kind": "hessian"}, "kind"),
    ({"kind": "const"}, "sigma2"),
    ({"kind": "leading"}, "k"),
    ({"kind": "eigvec1"}, "v1"),
    ({"kind": "diag", "B": 0}, "B"),
])
def test_bad_noise_arguments_name_the_argument(kwargs, name):
    args = {"B": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        noise_factor(args.pop("kind"), np.ones((3, 4)), **args)


def test_corrupted_labels_change_exactly_the_requested_fraction():
    from sgdnoise.verify.generalization import split_digits

    x, y, xt, yt = split_digits(400, seed=3)
    xc, yc, xtc, ytc = split_digits(400, seed=3, corrupt_labels=0.25)
    np.testing.assert_array_equal(x, xc)                 # same split, same inputs
    np.testing.assert_array_equal(yt, ytc)               # test labels stay clean
    changed = yc != y
    assert changed.sum() == 100                          # round(0.25 · 400), each to another class
    assert set(np.unique(yc)) <= set(range(10))
    np.testing.assert_array_equal(split_digits(400, seed=3, corrupt_labels=0.25)[1], yc)
