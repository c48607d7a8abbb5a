"""The replica engine's numpy reference: structured covariances, the minibatch covariance against
enumeration, the step loop against a brute-force per-replica loop, statistics of the noise,
recording, first passage, moments, divergence, persistence and input validation.

Statistical tolerances (fixed seeds): an estimate is compared with its exact value in units of
its standard error (SE) and accepted at |z| ≤ 5.  For a zero-mean Gaussian vector with
covariance C, the sample second moment (1/R)Σ x_i x_j has SE √((C_ii C_jj + C_ij²)/R).
"""

import itertools
import json
import math

import numpy as np
import pytest

from sgdnoise.sim import philox
from sgdnoise.sim.dynamics import (
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    ModelProblem,
    Moments,
    Momentum,
    NoiseLags,
    QuadraticProblem,
    Record,
    ReplicaRun,
    Toy2DProblem,
    gd,
    langevin,
    minibatch_gradient_covariance,
    minibatch_scale,
    sgd,
    simulate,
    structured_covariance,
)
from sgdnoise.sim.models import LinearRegression, Toy2D, toy_data
from sgdnoise.sim.training import DivergenceError

Z_MAX = 5.0
KINDS_SCALED = ("dynamic", "diag", "full", "leading", "hessian", "eigvec1")


def _random_psd(rng, D, rank=None):
    X = rng.standard_normal((D, rank or D))
    return X @ X.T


# ------------------------------------------------------------------- structured covariances
def test_structured_covariances_have_the_target_trace_and_are_psd():
    rng = np.random.default_rng(0)
    for D in (1, 2, 5):
        Q = np.linalg.qr(rng.standard_normal((D, D)))[0]
        Sigma, H = _random_psd(rng, D), (Q * np.linspace(2.0, -0.5, D)) @ Q.T   # H indefinite
        for kind in KINDS_SCALED:
            for k in (None, 1, D):
                if k is not None and kind not in ("leading", "hessian"):
                    continue
                S = structured_covariance(kind, Sigma, H, k=k, trace=0.7)
                assert np.trace(S) == pytest.approx(0.7, rel=1e-12)
                np.testing.assert_allclose(S, S.T, atol=1e-15)
                assert np.linalg.eigvalsh(S).min() > -1e-12
        # default trace: Tr Σ (matched magnitude)
        for kind in KINDS_SCALED:
            S = structured_covariance(kind, Sigma, H)
            assert np.trace(S) == pytest.approx(np.trace(Sigma), rel=1e-12)


