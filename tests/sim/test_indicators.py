"""Part-B helpers: the papers' variant names, the toy's sharp minimum and the indicators Tr(HΣ)."""

import numpy as np
import pytest

from sgdnoise.sim.dynamics import (
    PAPER_VARIANTS,
    LinearRegressionProblem,
    ModelProblem,
    NoiseModel,
    QuadraticProblem,
    Toy2DProblem,
    gd,
    indicators,
    langevin,
    minibatch_scale,
    paper_variant,
    sgd,
    simulate,
    structured_covariance,
    toy_sharp_minimum,
)
from sgdnoise.sim.models import MLP, Toy2D, toy_data

# ------------------------------------------------------------------------------ paper names


@pytest.mark.parametrize(("name", "expected"), [
    ("GD", gd()),
    ("SGD", sgd(1)),
    ("GLD const", langevin("const")),
    ("GLD dynamic", langevin("dynamic")),
    ("GLD diag", langevin("diag")),
    ("GLD leading", langevin("full")),
    ("GLD Hessian", langevin("hessian")),
    ("GLD 1st eigvec", langevin("eigvec1")),
])
def test_each_paper_name_is_the_documented_noise_model(name, expected):
    assert name in PAPER_VARIANTS
    assert paper_variant(name) == expected


@pytest.mark.parametrize("spelling", ["gld_leading", "GLD-Leading", "  gld   lead ", "gld_lead"])
def test_spellings_of_the_paper_and_its_code_are_accepted(spelling):
    assert paper_variant(spelling) == langevin("full")


@pytest.mark.parametrize("spelling", ["GLD 1st eigvec(H)", "GLD 1st eigven(H)", "gld_hessMax",
                                      "gld eigvec1"])
def test_the_top_eigenvector_variant_has_its_code_names(spelling):
    assert paper_variant(spelling) == langevin("eigvec1")


def test_gld_leading_keeps_all_eigenpairs_unless_told_and_then_k():
    assert paper_variant("GLD leading") != langevin("leading", k=1)
    assert paper_variant("GLD leading", k=20, B=4) == langevin("leading", k=20, B=4)
    assert paper_variant("GLD Hessian", k=2) == langevin("hessian", k=2)
    assert paper_variant("SGD", B=8, scheme="iid") == sgd(8, scheme="iid")
    assert paper_variant("GLD const", sigma2=0.5) == langevin("const", sigma2=0.5)


@pytest.mark.parametrize(("args", "kwargs", "name"), [
    (("GLD leader",), {}, "name"),
    ((3,), {}, "name"),
    (("GLD diag",), {"k": 1}, "k"),
    (("GD",), {"sigma2": 1.0}, "sigma2"),
    (("GLD leading",), {"k": 0}, "k"),
    (("SGD",), {"B": 0}, "B"),
])
def test_bad_paper_variants_name_the_argument(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        paper_variant(*args, **kwargs)


def test_unknown_paper_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="GLD 1st eigvec"):
        paper_variant("GLD leader")


# ------------------------------------------------------------------------- the sharp minimum


def test_sharp_minimum_is_the_closed_form_and_a_stationary_point():
    for seed in range(2):
        x = toy_data(seed, N=100)
        w = toy_sharp_minimum(x)
        np.testing.assert_allclose(w, 1.0 + x.mean(axis=0), rtol=0, atol=1e-12)
        model = Toy2D(x)
        assert np.linalg.norm(model.gradient(w)) < 1e-10
        np.testing.assert_allclose(model.hessian(w), model.per_sample_hessians(w)[0])  # sharp
        assert np.array_equal(Toy2DProblem(x).sharp_minimum(), w)
        assert np.array_equal(toy_sharp_minimum(model), w)


def test_sharp_minimum_is_gd_from_one_one():
    x = toy_data(3, N=50)
    model, w = Toy2D(x), np.ones(2)
    for _ in range(4000):
        w = w - 0.005 * model.gradient(w)
    assert np.array_equal(toy_sharp_minimum(x), w)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"eta": 0.0}, "eta"), ({"eta": 0.011}, "eta"), ({"num_steps": 0}, "num_steps"),
    ({"num_steps": 3}, "num_steps"), ({"gradient_tol": -1.0}, "gradient_tol"),
])
def test_sharp_minimum_rejects_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        toy_sharp_minimum(toy_data(0, N=20), **kwargs)


