"""Dense-layer moments from Kronecker factors vs. materialised per-sample Hessians (spec part A).

The layer z = W a has out × in weights, D = out·in parameters, and per-sample Hessian
h_p = G_p ⊗ a_p a_pᵀ.  The fast pipeline builds H, M = E_p[h_p²], K = E_p[κ_max(p) h_p] and Σ₁
as full D×D matrices with one packed-triangle GEMM over samples, then runs everything part A needs
downstream: C, H's eigenbasis, the diagonals M_ii, C_ii, K_ii, both exponent-fit protocols and the
commutation metrics.  Target (out = in = 50, D = 2500, N = 20 000): at most 15 s on a 2-core
machine.

The baseline materialises every h_p as a D×D matrix and accumulates H += h_p, M += h_p h_p and Σ₁
from the per-sample gradients g_p = δ_p ⊗ a_p, as one does after computing per-sample Hessians
with automatic differentiation.  It costs O(D³) per sample, so it runs at a small N (``--slow-N``)
and the fast moment step is timed at that same N; the two must agree to 1e-10 (relative).

Usage::

    python benchmarks/bench_layer_moments.py            # full size -> results/layer_moments.json
    python benchmarks/bench_layer_moments.py --quick    # seconds-long smoke run
    python benchmarks/bench_layer_moments.py --N 20000 --width 50 --slow-N 192 --seed 0

Synthetic factors (seeded with ``numpy.random.default_rng(seed)``): the analysed layer feeds a
ReLU and a 10-class softmax head, so G_p = D_p W₂ᵀ(diag q_p − q_p q_pᵀ) W₂ D_p is the exact
Gauss–Newton (= Hessian, for ReLU) output factor, PSD of rank ≤ 9; δ_p = D_p W₂ᵀ(q_p − e_{y_p}) with
labels y_p drawn from q_p; the inputs a_p are ReLU features of Gaussians with a power-law
covariance spectrum.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np
from _common import (
    Timer,
    best_of,
    blas_summary,
    environment,
    measure_gemm_rate,
    write_result,
)

from sgdnoise.theory import (
    commutation_metrics,
    eigenbasis,
    fit_exponent,
    fit_power_law,
    gradient_covariance,
    kronecker_layer_moments,
    noise_covariance,
)

TARGET_SECONDS = 15.0
TARGET_SPEEDUP = 100.0
NUM_CLASSES = 10
BATCH_SIZE = 50  # the paper's B for the MNIST MLP


# --------------------------------------------------------------------------- synthetic factors
def make_factors(N: int, width: int, rng: np.random.Generator, *,
                 num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kronecker factors (G, a, delta) of a width×width layer followed by ReLU and softmax."""
    out = inn = width
    # inputs: ReLU of Gaussians whose covariance has a power-law spectrum in a random basis
    Q, _ = np.linalg.qr(rng.standard_normal((inn, inn)))
    scales = (1.0 + np.arange(inn)) ** -0.75
    a = np.maximum(rng.standard_normal((N, inn)) @ (Q * scales).T + 0.1, 0.0)
    W = rng.standard_normal((out, inn)) / np.sqrt(inn * float(np.mean(scales**2)))
    W2 = rng.standard_normal((num_classes, out)) * ((1.0 + np.arange(out)) ** -0.5)
    z = a @ W.T
    mask = (z > 0).astype(np.float64)
    logits = (np.maximum(z, 0.0) @ W2.T) * 2.0
    logits -= logits.max(axis=1, keepdims=True)
    q = np.exp(logits)
    q /= q.sum(axis=1, keepdims=True)
    J = W2[None, :, :] * mask[:, None, :]                                # (N, classes, out)
    A = q[:, :, None] * np.eye(num_classes)[None] - q[:, :, None] * q[:, None, :]
    G = np.swapaxes(J, 1, 2) @ (A @ J)                                   # (N, out, out), PSD
    G = 0.5 * (G + np.swapaxes(G, 1, 2))
    # labels drawn from the model's own softmax, as near a well-fitted optimum: then
    # E_y[δ_p δ_pᵀ] = G_p (information identity) and C is close to, but not exactly, H/B
    y = (q.cumsum(axis=1) < rng.random((N, 1))).sum(axis=1).clip(max=num_classes - 1)
    residual = q.copy()
    residual[np.arange(N), y] -= 1.0
    delta = mask * (residual @ W2)                                       # (N, out)
    return G, a, delta