def test_structured_covariance_structures():
    rng = np.random.default_rng(1)
    D = 4
    Sigma, H = _random_psd(rng, D), _random_psd(rng, D)
    lam_s, V_s = np.linalg.eigh(Sigma)
    lam_h, V_h = np.linalg.eigh(H)
    t = 2.5
    np.testing.assert_allclose(structured_covariance("dynamic", Sigma, trace=t), t / D * np.eye(D))
    np.testing.assert_allclose(structured_covariance("const", Sigma, sigma2=0.3), 0.3 * np.eye(D))
    np.testing.assert_allclose(structured_covariance("const", Sigma),
                               np.trace(Sigma) / D * np.eye(D))
    d = np.diag(Sigma)
    np.testing.assert_allclose(structured_covariance("diag", Sigma, trace=t),
                               np.diag(d * t / d.sum()))
    np.testing.assert_allclose(structured_covariance("diag", Sigma), np.diag(d), rtol=1e-14)
    np.testing.assert_allclose(structured_covariance("full", Sigma), Sigma, rtol=1e-12, atol=1e-12)
    top2 = (V_s[:, 2:] * lam_s[2:]) @ V_s[:, 2:].T
    np.testing.assert_allclose(structured_covariance("leading", Sigma, k=2, trace=t),
                               top2 * t / lam_s[2:].sum(), rtol=1e-12, atol=1e-12)
    top1h = (V_h[:, 3:] * lam_h[3:]) @ V_h[:, 3:].T
    np.testing.assert_allclose(structured_covariance("hessian", Sigma, H, k=1, trace=t),
                               top1h * t / lam_h[3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(structured_covariance("hessian", Sigma, H), H * np.trace(Sigma)
                               / np.trace(H), rtol=1e-12, atol=1e-12)
    v1 = V_h[:, -1]
    np.testing.assert_allclose(structured_covariance("eigvec1", None, H, trace=t),
                               t * np.outer(v1, v1), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(structured_covariance("fixed", Sigma), Sigma)


def test_structured_covariance_ties_zero_and_stacks():
    # a tie at the top-k cut is shared evenly: H = 2I, k = 1 gives (t/2) I, not one eigenvector
    np.testing.assert_allclose(structured_covariance("eigvec1", None, 2 * np.eye(2), trace=1.0),
                               0.5 * np.eye(2), atol=1e-15)
    np.testing.assert_allclose(structured_covariance("hessian", None, np.diag([3.0, 3.0, 1.0]),
                                                     k=1, trace=1.0),
                               np.diag([0.5, 0.5, 0.0]), atol=1e-15)
    # negative curvature is clipped; an all-negative H gives no noise
    np.testing.assert_allclose(structured_covariance("hessian", None, -np.eye(2), trace=1.0),
                               np.zeros((2, 2)))
    np.testing.assert_allclose(structured_covariance("diag", np.zeros((3, 3)), trace=1.0),
                               np.zeros((3, 3)))
    # rank-deficient Σ: PSD with exact zero eigenvalues
    u = np.array([1.0, 2.0, 2.0]) / 3
    S = structured_covariance("full", np.outer(u, u), trace=3.0)
    np.testing.assert_allclose(S, 3 * np.outer(u, u), atol=1e-14)
    # leading axes are kept
    rng = np.random.default_rng(2)
    stack = np.stack([_random_psd(rng, 3) for _ in range(4)])
    Hs = np.stack([_random_psd(rng, 3) for _ in range(4)])
    out = structured_covariance("hessian", stack, Hs, k=2)
    for i in range(4):
        np.testing.assert_allclose(out[i], structured_covariance("hessian", stack[i], Hs[i], k=2),
                                   rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- minibatch covariance (Σ̂)
def _enumerated_covariance(G, batches):
    means = np.array([G[list(b)].mean(axis=0) for b in batches])
    centred = means - means.mean(axis=0)
    return centred.T @ centred / len(means)


@pytest.mark.parametrize("B", [1, 2, 3])
def test_minibatch_covariance_equals_enumeration_over_all_batches(B):
    """With replacement: all N^B ordered batches; B distinct samples: all subsets; reshuffling:
    every position of every permutation.  The covariance of the batch mean is Σ̂ exactly."""
    G = np.random.default_rng(3).standard_normal((5, 2)) * [1.0, 3.0] + [0.5, -1.0]
    N = G.shape[0]
    rep = _enumerated_covariance(G, itertools.product(range(N), repeat=B))
    np.testing.assert_allclose(minibatch_gradient_covariance(G, B), rep, rtol=1e-12, atol=1e-14)
    iid = _enumerated_covariance(G, itertools.combinations(range(N), B))
    np.testing.assert_allclose(minibatch_gradient_covariance(G, B, scheme="iid"), iid,
                               rtol=1e-12, atol=1e-14)
    perms = [p[m * B:(m + 1) * B] for p in itertools.permutations(range(N))
             for m in range(N // B)]
    resh = _enumerated_covariance(G, perms)
    for scheme in ("reshuffle", "shuffle_once"):
        np.testing.assert_allclose(minibatch_gradient_covariance(G, B, scheme=scheme), resh,
                                   rtol=1e-12, atol=1e-14)


def test_minibatch_scale():
    assert minibatch_scale(10, 4) == 0.25
    assert minibatch_scale(10, 4, "iid") == pytest.approx(6 / 36)
    assert minibatch_scale(10, 10, "reshuffle") == 0.0
    assert minibatch_scale(1, 1, "iid") == 0.0
    with pytest.raises(ValueError, match="B"):
        minibatch_scale(3, 4, "iid")


# ------------------------------------------------------------ brute-force reference loops
def _batch(scheme, seed, r, k, B, N):
    if scheme == "replacement":
        return philox.integers(seed, r, philox.BATCH, k * B, B, N)
    if scheme == "iid":
        return philox.sample_without_replacement(seed, r, philox.BATCH, k * B, N, B)
    M = N // B
    e = k // M if scheme == "reshuffle" else 0
    perm = philox.permutation(seed, r, philox.PERMUTATION, e * (N - 1), N)
    return perm[(k % M) * B:(k % M + 1) * B]


def _sqrtm(S):
    """Symmetric PSD square root.  Eigenvalues at round-off level (a rank-deficient S rebuilt
    from its eigenpairs) are zeroed: √(1e-19) = 3e-10 would otherwise pollute the reference."""
    lam, V = np.linalg.eigh(S)
    lam = np.where(lam > 1e-13 * max(lam.max(), 0.0), lam, 0.0)
    return (V * np.sqrt(lam)) @ V.T


def _reference(model, noise, *, eta, num_steps, seed, r, theta0, form="gradient",
               noise_trace=None, beta=0.0, style="heavy_ball"):
    """One replica, one step at a time, from the models' own per-sample methods."""
    G0 = model.per_sample_gradients(theta0)
    N, D = G0.shape
    w, v = theta0.astype(float).copy(), np.zeros(D)
    sigma2 = None
    if noise.name == "langevin" and noise.kind == "const":
        sigma2 = noise.sigma2
        if sigma2 is None:
            sigma2 = (noise_trace / D if noise_trace is not None else
                      np.trace(minibatch_gradient_covariance(G0, noise.B, scheme=noise.scheme)) / D)
    for k in range(num_steps):
        G = model.per_sample_gradients(w)
        g_full = model.gradient(w)
        if noise.name == "gd":
            g = g_full
        elif noise.name == "sgd":
            g_batch = G[_batch(noise.scheme, seed, r, k, noise.B, N)].mean(axis=0)
            g = g_batch
            if form == "parameter":
                tr = np.trace(minibatch_gradient_covariance(G, noise.B, scheme=noise.scheme))
                s = math.sqrt(noise_trace / tr)
                g = g_full - s * (g_batch - g_full) / eta
        else:
            Sig_hat = minibatch_gradient_covariance(G, noise.B, scheme=noise.scheme)
            t = noise_trace if noise_trace is not None else np.trace(Sig_hat)
            Sig = structured_covariance(noise.kind, noise.covariance if noise.kind == "fixed"
                                        else Sig_hat, model.hessian(w), k=noise.k, trace=t,
                                        sigma2=sigma2)
            z = philox.normals(seed, r, philox.NOISE, 2 * k * ((D + 1) // 2), D)
            xi = _sqrtm(Sig) @ z
            g = g_full - xi / eta if form == "parameter" else g_full + xi
        if style == "heavy_ball":
            v = beta * v - eta * g
            w = w + v
        else:
            v = beta * v + g
            w = w - eta * v
    return w


TOY = toy_data(11, N=25)
_rng = np.random.default_rng(5)
X_LIN = _rng.standard_normal((17, 3))
Y_LIN = X_LIN @ np.array([1.0, -2.0, 0.5]) + 0.3 * _rng.standard_normal(17)

REFERENCE_CASES = [
    ("toy", gd(), "gradient", None, 0.0, "heavy_ball"),
    ("toy", sgd(3), "gradient", None, 0.5, "pytorch"),
    ("toy", sgd(4, scheme="iid"), "parameter", 0.01, 0.0, "heavy_ball"),
    ("toy", sgd(4, scheme="reshuffle"), "gradient", None, 0.3, "heavy_ball"),
    ("toy", sgd(5, scheme="shuffle_once"), "parameter", 0.02, 0.0, "heavy_ball"),
    ("toy", langevin("const"), "gradient", None, 0.0, "heavy_ball"),
    ("toy", langevin("dynamic", B=2, scheme="iid"), "gradient", None, 0.2, "pytorch"),
    ("toy", langevin("diag"), "parameter", 0.01, 0.0, "heavy_ball"),
    ("toy", langevin("full", B=3), "gradient", None, 0.0, "heavy_ball"),
    ("toy", langevin("full"), "parameter", 0.01, 0.4, "heavy_ball"),
    ("toy", langevin("leading", k=1), "parameter", 0.01, 0.0, "heavy_ball"),
    ("toy", langevin("hessian", k=1), "gradient", 0.003, 0.0, "heavy_ball"),
    ("toy", langevin("hessian"), "parameter", 0.01, 0.0, "pytorch"),
    ("toy", langevin("eigvec1"), "parameter", 0.01, 0.0, "heavy_ball"),
    ("toy", langevin("fixed", covariance=[[2e-4, 1e-4], [1e-4, 3e-4]]), "parameter", None, 0.0,
     "heavy_ball"),
    ("linear", sgd(4, scheme="iid"), "gradient", None, 0.6, "heavy_ball"),
    ("linear", sgd(3, scheme="reshuffle"), "parameter", 0.05, 0.0, "heavy_ball"),
    ("linear", langevin("diag", B=2), "gradient", None, 0.0, "pytorch"),
    ("linear", langevin("leading", k=2, B=2), "gradient", None, 0.0, "heavy_ball"),
    ("linear", langevin("eigvec1", B=2, scheme="iid"), "gradient", None, 0.0, "heavy_ball"),
    ("linear", langevin("const", B=5), "parameter", 0.02, 0.0, "heavy_ball"),
]


@pytest.mark.parametrize(("which", "noise", "form", "trace", "beta", "style"), REFERENCE_CASES)
def test_numpy_engine_matches_a_brute_force_loop(which, noise, form, trace, beta, style):
    """Same Philox numbers, independent code: agreement to round-off (1e-10 relative after 30
    steps of O(1) dynamics; a wrong rule or stream layout differs at O(η‖g‖) ≈ 1e-3)."""
    if which == "toy":
        problem, model, eta = Toy2DProblem(TOY), Toy2D(TOY), 0.004
        theta0 = np.array([[1.0, 1.0], [0.9, 1.1], [0.2, -0.3]])
    else:
        problem, model, eta = LinearRegressionProblem(X_LIN, Y_LIN), LinearRegression(X_LIN,
                                                                                   Y_LIN), 0.05
        theta0 = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [-1.0, 0.5, 2.0]])
    seed = 2**63 + 17
    run = simulate(problem, noise, eta=eta, num_steps=30, num_replicas=3, seed=seed,
                   theta0=theta0, form=form, noise_trace=trace,
                   momentum=Momentum(beta, style=style))
    for r in range(3):
        ref = _reference(model, noise, eta=eta, num_steps=30, seed=seed, r=r, theta0=theta0[r],
                         form=form, noise_trace=trace, beta=beta, style=style)
        np.testing.assert_allclose(run.theta[r], ref, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- noise statistics
def test_quadratic_fixed_noise_covariance_matches_the_discrete_sum():
    """θ_k − θ* = Σ_{j<k} (I−ηH)^j (−ηξ): Cov θ_k = Σ_{j<k}(I−ηH)^j η²Σ (I−ηH)^j (brute-force
    loop), checked entrywise at k = 1, 5, 20 with the Gaussian SE of a second moment."""
    rng = np.random.default_rng(4)
    H = _random_psd(rng, 3) + 0.5 * np.eye(3)
    Sigma = _random_psd(rng, 3, rank=2)
    eta = 0.5 / np.linalg.eigvalsh(H).max()
    theta_star = np.array([1.0, -2.0, 0.5])
    R = 20_000
    run = simulate(QuadraticProblem(H, theta_star), langevin("fixed", covariance=Sigma), eta=eta,
                   num_steps=20, num_replicas=R, seed=9, observe=[Record(every=1)])
    P = np.eye(3) - eta * H
    for k in (1, 5, 20):
        C = sum(np.linalg.matrix_power(P, j) @ (eta**2 * Sigma) @ np.linalg.matrix_power(P, j)
                for j in range(k))
        e = run.trajectory[k] - theta_star
        emp = e.T @ e / R
        se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / R)
        assert np.all(np.abs(emp - C) <= Z_MAX * se), (k, emp, C)


@pytest.mark.parametrize("kind", ["diag", "full", "leading", "hessian", "eigvec1", "dynamic"])
@pytest.mark.parametrize("form", ["gradient", "parameter"])
def test_one_step_noise_has_the_structured_covariance(kind, form):
    """One step from a fixed θ₀ on the toy: the noise −ηξ (gradient form) or ε (parameter form)
    is θ₁ − θ₀ + η∇L(θ₀); its sample covariance over R replicas equals η²Σ or S."""
    x = toy_data(12, N=40)
    model = Toy2D(x)
    w0 = np.array([0.3, 0.6])                  # a point where Σ̂ and H are generic
    R, eta = 20_000, 0.01
    k = 1 if kind in ("leading", "hessian") else None
    trace = 0.01 if form == "parameter" else None
    run = simulate(Toy2DProblem(x), langevin(kind, k=k, B=2), eta=eta, num_steps=1,
                   num_replicas=R, seed=21, theta0=w0, form=form, noise_trace=trace)
    noise = run.theta - w0 + eta * model.gradient(w0)
    Sig_hat = minibatch_gradient_covariance(model.per_sample_gradients(w0), 2)
    S = structured_covariance(kind, Sig_hat, model.hessian(w0), k=k,
                              trace=trace if trace is not None else np.trace(Sig_hat))
    C = S if form == "parameter" else eta**2 * S
    emp = noise.T @ noise / R
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / R) + 1e-30
    assert np.all(np.abs(emp - C) <= Z_MAX * se + 1e-15 * np.abs(C).max())
    assert abs(noise.mean(axis=0) / np.sqrt(np.diag(C) / R + 1e-300)).max() < Z_MAX


def test_parameter_form_sgd_noise_has_the_target_trace():
    """ε = s(ĝ_B − ∇L), s² = noise_trace/Tr Σ̂: E‖ε‖² = noise_trace; the SE of the mean of ‖ε‖²
    is estimated from the sample (R = 20 000)."""
    x = toy_data(13, N=30)
    w0 = np.array([0.8, 1.2])
    eta, R = 0.01, 20_000
    run = simulate(Toy2DProblem(x), sgd(1), eta=eta, num_steps=1, num_replicas=R, seed=3,
                   theta0=w0, form="parameter", noise_trace=0.01)
    eps = run.theta - w0 + eta * Toy2D(x).gradient(w0)
    sq = (eps**2).sum(axis=1)
    assert abs(sq.mean() - 0.01) < Z_MAX * sq.std() / math.sqrt(R)


# ------------------------------------------------------------------- seeds and chunking
def test_same_seed_same_numbers_other_seed_other_numbers():
    problem = Toy2DProblem(toy_data(0, N=20))
    kw = {"eta": 0.005, "num_steps": 25, "num_replicas": 4, "form": "parameter",
          "noise_trace": 0.01}
    a = simulate(problem, langevin("full"), seed=1, **kw)
    b = simulate(problem, langevin("full"), seed=1, **kw)
    c = simulate(problem, langevin("full"), seed=2, **kw)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert np.all(a.theta != c.theta)
    assert len({tuple(t) for t in a.theta}) == 4            # replicas are distinct streams


def test_replica_start_selects_the_same_streams():
    problem = LinearRegressionProblem(X_LIN, Y_LIN)
    whole = simulate(problem, sgd(3, scheme="reshuffle"), eta=0.05, num_steps=20,
                     num_replicas=6, seed=4)
    part = simulate(problem, sgd(3, scheme="reshuffle"), eta=0.05, num_steps=20,
                    num_replicas=2, seed=4, execution=Execution(replica_start=3))
    np.testing.assert_array_equal(part.theta, whole.theta[3:5])


def test_progress_prints_and_does_not_change_the_numbers(capsys, monkeypatch):
    """The bar (tqdm, forced on: stderr is captured, not a terminal) advances in 10 chunks."""
    from sgdnoise.sim.dynamics import _engine

    real = _engine.progress_bar
    updates = []

    def forced(total, **kw):
        bar = real(total, **{**kw, "enabled": kw["enabled"] is not False, "mininterval": 0})
        step = bar.update
        bar.update = lambda n=1: (updates.append(n), step(n))
        return bar

    monkeypatch.setattr(_engine, "progress_bar", forced)
    problem = Toy2DProblem(toy_data(1, N=20))
    kw = {"eta": 0.005, "num_steps": 37, "num_replicas": 3, "seed": 5, "form": "parameter",
          "noise_trace": 0.01,
          "observe": [Record(every=4, loss=True), FirstPassage(loss=0.3), Moments(after=11)]}
    quiet = simulate(problem, sgd(2, scheme="reshuffle"), **kw)
    capsys.readouterr()
    updates.clear()
    loud = simulate(problem, sgd(2, scheme="reshuffle"),
                    execution=Execution(progress=True), **kw)
    err = capsys.readouterr().err
    assert len(updates) == 10 and sum(updates) == 37
    assert "simulate toy2d" in err and "/37" in err
    for name in ("theta", "velocity", "trajectory", "loss", "first_passage", "theta_mean",
                 "theta_var", "velocity_var", "loss_final"):
        np.testing.assert_array_equal(getattr(loud, name), getattr(quiet, name))


# ------------------------------------------------------------- recording and observations
def test_recording_first_passage_and_censoring():
    """1-D quadratic with constant noise: first_passage is the first recorded step with L ≥ c."""
    problem = QuadraticProblem(np.array([[1.0]]))
    c = 0.1
    run = simulate(problem, langevin("const", sigma2=0.5), eta=0.1, num_steps=300,
                   num_replicas=50, seed=6,
                   observe=[Record(every=1, loss=True), FirstPassage(loss=c)])
    np.testing.assert_array_equal(run.record_steps, np.arange(301))
    np.testing.assert_allclose(run.loss, 0.5 * run.trajectory[..., 0] ** 2, rtol=1e-15)
    above = run.loss >= c
    expect = np.where(above.any(axis=0), above.argmax(axis=0), -1)
    np.testing.assert_array_equal(run.first_passage, expect)
    np.testing.assert_array_equal(run.censored, expect < 0)
    assert 0 < run.censored.sum() < 50                          # some pass, some are censored
    np.testing.assert_array_equal(run.trajectory[-1], run.theta)
    np.testing.assert_allclose(run.loss_final, run.loss[-1])
    # recording every 7 steps: steps 0, 7, …, 294
    sparse = simulate(problem, langevin("const", sigma2=0.5), eta=0.1, num_steps=300,
                      num_replicas=50, seed=6, observe=[Record(every=7)])
    np.testing.assert_array_equal(sparse.record_steps, np.arange(0, 301, 7))
    np.testing.assert_array_equal(sparse.trajectory, run.trajectory[::7])
    assert sparse.loss is None and sparse.first_passage is None and sparse.theta_mean is None


def test_stop_at_first_passage_absorbs_the_replica():
    problem = QuadraticProblem(np.array([[1.0]]))
    kw = {"eta": 0.1, "num_steps": 300, "num_replicas": 50, "seed": 6,
          "observe": [FirstPassage(loss=0.1), Record(every=1, loss=True)]}
    free = simulate(problem, langevin("const", sigma2=0.5), **kw)
    kw["observe"] = [FirstPassage(loss=0.1, stop=True), Record(every=1, loss=True)]
    stop = simulate(problem, langevin("const", sigma2=0.5), **kw)
    np.testing.assert_array_equal(stop.first_passage, free.first_passage)
    for r in range(50):
        k = stop.first_passage[r]
        if k < 0:
            np.testing.assert_array_equal(stop.trajectory[:, r], free.trajectory[:, r])
            continue
        np.testing.assert_array_equal(stop.trajectory[:k + 1, r], free.trajectory[:k + 1, r])
        assert np.all(stop.trajectory[k:, r] == free.trajectory[k, r])
        assert np.all(stop.loss[k:, r] == free.loss[k, r])
        assert stop.loss_final[r] == free.loss[k, r]


def test_moments_equal_statistics_of_the_recorded_trajectory():
    problem = LinearRegressionProblem(X_LIN, Y_LIN)
    for k0 in (0, 13, 40):
        run = simulate(problem, sgd(2, scheme="iid"), eta=0.05, num_steps=40, num_replicas=3,
                       seed=7, theta0=np.ones(3), momentum=0.5,
                       observe=[Record(every=1), Moments(after=k0)])
        traj = run.trajectory[k0:]
        assert run.moments_count == 41 - k0
        np.testing.assert_allclose(run.theta_mean, traj.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(run.theta_var, traj.var(axis=0), rtol=1e-9, atol=1e-15)
        inc = np.diff(run.trajectory, axis=0, prepend=run.trajectory[:1])[k0:]   # v_0 = 0
        np.testing.assert_allclose(run.velocity_mean, inc.mean(axis=0), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(run.velocity_var, inc.var(axis=0), rtol=1e-9, atol=1e-15)


def test_momentum_styles_coincide_for_constant_eta():
    problem = Toy2DProblem(toy_data(2, N=20))
    kw = {"eta": 0.004, "num_steps": 50, "num_replicas": 3, "seed": 8}
    a = simulate(problem, sgd(3), momentum=Momentum(0.7, style="heavy_ball"), **kw)
    b = simulate(problem, sgd(3), momentum=Momentum(0.7, style="pytorch"), **kw)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-12)
    np.testing.assert_allclose(a.velocity, -kw["eta"] * b.velocity, rtol=1e-10)


def test_divergence_names_the_first_replica_and_step():
    """θ_k = θ₀(1 − ηλ)^k = θ₀(−2)^k overflows when |θ₀| 2^k ≥ 2^1024: replica 1 (θ₀ = 4) at
    step 1022, before replica 2 (θ₀ = 1) at 1024."""
    problem = QuadraticProblem(np.array([[1.0]]))
    theta0 = np.array([[0.0], [4.0], [1.0]])
    with pytest.raises(DivergenceError, match="replica 1") as info:
        simulate(problem, gd(), eta=3.0, num_steps=2000, num_replicas=3, seed=0, theta0=theta0)
    assert info.value.step == 1022 and info.value.replica == 1 and info.value.lr == 3.0
    assert "learning rate 3" in str(info.value)


# ---------------------------------------------------------------------------- other problems
def test_model_problem_matches_linear_regression_problem():
    """A model holding its data (f(w) API) gives the same SGD and Hessian-noise trajectories."""
    lin = LinearRegressionProblem(X_LIN, Y_LIN)
    mod = ModelProblem(LinearRegression(X_LIN, Y_LIN))
    for noise in (sgd(4, scheme="reshuffle"), langevin("hessian", k=1, B=2)):
        kw = {"eta": 0.05, "num_steps": 25, "num_replicas": 3, "seed": 10,
              "theta0": np.zeros(3), "observe": [Record(every=5, loss=True)]}
        a = simulate(lin, noise, **kw)
        b = simulate(mod, noise, **kw)
        np.testing.assert_allclose(b.theta, a.theta, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(b.loss, a.loss, rtol=1e-11)


def test_model_problem_with_data_arrays():
    """ModelProblem(model, x, y): per_sample_gradients(w, x, y) on the batch rows."""

    class RowModel:
        def per_sample_gradients(self, w, x, y):
            return (x @ w - y)[:, None] * x

        def loss(self, w, x, y):
            return 0.5 * float(np.mean((x @ w - y) ** 2))

    a = simulate(LinearRegressionProblem(X_LIN, Y_LIN), sgd(3), eta=0.05, num_steps=20,
                 num_replicas=2, seed=11)
    b = simulate(ModelProblem(RowModel(), X_LIN, Y_LIN), sgd(3), eta=0.05, num_steps=20,
                 num_replicas=2, seed=11, theta0=np.zeros(3))
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.loss_final, a.loss_final, rtol=1e-12)


def test_quadratic_problem_noise_kinds_with_explicit_trace():
    H = np.diag([4.0, 1.0])
    kw = {"eta": 0.05, "num_steps": 1, "num_replicas": 20_000, "seed": 12, "noise_trace": 2.0}
    run = simulate(QuadraticProblem(H), langevin("eigvec1"), **kw)
    assert np.all(run.theta[:, 1] == 0)                  # only along the top eigenvector e₁
    var = run.theta[:, 0].var()
    assert abs(var - kw["eta"] ** 2 * 2.0) < Z_MAX * math.sqrt(2 / 20_000) * kw["eta"] ** 2 * 2


# ----------------------------------------------------------------------------- persistence
def test_replica_run_round_trip(tmp_path):
    run = simulate(Toy2DProblem(toy_data(3, N=10)), langevin("diag"), eta=0.005, num_steps=12,
                   num_replicas=3, seed=13, form="parameter", noise_trace=0.01,
                   observe=[Record(every=3, loss=True), FirstPassage(loss=1.0), Moments(after=4)])
    json.dumps(run.to_dict())
    assert run.config["noise"]["kind"] == "diag" and run.config["backend"] == "numpy"
    assert run.config["seed"] == 13 and "versions" in run.provenance
    path = run.save(tmp_path / "run.json")
    assert path.exists() and (tmp_path / "run.npz").exists()
    back = ReplicaRun.load(path)
    assert set(back.arrays()) == set(run.arrays())
    for name in run.arrays():
        np.testing.assert_array_equal(getattr(back, name), getattr(run, name))
    assert back.config == run.config and back.moments_count == run.moments_count


# ------------------------------------------------------------------------------ validation
LIN = LinearRegressionProblem(X_LIN, Y_LIN)
QUAD = QuadraticProblem(np.eye(2))
TOYP = Toy2DProblem(TOY)
OK = {"eta": 0.1, "num_steps": 3, "num_replicas": 2, "seed": 0}


def _call(problem=LIN, noise=None, **kw):
    args = {**OK, **kw}
    return simulate(problem, noise if noise is not None else gd(), **args)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: _call(problem="linear"), "problem"),
    (lambda: _call(noise="sgd"), "noise"),
    (lambda: _call(eta=0.0), "eta"),
    (lambda: _call(eta=float("nan")), "eta"),
    (lambda: _call(num_steps=-1), "num_steps"),
    (lambda: _call(num_steps=2.5), "num_steps"),
    (lambda: _call(num_replicas=0), "num_replicas"),
    (lambda: _call(seed=-1), "seed"),
    (lambda: _call(seed=2**64), "seed"),
    (lambda: _call(execution=Execution(replica_start=2**32 - 1)), "replica_start"),
    (lambda: _call(theta0=np.zeros(4)), "theta0"),
    (lambda: _call(theta0=np.zeros((3, 3))), "theta0"),
    (lambda: _call(theta0=np.array([np.nan, 0, 0])), "theta0"),
    (lambda: _call(form="params"), "form"),
    (lambda: _call(momentum=1.0), "beta"),
    (lambda: _call(momentum=Momentum(0.5, style="nesterov")), "style"),
    (lambda: _call(momentum="0.5"), "momentum"),
    (lambda: _call(noise_trace=-1.0, form="parameter"), "noise_trace"),
    (lambda: _call(observe=[Record(every=0)]), "Record.every"),
    (lambda: _call(observe=[Record(every=1, loss=1)]), "Record.loss"),
    (lambda: _call(observe=[FirstPassage(loss=float("inf"))]), "FirstPassage.loss"),
    (lambda: _call(observe=[FirstPassage(loss="1")]), "FirstPassage.loss"),
    (lambda: _call(observe=[FirstPassage(loss=1.0, stop=1)]), "FirstPassage.stop"),
    (lambda: _call(observe=[Moments(after=4)]), "Moments.after"),
    (lambda: _call(observe=[Moments(after=-1)]), "Moments.after"),
    (lambda: _call(observe=[Record(), Record(every=2)]), "observe"),
    (lambda: _call(observe=Record), "observe"),
    (lambda: _call(observe=["record"]), "observe"),
    (lambda: _call(execution="gpu"), "backend"),
    (lambda: _call(execution=3), "execution"),
    (lambda: _call(execution=Execution(num_threads=0)), "num_threads"),
    (lambda: _call(execution=Execution(progress="yes")), "progress"),
    (lambda: _call(noise=sgd(18)), "B"),
    (lambda: _call(noise=langevin("full", B=18)), "B"),
    (lambda: _call(noise=langevin("leading", k=4)), "k"),
    (lambda: _call(noise=langevin("fixed", covariance=np.eye(2))), "covariance"),
    (lambda: _call(noise=sgd(2), noise_trace=0.1), "noise_trace"),
    (lambda: _call(noise=langevin("diag"), form="parameter"), "noise_trace"),
    (lambda: _call(problem=QUAD, noise=sgd(1)), "noise"),
    (lambda: _call(problem=QUAD, noise=langevin("diag")), "noise"),
    (lambda: _call(problem=QUAD, noise=langevin("hessian")), "noise"),
    (lambda: _call(problem=QUAD, noise=langevin("const")), "noise"),
    (lambda: _call(problem=ModelProblem(LinearRegression(X_LIN, Y_LIN)), noise=gd()), "theta0"),
    (lambda: _call(problem=ModelProblem(object()), noise=gd()), "model"),
    (lambda: _call(problem=TOYP, num_steps=10**9, num_replicas=1000,
                   observe=[Record(every=1)]), "Record.every"),
    (lambda: _call(problem=ModelProblem(LinearRegression(X_LIN, Y_LIN)), execution="cupy",
                   theta0=np.zeros(3)), "backend"),
    (lambda: sgd(0), "B"),
    (lambda: sgd(2, scheme="epoch"), "scheme"),
    (lambda: langevin("isotropic"), "kind"),
    (lambda: langevin("fixed"), "covariance"),
    (lambda: langevin("diag", covariance=np.eye(2)), "covariance"),
    (lambda: langevin("fixed", covariance=[[1.0, 2.0], [2.0, 1.0]]), "covariance"),
    (lambda: langevin("diag", k=1), "k"),
    (lambda: langevin("leading", k=0), "k"),
    (lambda: langevin("diag", sigma2=1.0), "sigma2"),
    (lambda: langevin("const", sigma2=-1.0), "sigma2"),
    (lambda: structured_covariance("full", None, np.eye(2)), "Sigma"),
    (lambda: structured_covariance("hessian", np.eye(2)), "H"),
    (lambda: structured_covariance("leading", np.eye(2), k=3), "k"),
    (lambda: structured_covariance("diag", np.eye(2), trace=-1.0), "trace"),
    (lambda: structured_covariance("diag", np.eye(2), np.eye(3)), "H"),
    (lambda: minibatch_gradient_covariance(np.zeros(3), 1), "G"),
    (lambda: LinearRegressionProblem(np.zeros((3, 2)), np.zeros(4)), "y"),
    (lambda: QuadraticProblem(np.array([[1.0, 2.0], [0.0, 1.0]])), "H"),
    (lambda: QuadraticProblem(np.eye(2), np.zeros(3)), "theta_star"),
    (lambda: ModelProblem(LinearRegression(X_LIN, Y_LIN), X_LIN, None), "x and y"),
])
def test_invalid_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_problem_losses_are_the_engine_losses():
    theta = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    expect = 0.5 * np.mean((X_LIN @ theta.T - Y_LIN[:, None]) ** 2, axis=0)
    np.testing.assert_allclose(LIN.loss(theta), expect, rtol=1e-12)
    assert isinstance(LIN.loss(theta[0]), float)
    np.testing.assert_allclose(TOYP.loss(np.ones(2)), Toy2D(TOY).loss(np.ones(2)), rtol=1e-14)
    assert QUAD.loss(np.ones(2)) == 1.0


# ------------------------------------------------------- part D: frozen noise, phases, noise lags
_rng_d = np.random.default_rng(31)
H_D = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.2]])
TILT = QuadraticProblem(H_D, np.array([0.5, -1.0, 0.2]), _rng_d.standard_normal((24, 3)))