def test_sharp_minimum_rejects_bad_data():
    with pytest.raises(ValueError, match="x"):
        toy_sharp_minimum(np.zeros((5, 3)))


# ------------------------------------------------------------------------------- indicators


def _brute_force(G, h, B=1, scheme="replacement"):
    """(H, Σ̂) from per-sample gradients and Hessians, looping over the samples."""
    N = G.shape[0]
    g_mean = sum(G) / N
    Sigma1 = sum(np.outer(g - g_mean, g - g_mean) for g in G) / N
    return sum(h) / N, minibatch_scale(N, B, scheme) * Sigma1


def _mlp_problem():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, 3)), rng.integers(0, 2, 12)
    model = MLP((3, 4, 2), activation="tanh", loss="cross_entropy", bias=True)
    w = model.init(rng)
    return ModelProblem(model, x, y), w, model.per_sample_gradients(w, x, y), \
        model.per_sample_hessians(w, x, y)


def _cases():
    x = toy_data(1, N=40)
    w = np.array([0.9, 1.05])
    toy = Toy2D(x)
    yield Toy2DProblem(x), w, toy.per_sample_gradients(w), toy.per_sample_hessians(w)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((30, 3)), rng.standard_normal(30)
    th = rng.standard_normal(3)
    G = (X @ th - y)[:, None] * X
    yield LinearRegressionProblem(X, y), th, G, np.einsum("pi,pj->pij", X, X)
    Hq = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.1]])
    Gq = rng.standard_normal((9, 3))
    th = rng.standard_normal(3)
    Gfull = th @ Hq + (Gq - Gq.mean(axis=0))
    yield QuadraticProblem(Hq, G=Gq), th, Gfull, np.broadcast_to(Hq, (9, 3, 3))
    yield _mlp_problem()


KINDS_ALL = ["gd", "sgd", "const", "dynamic", "diag", "full", "leading", "hessian", "eigvec1"]


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("trace", [None, 0.01])
@pytest.mark.parametrize(("B", "scheme"), [(1, "replacement"), (4, "iid")])
def test_indicators_match_a_brute_force_reference(case, trace, B, scheme):
    problem, theta, G, h = list(_cases())[case]
    H, Sigma_hat = _brute_force(G, h, B, scheme)
    ind = indicators(problem, KINDS_ALL, trace, at=theta, B=B, scheme=scheme, k=1)
    assert list(ind) == KINDS_ALL
    scale = np.abs(H).max() * max(np.trace(Sigma_hat), trace or 0.0)
    t = np.trace(Sigma_hat) if trace is None else trace
    for kind in KINDS_ALL:
        if kind == "gd":
            S = np.zeros_like(H)
        elif kind == "sgd":
            S = Sigma_hat if trace is None else Sigma_hat * trace / np.trace(Sigma_hat)
        else:
            S = structured_covariance(kind, Sigma_hat, H, trace=t,
                                      k=1 if kind in ("leading", "hessian") else None)
        np.testing.assert_allclose(ind.covariance[kind], S, rtol=1e-10,
                                   atol=1e-12 * max(t, 1e-300))
        assert abs(ind[kind] - float(np.sum(H * S))) <= 1e-10 * scale
        if kind != "gd":   # matched magnitude
            assert np.trace(ind.covariance[kind]) == pytest.approx(t, rel=1e-10)
    np.testing.assert_allclose(ind.H, H, rtol=1e-10, atol=1e-12 * np.abs(H).max())


def test_paper_names_and_noise_models_key_the_result():
    problem = Toy2DProblem(toy_data(0, N=100))
    at = toy_sharp_minimum(problem)
    ind = indicators(problem, ["GLD leading", langevin("leading", k=1), "GLD 1st eigvec"],
                     trace=0.01, at=at)
    assert list(ind) == ["GLD leading", "langevin(leading, k=1)", "GLD 1st eigvec"]
    assert ind.noise["GLD leading"] == langevin("full")
    # the paper's "leading" (all eigenpairs) is not the top-1 variant, and ranks below it
    assert ind["GLD leading"] == pytest.approx(indicators(problem, ["full"], 0.01, at=at)["full"],
                                               rel=1e-15)
    assert ind["GLD leading"] < ind["langevin(leading, k=1)"] < ind["GLD 1st eigvec"]
    assert ind.ranked() == ["GLD leading", "langevin(leading, k=1)", "GLD 1st eigvec"]
    assert dict(ind) == ind.indicator and len(ind) == 3