# --------------------------------------------------------------------------- fast pipeline
def fast_pipeline(G: np.ndarray, a: np.ndarray, delta: np.ndarray, *, B: int,
                  top: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Moments → C → eigenbasis → diagonals → fits → commutation; seconds per stage."""
    t: dict[str, float] = {}
    with Timer() as tm:
        mom = kronecker_layer_moments(G, a, delta)
    t["kronecker_layer_moments"] = tm.seconds
    with Timer() as tm:
        C = noise_covariance(mom.Sigma1, B)
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
    # "top": the top 𝒩 = ``top`` directions; "layerwise": trimmed, top 80 % by λ, no cap
    windows = {"top": top, "layerwise": None}
    with Timer() as tm:
        positive = eb.lam > 0
        kappa_upper = np.full_like(eb.lam, kappa_star)
        kappa_upper[positive] = K_ii[positive] / eb.lam[positive]
        fits_M = {protocol: fit_exponent(eb.lam, M_ii, kappa_star=kappa_star,
                                         kappa_upper=kappa_upper, top=window, protocol=protocol)
                  for protocol, window in windows.items()}
    t["fit_exponent (2 protocols)"] = tm.seconds
    with Timer() as tm:
        fits_C = {protocol: fit_power_law(eb.lam, C_ii, top=window, protocol=protocol)
                  for protocol, window in windows.items()}
    t["fit_power_law C_ii (2 protocols)"] = tm.seconds
    with Timer() as tm:
        comm = commutation_metrics(C, mom.H, num_baseline=2, rng=0, basis=eb)
    t["commutation_metrics"] = tm.seconds
    summary = {
        "kappa_star": kappa_star,
        "lam_max": float(eb.lam[0]),
        "num_positive_lam": int(positive.sum()),
        "gamma_M": {p: f.gamma for p, f in fits_M.items()},
        "gamma_M_interval": {p: list(f.interval) for p, f in fits_M.items()},
        "gamma_M_interval_guaranteed": {p: f.interval_guaranteed for p, f in fits_M.items()},
        "identity_residual": {p: f.identity_residual for p, f in fits_M.items()},
        "gamma_C": {p: f.slope for p, f in fits_C.items()},
        "r2_C": {p: f.r2 for p, f in fits_C.items()},
        "epsilon": comm.epsilon,
        "epsilon_baseline": comm.baseline.mean,
        "epsilon_ratio": comm.ratio,
        "diagonal_energy": comm.diagonal_energy,
        "spearman": comm.spearman,
    }
    return t, summary


# --------------------------------------------------------------------------- GEMM profile
def gemm_count(out: int, inn: int, N: int, k: int) -> float:
    """Flops of the packed-triangle product (k·n_o × N)·(N × n_i): 2 per multiply-add."""
    n_o, n_i = out * (out + 1) // 2, inn * (inn + 1) // 2
    return 2.0 * k * n_o * N * n_i


def moments_breakdown(G: np.ndarray, a: np.ndarray, delta: np.ndarray, *,
                      chunk: int = 4096) -> dict[str, float]:
    """Seconds of each step inside ``kronecker_layer_moments`` (per_sample_bound, with delta).

    Mirrors the implementation step by step (κ_max, stacked statistics, packing, GEMM, scatter to
    full D×D) on the same data and chunking, so the GEMM is timed exactly as the stage runs it.
    """
    from sgdnoise.theory import kronecker_max_curvatures

    t: dict[str, float] = {}
    N, inn = a.shape
    out = G.shape[1]
    with Timer() as tm:
        sq = np.einsum("pi,pi->p", a, a)
        kappa = kronecker_max_curvatures(G, a)
    t["kappa_max (batched eigvalsh of G_p, with input checks)"] = tm.seconds
    with Timer() as tm:
        blocks = [G, sq[:, None, None] * (G @ G), kappa[:, None, None] * G,
                  delta[:, :, None] * delta[:, None, :]]
    t["stacked statistics (G_p², κ G_p, δδᵀ)"] = tm.seconds
    ro, co = np.triu_indices(out)
    ri, ci = np.triu_indices(inn)
    n_o, n_i = ro.size, ri.size
    k = len(blocks)
    acc = np.zeros((k * n_o, n_i))
    pack = gemm = 0.0
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        with Timer() as tm:
            left = np.concatenate([X[start:stop][:, ro, co] for X in blocks], axis=1)
            a_c = a[start:stop]
            right = a_c[:, ri] * a_c[:, ci]
        pack += tm.seconds
        with Timer() as tm:
            acc += left.T @ right
        gemm += tm.seconds
    t["pack upper triangles"] = pack
    t["GEMM (k·n_o × N)·(N × n_i)"] = gemm
    with Timer() as tm:
        acc /= N
        D = out * inn
        for b in range(k):
            K = acc[b * n_o:(b + 1) * n_o]
            full = np.empty((out, out, inn, inn))
            full[ro[:, None], co[:, None], ri[None, :], ci[None, :]] = K
            full[co[:, None], ro[:, None], ri[None, :], ci[None, :]] = K
            full[ro[:, None], co[:, None], ci[None, :], ri[None, :]] = K
            full[co[:, None], ro[:, None], ci[None, :], ri[None, :]] = K
            np.ascontiguousarray(full.transpose(0, 2, 1, 3)).reshape(D, D)
    t["scatter to full D×D (4 matrices)"] = tm.seconds
    return t


# --------------------------------------------------------------------------- baseline
def materialised_moments(G: np.ndarray, a: np.ndarray,
                         delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H, M, Σ₁ by materialising each h_p = G_p ⊗ a_p a_pᵀ (D×D) and g_p = δ_p ⊗ a_p."""
    N = G.shape[0]
    D = G.shape[1] * a.shape[1]
    H = np.zeros((D, D))
    M = np.zeros((D, D))
    grads = np.empty((N, D))
    for p in range(N):
        h_p = np.kron(G[p], np.outer(a[p], a[p]))
        H += h_p
        M += h_p @ h_p
        grads[p] = np.kron(delta[p], a[p])
    Sigma1, _ = gradient_covariance(grads)
    return H / N, M / N, Sigma1


def max_relative_difference(fast: np.ndarray, slow: np.ndarray) -> float:
    return float(np.abs(fast - slow).max() / np.abs(slow).max())


# --------------------------------------------------------------------------- reporting
def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                    for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (width 12, N 2000, slow-N 64) for a smoke run")
    parser.add_argument("--N", type=int, default=None, help="samples (default 20000)")
    parser.add_argument("--width", type=int, default=None, help="out = in (default 50)")
    parser.add_argument("--slow-N", type=int, default=None,
                        help="samples for the materialised baseline (default 192, ~1 min)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of the fast pipeline and of its moment-step profile; "
                             "the run with the best total is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="result file name (default layer_moments)")
    args = parser.parse_args(argv)

    N = args.N if args.N is not None else (2000 if args.quick else 20000)
    width = args.width if args.width is not None else (12 if args.quick else 50)
    slow_N = args.slow_N if args.slow_N is not None else (64 if args.quick else 192)
    if slow_N > N:
        parser.error(f"--slow-N ({slow_N}) must be <= --N ({N})")
    name = args.name or ("layer_moments_quick" if args.quick else "layer_moments")
    D = width * width
    top = max(2, round(0.6 * D))  # 1500 of D = 2500, the top of the paper's 200–1500 range
    config = {"N": N, "width": width, "out": width, "in": width, "D": D, "slow_N": slow_N,
              "B": BATCH_SIZE, "top": top, "num_classes": NUM_CLASSES, "repeats": args.repeats,
              "quick": args.quick, "target_seconds": TARGET_SECONDS}

    env = environment()
    print(f"sgdnoise {env['sgdnoise']}, numpy {env['numpy']} ({blas_summary(env)}), "
          f"{env['cpu_count']} CPUs: {env['cpu_model']}")
    print(f"load average at start: {env['load_average']}")
    gemm_rate_start = measure_gemm_rate()
    print(f"float64 GEMM rate (2000×2000, best of 3): {gemm_rate_start:.1f} GFLOP/s "
          "(measured again after the pipeline; the better one is the reference)")

    rng = np.random.default_rng(args.seed)
    with Timer() as tm:
        G, a, delta = make_factors(N, width, rng)
    print(f"\nsynthetic factors: out = in = {width}, D = {D}, N = {N}, seed {args.seed} "
          f"({tm.seconds:.2f} s, not timed below)")

    # ---- fast pipeline at full N
    runs = []
    for _ in range(args.repeats):
        stages, summary = fast_pipeline(G, a, delta, B=BATCH_SIZE, top=top)
        runs.append(stages)
    stages = min(runs, key=lambda s: sum(s.values()))
    total = sum(stages.values())
    print(f"\nfast pipeline, N = {N} (best total of {args.repeats} run(s))")
    rows = [(k, f"{v:.3f}", f"{100 * v / total:.1f} %") for k, v in stages.items()]
    rows.append(("total", f"{total:.3f}", "100.0 %"))
    print_table(rows, ("stage", "seconds", "share"))
    verdict = "meets" if total <= TARGET_SECONDS else "MISSES"
    print(f"total {total:.2f} s vs target {TARGET_SECONDS:.0f} s: {verdict} the target")

    # ---- GEMM profile of the moment stage (reference rate: the better of two measurements)
    gemm_rate_end = measure_gemm_rate()
    gemm_rate = max(gemm_rate_start, gemm_rate_end)
    print(f"\nfloat64 GEMM rate: {gemm_rate_start:.1f} GFLOP/s at start, {gemm_rate_end:.1f} "
          f"GFLOP/s now; reference {gemm_rate:.1f} GFLOP/s")
    k = 4  # H, M, K (per_sample_bound) and δδᵀ (Σ₁): the statistics stacked in one GEMM
    flops = gemm_count(width, width, N, k)
    breakdowns = [moments_breakdown(G, a, delta) for _ in range(args.repeats)]
    breakdown = min(breakdowns, key=lambda b: sum(b.values()))
    gemm_seconds = breakdown["GEMM (k·n_o × N)·(N × n_i)"]
    achieved = flops / gemm_seconds / 1e9
    stage_rate = flops / stages["kronecker_layer_moments"] / 1e9
    print(f"\ninside kronecker_layer_moments (mirrored step by step, N = {N}, "
          f"best of {args.repeats})")
    bsum = sum(breakdown.values())
    rows = [(k_, f"{v:.3f}", f"{100 * v / bsum:.1f} %") for k_, v in breakdown.items()]
    rows.append(("sum of steps", f"{bsum:.3f}", "100.0 %"))
    print_table(rows, ("step", "seconds", "share"))
    n_o = width * (width + 1) // 2
    print(f"GEMM: k = {k} statistics, ({k}·{n_o} × {N})·({N} × {n_o}) = {flops / 1e9:.1f} GFLOP "
          f"in {gemm_seconds:.3f} s = {achieved:.1f} GFLOP/s = "
          f"{100 * achieved / gemm_rate:.1f} % of the measured GEMM rate")
    print(f"whole moment stage at GEMM-equivalent rate: {stage_rate:.1f} GFLOP/s = "
          f"{100 * stage_rate / gemm_rate:.1f} % of the measured GEMM rate")

    # ---- baseline at equal N
    Gs, as_, ds = G[:slow_N], a[:slow_N], delta[:slow_N]
    print(f"\nbaseline: materialised per-sample D×D Hessians, N = {slow_N} ...", flush=True)
    with Timer() as tm:
        H_s, M_s, S_s = materialised_moments(Gs, as_, ds)
    slow_seconds = tm.seconds
    fast_seconds, mom = best_of(
        lambda: kronecker_layer_moments(Gs, as_, ds, per_sample_bound=False), 3)
    diffs = {"H": max_relative_difference(mom.H, H_s), "M": max_relative_difference(mom.M, M_s),
             "Sigma1": max_relative_difference(mom.Sigma1, S_s)}
    max_diff = max(diffs.values())
    ratio = slow_seconds / fast_seconds
    slow_per_sample = slow_seconds / slow_N
    slow_extrapolated = slow_per_sample * N
    fast_full = stages["kronecker_layer_moments"]
    rows = [
        ("materialised h_p (H, M, Σ₁)", str(slow_N), f"{slow_seconds:.3f}",
         f"{1e3 * slow_per_sample:.3f}", "1"),
        ("kronecker_layer_moments (H, M, Σ₁)", str(slow_N), f"{fast_seconds:.4f}",
         f"{1e3 * fast_seconds / slow_N:.4f}", f"{ratio:.0f}×"),
        ("materialised h_p, extrapolated", str(N), f"{slow_extrapolated:.0f}",
         f"{1e3 * slow_per_sample:.3f}", "1"),
        ("kronecker_layer_moments (+K, κ_max), measured", str(N), f"{fast_full:.3f}",
         f"{1e3 * fast_full / N:.4f}", f"{slow_extrapolated / fast_full:.0f}×"),
        ("whole fast pipeline, measured", str(N), f"{total:.3f}", f"{1e3 * total / N:.4f}",
         f"{slow_extrapolated / total:.0f}×"),
    ]
    print()
    print_table(rows, ("path", "N", "seconds", "ms/sample", "speed-up"))
    print("max relative difference fast vs materialised: "
          + ", ".join(f"{k_} {v:.2e}" for k_, v in diffs.items())
          + (" (<= 1e-10: agree)" if max_diff <= 1e-10 else " (> 1e-10: DISAGREE)"))
    print(f"speed-up at equal N = {slow_N}: {ratio:.0f}× "
          f"({'meets' if ratio >= TARGET_SPEEDUP else 'MISSES'} the {TARGET_SPEEDUP:.0f}× target)")

    fit_top, interval = summary["gamma_M"]["top"], summary["gamma_M_interval"]["top"]
    guaranteed = "guaranteed" if summary["gamma_M_interval_guaranteed"]["top"] else "NOT guaranteed"
    print(f"\nresults (sanity): γ_M top {fit_top:.3f} in [{interval[0]:.3f}, {interval[1]:.3f}] "
          f"({guaranteed}), "
          f"layerwise {summary['gamma_M']['layerwise']:.3f}; γ_C top "
          f"{summary['gamma_C']['top']:.3f}, layerwise {summary['gamma_C']['layerwise']:.3f}; "
          f"ε/baseline {summary['epsilon_ratio']:.3f}")

    timings = {
        "fast_stages": stages,
        "fast_total": total,
        "fast_runs": runs,
        "moments_breakdown": breakdown,
        "gemm_flops": flops,
        "gemm_seconds": gemm_seconds,
        "gemm_gflops": achieved,
        "gemm_rate_gflops": gemm_rate,
        "gemm_rate_gflops_start_end": [gemm_rate_start, gemm_rate_end],
        "gemm_fraction": achieved / gemm_rate,
        "moment_stage_fraction": stage_rate / gemm_rate,
        "slow_N": slow_N,
        "slow_seconds": slow_seconds,
        "fast_seconds_at_slow_N": fast_seconds,
        "speedup_equal_N": ratio,
        "slow_seconds_extrapolated": slow_extrapolated,
        "speedup_extrapolated_moments": slow_extrapolated / fast_full,
        "speedup_extrapolated_pipeline": slow_extrapolated / total,
    }
    path = write_result(name, config=config, seed=args.seed, timings=timings, environment=env,
                        extra={"max_relative_difference": diffs, "summary": summary,
                               "load_average_end": list(os.getloadavg())})
    print(f"\nwrote {path}")
    return 0 if (max_diff <= 1e-10) else 1


if __name__ == "__main__":
    sys.exit(main())
