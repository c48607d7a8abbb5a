"""Network curvature of a 784-50-50-10 ReLU MLP: sgdnoise vs torch.func and BackPACK.

The paper's MNIST network (spec part A, experiments): 784-50-50-10, ReLU, no bias, cross-entropy
L = E_p ℓ_p, analysing the 50×50 layer (index 1, D = 2500).  Inputs are MNIST-shaped random images
(784 pixels in [0, 1], ≈ 19 % of them on, MNIST's fraction), labels uniform in 0–9, weights
He-scaled (``MLP.init``), all seeded with ``numpy.random.default_rng(seed)``; everything in float64.

(a) sgdnoise pipeline at N = 20 000: ``MLP.layer_factors`` (exact per-sample G_p, a_p, δ_p),
    ``kronecker_layer_moments`` (H, M = E_p[h_p²], K, Σ₁), ``noise_covariance`` (B = 50),
    ``eigenbasis(H)``, the eigenbasis diagonals, ``fit_exponent`` and ``fit_power_law`` (both
    protocols) and ``commutation_metrics(num_baseline=2)``; stage table, target 30 s in total.
(b) the paper authors' procedure as baseline (repository Yikuan-PKU/AWCH): per-sample Hessians of
    the 50×50 block with ``torch.func.vmap(torch.func.hessian(f))`` over a chunk of samples (f the
    per-sample loss as a function of that layer's weight, the other layers fixed), accumulated as
    H += Σ h_p and M += Σ h_p h_p (``torch.bmm``), at a small N (``--slow-N``).  sgdnoise
    (``layer_factors`` + ``kronecker_layer_moments`` for H and M) is timed at the same N; both
    must agree to 1e-8 (relative).  The baseline's time is extrapolated linearly to the full N.
(c) BackPACK: ``DiagHessian`` and ``Variance`` for all three layers over the full N vs
    sgdnoise's ``layer_factors`` for each layer + ``kronecker_hessian_diagonal`` +
    ``kronecker_gradient_variance``.  BackPACK's ``Variance`` of a mean-reduced loss over a batch
    of B samples is the variance of the vectors g_p/B, i.e. Var_p(g)/B²; it is converted to the
    population variance E_p[g²] − ḡ² over the same samples (per chunk E_c[g²] = B_c² var_c + ḡ_c²,
    then averaged over chunks with weights B_c/N).  Agreement to 1e-8 (relative); target: sgdnoise
    at least as fast as BackPACK.

Timings are best-of ``--repeats`` ((a), and sgdnoise in (b); the torch.func baseline runs once)
and of ``--diagonal-repeats`` rounds in (c), where BackPACK and sgdnoise alternate so that load
on a shared machine hits both alike.  (b) and (c) need PyTorch and BackPACK; without them only
(a) runs::

    pip install torch==2.13.0
    pip install --no-deps backpack-for-pytorch einops unfoldNd packaging

Usage::

    python benchmarks/bench_network_curvature.py              # -> results/network_curvature.json
    python benchmarks/bench_network_curvature.py --quick      # N 2000, slow-N 8: a smoke run
    python benchmarks/bench_network_curvature.py --N 20000 --slow-N 200 --repeats 3 \
        --diagonal-repeats 10 --seed 0
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import warnings
from typing import Any

import numpy as np
from _common import Timer, best_of, blas_summary, environment, measure_gemm_rate, write_result

from sgdnoise.sim.models import MLP
from sgdnoise.theory import (
    commutation_metrics,
    eigenbasis,
    fit_exponent,
    fit_power_law,
    kronecker_layer_moments,
    noise_covariance,
)
from sgdnoise.theory._diagonals import (
    kronecker_gradient_variance,
    kronecker_hessian_diagonal,
)

WIDTHS = (784, 50, 50, 10)
LAYER = 1  # the 50×50 layer
BATCH_SIZE = 50  # the paper's B
PIXELS_ON = 0.19  # fraction of non-zero pixels in MNIST
TARGET_PIPELINE_SECONDS = 30.0
TARGET_BACKPACK_RATIO = 1.0  # at least as fast as BackPACK (aim: 3×)
TOLERANCE = 1e-8
CHECKS = "of which arithmetic, without input checks"


# --------------------------------------------------------------------------- data and models
def make_network(N: int, seed: int) -> tuple[MLP, np.ndarray, np.ndarray, np.ndarray]:
    """The 784-50-50-10 ReLU MLP, He-scaled weights, MNIST-shaped inputs and uniform labels."""
    rng = np.random.default_rng(seed)
    mlp = MLP(WIDTHS, activation="relu", loss="cross_entropy", bias=False)
    w = mlp.init(rng)
    on = rng.random((N, WIDTHS[0])) < PIXELS_ON
    x = np.where(on, rng.uniform(0.2, 1.0, (N, WIDTHS[0])), 0.0)
    y = rng.integers(0, WIDTHS[-1], size=N)
    return mlp, w, x, y


def torch_available() -> bool:
    try:
        import backpack  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_model(mlp: MLP, w: np.ndarray) -> Any:
    """The same network as a float64 ``torch.nn.Sequential``; layer l is module ``2 l``."""
    import torch

    modules: list[Any] = []
    for l, W in enumerate(mlp.unpack(w)):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))  # (out, in), row-major = sgdnoise's layout
        modules.append(linear)
        if l < mlp.num_layers - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


# --------------------------------------------------------------------------- (a) sgdnoise pipeline
def sgdnoise_pipeline(mlp: MLP, w: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                      top: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Factors → moments → C → eigenbasis → diagonals → fits → commutation; seconds per stage."""
    t: dict[str, float] = {}
    with Timer() as tm:
        G, a, delta = mlp.layer_factors(w, x, y, LAYER)
    t["layer_factors (G_p, a_p, δ_p)"] = tm.seconds
    with Timer() as tm:
        mom = kronecker_layer_moments(G, a, delta)
    t["kronecker_layer_moments (H, M, K, Σ₁)"] = tm.seconds
    with Timer() as tm:
        C = noise_covariance(mom.Sigma1, BATCH_SIZE)
    t["noise_covariance"] = tm.seconds
    with Timer() as tm:
        eb = eigenbasis(mom.H)
    t["eigenbasis(H)"] = tm.seconds
    with Timer() as tm:
        M_ii = eb.diagonal(mom.M, "M")
        C_ii = eb.diagonal(C, "C")
        K_ii = eb.diagonal(mom.K, "K")
    t["diagonals M_ii, C_ii, K_ii"] = tm.seconds
    kappa_star = mom.kappa_star
    windows = {"top": top, "layerwise": None}
    with Timer() as tm:
        positive = eb.lam > 0
        kappa_upper = np.full_like(eb.lam, kappa_star)
        kappa_upper[positive] = K_ii[positive] / eb.lam[positive]
        fits_M = {p: fit_exponent(eb.lam, M_ii, kappa_star=kappa_star, kappa_upper=kappa_upper,
                                  top=window, protocol=p) for p, window in windows.items()}
    t["fit_exponent (2 protocols)"] = tm.seconds
    with Timer() as tm:
        fits_C = {p: fit_power_law(eb.lam, C_ii, top=window, protocol=p)
                  for p, window in windows.items()}
    t["fit_power_law C_ii (2 protocols)"] = tm.seconds
    with Timer() as tm:
        comm = commutation_metrics(C, mom.H, num_baseline=2, rng=0, basis=eb)
    t["commutation_metrics(num_baseline=2)"] = tm.seconds
    summary = {
        "kappa_star": kappa_star,
        "lam_max": float(eb.lam[0]),
        "num_positive_lam": int(positive.sum()),
        "gamma_M": {p: f.gamma for p, f in fits_M.items()},
        "gamma_M_interval": {p: list(f.interval) for p, f in fits_M.items()},
        "gamma_C": {p: f.slope for p, f in fits_C.items()},
        "r2_C": {p: f.r2 for p, f in fits_C.items()},
        "epsilon_ratio": comm.ratio,
        "spearman": comm.spearman,
    }
    return t, summary