def _d_run(problem, noise=None, **extra):
    kw = {"eta": 0.3, "num_steps": 120, "num_replicas": 3, "seed": 5}
    kw.update(extra)
    return simulate(problem, noise or sgd(4, scheme="reshuffle"), **kw)


def test_tilted_quadratic_batch_gradient_is_frozen_noise_brute_force():
    """ĝ_B = H e + mean_B (g_p − ḡ), per-sample losses summed one by one."""
    dev = TILT._device(np)
    theta = np.array([[0.3, 0.1, -0.2], [1.0, 2.0, 3.0]])
    idx = np.array([[0, 5, 7, 9], [1, 1, 2, 23]])
    Gc = TILT.G
    for r in range(2):
        e = theta[r] - TILT.theta_star
        expect = np.mean([H_D @ e + Gc[p] for p in idx[r]], axis=0)
        np.testing.assert_allclose(dev.batch_gradient(theta, idx)[r], expect, rtol=1e-13)
    assert np.abs(Gc.mean(axis=0)).max() < 1e-15
    _, S = dev.statistics(theta, True)
    np.testing.assert_allclose(S[1], Gc.T @ Gc / 24, rtol=1e-13)


def test_epoch_noise_sums_to_zero_within_each_epoch():
    """Reshuffled batches of a centred G: the M noises of an epoch sum to 0 (M = 24/4 = 6)."""
    run = _d_run(TILT, observe=[Record(every=1)], eta=0.3)
    traj = run.trajectory                                     # (K + 1, R, D)
    g = (traj[:-1] - traj[1:]) / 0.3                          # β = 0: θ_{k+1} = θ_k − η g_k
    xi = g - (traj[:-1] - TILT.theta_star) @ H_D
    sums = xi.reshape(20, 6, 3, 3).sum(axis=1)
    assert np.abs(sums).max() < 1e-10 * np.abs(xi).max()
    assert np.abs(xi).max() > 0.1