def test_fixed_and_const_with_sigma2():
    H = np.diag([4.0, 1.0])
    C = np.array([[0.3, 0.1], [0.1, 0.2]])
    ind = indicators(QuadraticProblem(H), [langevin("fixed", covariance=C), "const"],
                     at=np.zeros(2), sigma2=0.5)
    assert ind["langevin(fixed)"] == pytest.approx(np.trace(H @ C), rel=1e-15)
    assert ind["const"] == pytest.approx(0.5 * 5.0, rel=1e-15)
    assert ind.Sigma1 is None
    # without samples, the Hessian-based kinds need an explicit trace
    ind = indicators(QuadraticProblem(H), ["hessian", "eigvec1", "dynamic"], 2.0, at=[1.0, 1.0])
    assert ind["eigvec1"] == pytest.approx(8.0) and ind["dynamic"] == pytest.approx(5.0)
    assert ind["hessian"] == pytest.approx(2.0 * 17.0 / 5.0)


def test_indicator_is_the_loss_increase_rate_of_one_simulated_step():
    """The covariance is the one the engine uses: one parameter-form step from the point has
    Cov(θ₁) = S, so E[(θ₁ − m)ᵀ H (θ₁ − m)] = Tr(HS) (m the GD step), within 5 s.e."""
    problem = Toy2DProblem(toy_data(0, N=100))
    at = np.array([0.97, 1.02])
    R = 8000
    for kind in ("diag", "full", "hessian", "eigvec1"):
        ind = indicators(problem, [kind], 0.01, at=at)
        run = simulate(problem, langevin(kind), eta=0.005, num_steps=1, num_replicas=R, seed=11,
                       theta0=at, form="parameter", noise_trace=0.01)
        mean = at - 0.005 * Toy2D(problem.x).gradient(at)
        e = np.asarray(run.theta) - mean
        q = np.einsum("ri,ij,rj->r", e, ind.H, e)
        assert abs(q.mean() - ind[kind]) <= 5 * q.std(ddof=1) / np.sqrt(R), kind


@pytest.mark.parametrize(("kinds", "kwargs", "match"), [
    (["full", "full"], {}, "more than once"),
    (["fulll"], {}, "neither a kind"),
    (["fixed"], {}, "fixed"),
    ([], {}, "at least one"),
    ([3], {}, "kinds"),
    (["full"], {"at": [1.0, 1.0, 1.0]}, "at"),
    (["full"], {"at": [np.nan, 1.0]}, "at"),
    (["full"], {"trace": -1.0}, "trace"),
    (["sgd"], {"B": 200, "scheme": "iid"}, "B"),
])
def test_bad_requests_name_the_argument(kinds, kwargs, match):
    kwargs = {"at": [1.0, 1.0], **kwargs}
    with pytest.raises(ValueError, match=match):
        indicators(Toy2DProblem(toy_data(0, N=100)), kinds, **kwargs)


def test_problems_lacking_what_a_variant_needs_are_refused():
    with pytest.raises(ValueError, match="per-sample gradients"):
        indicators(QuadraticProblem(np.eye(2)), ["diag"], at=np.zeros(2))
    with pytest.raises(ValueError, match="per-sample gradients"):
        indicators(QuadraticProblem(np.eye(2)), ["hessian"], at=np.zeros(2))

    class NoHessian:
        num_params = 2

        def per_sample_gradients(self, w, x, y):
            return x * w

        def loss(self, w, x, y):
            return 0.0

    with pytest.raises(ValueError, match="hessian"):
        indicators(ModelProblem(NoHessian(), np.ones((3, 2)), np.ones(3)), ["full"],
                   at=np.zeros(2))
    with pytest.raises(ValueError, match="problem"):
        indicators(object(), ["full"], at=np.zeros(2))


def test_a_single_name_is_a_list_of_one():
    problem = Toy2DProblem(toy_data(0, N=100))
    assert list(indicators(problem, "GLD diag", 0.01, at=np.ones(2))) == ["GLD diag"]
    assert isinstance(indicators(problem, sgd(2), at=np.ones(2)).noise["sgd(B=2, replacement)"],
                      NoiseModel)