# --------------------------------------------------------------------------- (b) torch.func
def torchfunc_moments(model: Any, x: np.ndarray, y: np.ndarray, *,
                      chunk: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """H and M of layer ``LAYER`` from per-sample Hessians, as the authors' ``AWD_cuda.py`` does.

    ``vmap(hessian(f))`` over a chunk of samples gives (chunk, D, D); then H += Σ_p h_p and
    M += Σ_p h_p h_p (batched matrix product).  Returns H, M and the seconds of the two steps.
    """
    import torch
    from torch.func import functional_call, hessian, vmap

    key = f"{2 * LAYER}.weight"
    params = {k: v.detach() for k, v in model.named_parameters()}
    target = params.pop(key)
    D = target.numel()

    def per_sample_loss(W: Any, x_p: Any, y_p: Any) -> Any:
        logits = functional_call(model, {**params, key: W}, (x_p.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(logits, y_p.unsqueeze(0))

    per_sample_hessians = vmap(hessian(per_sample_loss), in_dims=(None, 0, 0))
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    N = X.shape[0]
    H = torch.zeros(D, D, dtype=torch.float64)
    M = torch.zeros(D, D, dtype=torch.float64)
    seconds = {"vmap(hessian) per-sample h_p": 0.0, "H += Σh_p, M += Σh_p h_p (bmm)": 0.0}
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        with Timer() as tm:
            h = per_sample_hessians(target, X[start:stop], Y[start:stop]).reshape(-1, D, D)
        seconds["vmap(hessian) per-sample h_p"] += tm.seconds
        with Timer() as tm:
            H += h.sum(0)
            M += torch.bmm(h, h).sum(0)
        seconds["H += Σh_p, M += Σh_p h_p (bmm)"] += tm.seconds
        del h
    return (H / N).numpy(), (M / N).numpy(), seconds


def sgdnoise_moments(mlp: MLP, w: np.ndarray, x: np.ndarray,
                     y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same H and M with sgdnoise: exact factors, then one Kronecker GEMM."""
    G, a, _ = mlp.layer_factors(w, x, y, LAYER)
    mom = kronecker_layer_moments(G, a, per_sample_bound=False)
    return mom.H, mom.M


# --------------------------------------------------------------------------- (c) BackPACK
def backpack_diagonals(model: Any, loss_function: Any, x: np.ndarray, y: np.ndarray, *,
                       chunk: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """diag H and diag Σ₁ (population, 1/N) of every layer from BackPACK, as (out, in) arrays.

    ``DiagHessian`` of the mean loss over a chunk of B_c samples is the chunk's diag E_c h_p;
    ``Variance`` is Var_c(g_p/B_c) = (E_c[g²] − ḡ_c²)/B_c² and ``.grad`` is ḡ_c.  Chunks are
    combined with weights B_c/N: E[g²] = Σ_c (B_c/N)(B_c² var_c + ḡ_c²), ḡ = Σ_c (B_c/N) ḡ_c,
    diag Σ₁ = E[g²] − ḡ².
    """
    import torch
    from backpack import backpack
    from backpack.extensions import DiagHessian, Variance

    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    N = X.shape[0]
    H = [torch.zeros_like(m.weight) for m in linears]
    second = [torch.zeros_like(m.weight) for m in linears]
    g_mean = [torch.zeros_like(m.weight) for m in linears]
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        B_c = stop - start
        model.zero_grad()
        loss = loss_function(model(X[start:stop]), Y[start:stop])
        with backpack(DiagHessian(), Variance()):
            loss.backward()
        weight = B_c / N
        for l, m in enumerate(linears):
            g = m.weight.grad
            H[l] += weight * m.weight.diag_h
            second[l] += weight * (B_c**2 * m.weight.variance + g * g)
            g_mean[l] += weight * g
    return ([h.detach().numpy() for h in H],
            [(s - g * g).detach().numpy() for s, g in zip(second, g_mean, strict=True)])


def sgdnoise_diagonals(mlp: MLP, w: np.ndarray, x: np.ndarray, y: np.ndarray,
                       seconds: dict[str, float] | None = None
                       ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """diag H and diag Σ₁ of every layer: one ``MLP.layer_hessian_diagonals`` pass (square-root
    factors for ReLU + cross-entropy) + the two Kronecker diagonals per layer.

    With ``seconds``, keep the best time of each step there.
    """
    H, variance = [], []
    with Timer() as t0:
        factors = mlp.layer_hessian_diagonals(w, x, y)
    steps = {"all layers: MLP.layer_hessian_diagonals": t0.seconds}
    for l, (g_diag, a, delta) in enumerate(factors):
        with Timer() as t1:
            H.append(kronecker_hessian_diagonal(g_diag, a))
        with Timer() as t2:
            variance.append(kronecker_gradient_variance(delta, a))
        steps[f"layer{l}: kronecker_hessian_diagonal"] = t1.seconds
        steps[f"layer{l}: kronecker_gradient_variance"] = t2.seconds
    if seconds is not None:
        for name, value in steps.items():
            seconds[name] = min(seconds.get(name, np.inf), value)
    return H, variance


# --------------------------------------------------------------------------- reporting
def max_relative_difference(fast: np.ndarray, slow: np.ndarray) -> float:
    return float(np.abs(fast - slow).max() / np.abs(slow).max())


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("torch", "backpack-for-pytorch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="N 2000, slow-N 8, one repeat: a smoke run")
    parser.add_argument("--N", type=int, default=None, help="samples (default 20000)")
    parser.add_argument("--slow-N", type=int, default=None,
                        help="samples for the torch.func baseline (default 200; 0.3-0.7 s "
                             "each on 2 cores)")
    parser.add_argument("--hessian-chunk", type=int, default=10,
                        help="samples per vmap(hessian) call in the torch.func baseline")
    parser.add_argument("--backpack-chunk", type=int, default=None,
                        help="samples per BackPACK backward pass (default: all N at once)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="best-of repeats of every timed step (default 3, 1 with --quick)")
    parser.add_argument("--diagonal-repeats", type=int, default=None,
                        help="best-of rounds of (c), BackPACK and sgdnoise alternating, after one "
                             "warm-up round (default 10, 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit numpy's BLAS (threadpoolctl) and torch to this many threads "
                             "(default: leave both as they are)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None,
                        help="result file name (default network_curvature)")
    args = parser.parse_args(argv)

    N = args.N if args.N is not None else (2000 if args.quick else 20000)
    slow_N = args.slow_N if args.slow_N is not None else (8 if args.quick else 200)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    diagonal_repeats = (args.diagonal_repeats if args.diagonal_repeats is not None
                        else (1 if args.quick else 10))
    if not 1 <= slow_N <= N:
        parser.error(f"--slow-N ({slow_N}) must be in [1, --N ({N})]")
    backpack_chunk = args.backpack_chunk or N
    name = args.name or ("network_curvature_quick" if args.quick else "network_curvature")
    D = WIDTHS[LAYER] * WIDTHS[LAYER + 1]
    top = max(2, round(0.6 * D))  # 1500 of D = 2500, the top of the paper's 200–1500 range
    config = {"widths": WIDTHS, "activation": "relu", "loss": "cross_entropy", "bias": False,
              "layer": LAYER, "D": D, "N": N, "slow_N": slow_N, "B": BATCH_SIZE, "top": top,
              "hessian_chunk": args.hessian_chunk, "backpack_chunk": backpack_chunk,
              "repeats": repeats, "diagonal_repeats": diagonal_repeats,
              "threads": args.threads, "quick": args.quick,
              "pixels_on": PIXELS_ON,
              "target_pipeline_seconds": TARGET_PIPELINE_SECONDS, "tolerance": TOLERANCE}

    have_torch = torch_available()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.threads)  # noqa: F841 (held for the whole run)
        if have_torch:
            import torch

            torch.set_num_threads(args.threads)
    env = environment()
    env["versions"] = versions()
    if have_torch:
        import torch

        env["torch_num_threads"] = torch.get_num_threads()
    print(f"sgdnoise {env['sgdnoise']}, numpy {env['numpy']} ({blas_summary(env)}), "
          f"{env['cpu_count']} CPUs: {env['cpu_model']}")
    print("torch {torch}, backpack-for-pytorch {backpack-for-pytorch}".format(**env["versions"])
          + (f", torch threads {env['torch_num_threads']}" if have_torch else ""))
    print(f"load average at start: {env['load_average']}")
    gemm_rates = [measure_gemm_rate()]
    print(f"float64 GEMM rate (2000×2000, best of 3): {gemm_rates[0]:.1f} GFLOP/s")

    with Timer() as tm:
        mlp, w, x, y = make_network(N, args.seed)
    print(f"\nnetwork {'-'.join(map(str, WIDTHS))} ReLU, no bias, cross-entropy; layer {LAYER} "
          f"(D = {D}); N = {N} MNIST-shaped inputs, seed {args.seed} ({tm.seconds:.2f} s, "
          "not timed below)")

    timings: dict[str, Any] = {}
    agreement: dict[str, Any] = {}
    ok = True

    # ---- (a) the sgdnoise pipeline at full N
    runs = []
    for _ in range(repeats):
        stages, summary = sgdnoise_pipeline(mlp, w, x, y, top=top)
        runs.append(stages)
    stages = min(runs, key=lambda s: sum(s.values()))
    total = sum(stages.values())
    print(f"\n(a) sgdnoise pipeline, layer {LAYER}, N = {N} (best total of {repeats} run(s))")
    rows = [(k, f"{v:.3f}", f"{100 * v / total:.1f} %") for k, v in stages.items()]
    rows.append(("total", f"{total:.3f}", "100.0 %"))
    print_table(rows, ("stage", "seconds", "share"))
    print(f"total {total:.2f} s vs target {TARGET_PIPELINE_SECONDS:.0f} s: "
          f"{'meets' if total <= TARGET_PIPELINE_SECONDS else 'MISSES'} the target")
    print(f"results (sanity): κ* {summary['kappa_star']:.3g}, λ_max {summary['lam_max']:.3g}, "
          f"{summary['num_positive_lam']} positive λ; γ_M top {summary['gamma_M']['top']:.3f}, "
          f"layerwise {summary['gamma_M']['layerwise']:.3f}; γ_C top "
          f"{summary['gamma_C']['top']:.3f}, layerwise {summary['gamma_C']['layerwise']:.3f}; "
          f"ε/baseline {summary['epsilon_ratio']:.3f}")
    timings.update(pipeline_stages=stages, pipeline_total=total, pipeline_runs=runs)
    moments_full = (stages["layer_factors (G_p, a_p, δ_p)"]
                    + stages["kronecker_layer_moments (H, M, K, Σ₁)"])

    ratio_rows: list[tuple[str, ...]] = []
    if not have_torch:
        print("\ntorch / BackPACK not installed: skipping the baselines (b) and (c)")
    else:
        import torch
        from backpack import extend

        # ---- (b) torch.func per-sample Hessians at slow_N, and sgdnoise at the same N
        xs, ys = x[:slow_N], y[:slow_N]
        print(f"\n(b) torch.func vmap(hessian) per-sample Hessians of layer {LAYER}, "
              f"N = {slow_N}, chunks of {args.hessian_chunk} ...", flush=True)
        gemm_rates.append(measure_gemm_rate())
        gemm_rate = max(gemm_rates)
        model = torch_model(mlp, w)
        with Timer() as tm:
            H_t, M_t, parts = torchfunc_moments(model, xs, ys, chunk=args.hessian_chunk)
        slow_seconds = tm.seconds
        fast_seconds, (H_s, M_s) = best_of(lambda: sgdnoise_moments(mlp, w, xs, ys), repeats)
        diffs_b = {"H": max_relative_difference(H_s, H_t), "M": max_relative_difference(M_s, M_t)}
        ok &= max(diffs_b.values()) <= TOLERANCE
        per_slow, per_fast = slow_seconds / slow_N, fast_seconds / slow_N
        extrapolated = per_slow * N
        rows = [
            ("torch.func: vmap(hessian) + bmm (H, M)", str(slow_N), f"{slow_seconds:.2f}",
             f"{1e3 * per_slow:.2f}", "1"),
            *((f"  of which {k}", "", f"{v:.2f}", "", "") for k, v in parts.items()),
            ("sgdnoise: layer_factors + kronecker_layer_moments (H, M)", str(slow_N),
             f"{fast_seconds:.4f}", f"{1e3 * per_fast:.4f}", f"{per_slow / per_fast:.0f}×"),
            ("torch.func, extrapolated", str(N), f"{extrapolated:.0f}", f"{1e3 * per_slow:.2f}",
             "1"),
            ("sgdnoise: layer_factors + moments (H, M, K, Σ₁), measured", str(N),
             f"{moments_full:.3f}", f"{1e3 * moments_full / N:.4f}",
             f"{extrapolated / moments_full:.0f}×"),
            ("sgdnoise: whole pipeline (a), measured", str(N), f"{total:.3f}",
             f"{1e3 * total / N:.4f}", f"{extrapolated / total:.0f}×"),
        ]
        print_table(rows, ("path", "N", "seconds", "ms/sample", "speed-up"))
        print("max relative difference sgdnoise vs torch.func: "
              + ", ".join(f"{k} {v:.2e}" for k, v in diffs_b.items())
              + (f" (<= {TOLERANCE:g}: agree)" if max(diffs_b.values()) <= TOLERANCE
                 else f" (> {TOLERANCE:g}: DISAGREE)"))
        bmm_seconds = parts["H += Σh_p, M += Σh_p h_p (bmm)"]
        bmm_rate = 2.0 * D**3 * slow_N / bmm_seconds / 1e9
        print(f"torch.func's h_p h_p products: 2D³ = {2 * D**3 / 1e9:.2f} GFLOP per sample, "
              f"run at {bmm_rate:.1f} GFLOP/s = {100 * bmm_rate / gemm_rate:.0f} % of numpy's "
              f"measured GEMM rate ({gemm_rate:.1f} GFLOP/s, the better of "
              f"{', '.join(f'{r:.1f}' for r in gemm_rates)})")
        agreement["torchfunc"] = diffs_b
        timings.update(torchfunc_seconds=slow_seconds, torchfunc_parts=parts,
                       sgdnoise_seconds_at_slow_N=fast_seconds,
                       torchfunc_per_sample=per_slow, sgdnoise_per_sample_at_slow_N=per_fast,
                       torchfunc_extrapolated=extrapolated, gemm_rates_gflops=gemm_rates,
                       torchfunc_bmm_gflops=bmm_rate)
        ratio_rows += [
            (f"(b) H, M of layer {LAYER} at equal N = {slow_N}", f"torch.func {slow_seconds:.1f}",
             f"{fast_seconds:.3f}", f"{slow_seconds / fast_seconds:.0f}×"),
            (f"(b) H, M(, K, Σ₁) at N = {N} (torch.func extrapolated)",
             f"torch.func {extrapolated:.0f}", f"{moments_full:.2f}",
             f"{extrapolated / moments_full:.0f}×"),
        ]
        del H_t, M_t, H_s, M_s

        # ---- (c) BackPACK diag H and gradient variance, all layers, full N
        print(f"\n(c) diag H and per-parameter gradient variance, all layers, N = {N} "
              f"(BackPACK chunks of {backpack_chunk})", flush=True)
        model_bp = extend(torch_model(mlp, w))
        loss_bp = extend(torch.nn.CrossEntropyLoss(reduction="mean"))
        bp_times, sg_times = [], []
        breakdown: dict[str, float] = {}
        with warnings.catch_warnings():
            # BackPACK's module hooks fire without input gradients; torch warns about that
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for _ in range(diagonal_repeats + 1):  # the first round (warm-up) is not counted
                with Timer() as tm:
                    H_bp, var_bp = backpack_diagonals(model_bp, loss_bp, x, y,
                                                      chunk=backpack_chunk)
                bp_times.append(tm.seconds)
                with Timer() as tm:
                    H_sg, var_sg = sgdnoise_diagonals(mlp, w, x, y, breakdown)
                sg_times.append(tm.seconds)
        bp_best, sg_best = min(bp_times[1:] or bp_times), min(sg_times[1:] or sg_times)
        diffs_c = {f"layer{l}": {"diag_H": max_relative_difference(H_sg[l], H_bp[l]),
                                 "variance": max_relative_difference(var_sg[l], var_bp[l])}
                   for l in range(mlp.num_layers)}
        worst = max(max(d.values()) for d in diffs_c.values())
        ok &= worst <= TOLERANCE
        ratio = bp_best / sg_best
        rows = [("BackPACK DiagHessian + Variance (forward + backward)", f"{bp_best:.3f}", "1"),
                ("sgdnoise layer_hessian_diagonals + diagonals", f"{sg_best:.3f}", f"{ratio:.2f}×")]
        print_table(rows, ("path", "seconds", "speed-up"))
        print("max relative difference sgdnoise vs BackPACK: "
              + "; ".join(f"{k}: diag H {v['diag_H']:.2e}, variance {v['variance']:.2e}"
                          for k, v in diffs_c.items())
              + (f" (<= {TOLERANCE:g}: agree)" if worst <= TOLERANCE
                 else f" (> {TOLERANCE:g}: DISAGREE)"))
        print(f"sgdnoise vs BackPACK: {ratio:.2f}× "
              f"({'meets' if ratio >= TARGET_BACKPACK_RATIO else 'MISSES'} the target "
              f"of at least {TARGET_BACKPACK_RATIO:.0f}×; aim 3×)")
        bsum = sum(v for k, v in breakdown.items() if CHECKS not in k)
        print(f"\nsgdnoise steps (each best of {diagonal_repeats + 1}; their sum {bsum:.3f} s)")
        print_table([(k, f"{v:.3f}", f"{100 * v / bsum:.1f} %") for k, v in breakdown.items()],
                    ("step", "seconds", "share"))
        agreement["backpack"] = diffs_c
        timings.update(backpack_runs=bp_times, sgdnoise_diagonal_runs=sg_times,
                       backpack_seconds=bp_best, sgdnoise_diagonal_seconds=sg_best,
                       sgdnoise_diagonal_breakdown=breakdown)
        ratio_rows.append((f"(c) diag H + gradient variance, 3 layers, N = {N}",
                           f"BackPACK {bp_best:.2f}", f"{sg_best:.2f}", f"{ratio:.2f}×"))

    print("\nsummary: sgdnoise against the baselines measured in this run")
    ratio_rows.insert(0, (f"(a) whole pipeline, N = {N}", f"target {TARGET_PIPELINE_SECONDS:.0f}",
                          f"{total:.2f}",
                          "meets" if total <= TARGET_PIPELINE_SECONDS else "MISSES"))
    print_table(ratio_rows, ("comparison", "baseline s", "sgdnoise s", "speed-up"))

    path = write_result(name, config=config, seed=args.seed, timings=timings, environment=env,
                        extra={"max_relative_difference": agreement, "summary": summary,
                               "load_average_end": list(os.getloadavg())})
    print(f"\nwrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