@pytest.mark.parametrize("every, phase", [(1, 0), (6, 0), (6, 4), (5, 2)])
def test_moments_at_a_phase_match_the_recorded_trajectory(every, phase):
    run = _d_run(TILT, momentum=Momentum(0.5, style="pytorch"),
                 observe=[Record(every=1), Moments(after=13, every=every, phase=phase)])
    traj = run.trajectory
    k = np.arange(traj.shape[0])
    sel = (k >= 13) & (k % every == phase)
    np.testing.assert_allclose(run.theta_mean, traj[sel].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(run.theta_var, traj[sel].var(axis=0), rtol=1e-9, atol=1e-14)
    inc = np.diff(traj, axis=0)                               # inc[k − 1] = θ_k − θ_{k−1}
    vsel = inc[np.flatnonzero(sel) - 1]
    np.testing.assert_allclose(run.velocity_var, vsel.var(axis=0), rtol=1e-9, atol=1e-14)
    assert run.moments_count == int(sel.sum())


@pytest.mark.parametrize("scheme", ["reshuffle", "iid", "replacement"])
def test_noise_autocovariance_matches_brute_force_products(scheme):
    L, k0 = 7, 11
    run = _d_run(TILT, sgd(4, scheme=scheme),
                 observe=[Record(every=1), Moments(after=k0), NoiseLags(num_lags=L, after=k0)])
    traj = run.trajectory
    xi = (traj[:-1] - traj[1:]) / 0.3 - (traj[:-1] - TILT.theta_star) @ H_D   # (K, R, D)
    xi = xi[k0:]
    n = xi.shape[0]
    expect = np.stack([(xi[h:] * xi[:n - h]).sum(axis=0) / (n - h) for h in range(L)], axis=-1)
    np.testing.assert_allclose(run.noise_autocov, expect, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(run.noise_count, n - np.arange(L))


def test_in_eigenbasis_run_is_the_rotated_run():
    rotated, lam, V = TILT.in_eigenbasis()
    np.testing.assert_allclose(V @ np.diag(lam) @ V.T, H_D, atol=1e-14)
    a = _d_run(TILT, momentum=0.3, observe=[Record(every=10)])
    b = _d_run(rotated, momentum=0.3, observe=[Record(every=10)])
    np.testing.assert_allclose(a.trajectory @ V, b.trajectory, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("extra, match", [
    (lambda: Moments(after=5, every=3, phase=3), "Moments.phase"),
    (lambda: Moments(after=5, every=0), "Moments.every"),
    (lambda: [Moments(after=119, every=7, phase=6)], "Moments.phase"),
    (lambda: [Moments(about="origin")], "Moments.about"),
    (lambda: [Moments(about=np.zeros(4))], "Moments.about"),
    (lambda: [Moments(about=np.zeros((2, 3)))], "Moments.about"),
    (lambda: NoiseLags(num_lags=0), "NoiseLags.num_lags"),
    (lambda: [NoiseLags(num_lags=30, after=100)], "NoiseLags.num_lags"),
    (lambda: [NoiseLags(num_lags=3, after=121)], "NoiseLags.after"),
    (lambda: [NoiseLags(num_lags=2), FirstPassage(loss=1.0, stop=True)], "NoiseLags"),
])
def test_invalid_part_d_options_name_the_argument(extra, match):
    with pytest.raises(ValueError, match=match):
        _d_run(TILT, observe=extra())


@pytest.mark.parametrize("G, match", [(np.zeros((4, 2)), "G"), (np.zeros((0, 3)), "G"),
                                      (np.zeros(3), "G")])
def test_tilted_quadratic_rejects_bad_G(G, match):
    with pytest.raises(ValueError, match=match):
        QuadraticProblem(H_D, None, G)
