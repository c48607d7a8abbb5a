"""Top-k eigensolvers on a matrix-free layer operator: block Krylov–Schur vs ARPACK vs LOBPCG.

The operator is H of the first layer of a 784-50-50-10 ReLU MLP with biases (D = 50·785 =
39 250) at a random initialisation, over N synthetic 784-d inputs (ReLU of Gaussians with a
power-law covariance spectrum), built by ``sgdnoise.theory.kronecker_layer_operators`` from
low-rank factors G_p = J_pᵀ Λ_p J_p (J_p the 10 × 50 Jacobian of the logits in the layer's
pre-activations, Λ_p = diag q_p − q_p q_pᵀ) or from the dense G_p of ``MLP.layer_factors``.

Each method runs ``top_eigenbasis(H, k, tol=TOL)`` in the same process, one after the other;
reported per method: operator products (columns), wall seconds, CPU seconds of the process,
seconds inside the products, the largest relative residual ‖Hv − λv‖/|λ| and whether every
pair converged.  Then the part-A pipeline on the default method: top-k, the fused diagonals
λ_i, M_ii, Σ₁_ii (C_ii = Σ₁_ii/B) and both fits, with the peak resident memory.

Usage::

    python benchmarks/bench_eigensolvers.py             # N = 20 000, k = 500 (and k = 100)
    python benchmarks/bench_eigensolvers.py --quick     # N = 2 000, k = 60: a smoke run
    python benchmarks/bench_eigensolvers.py --methods block eigsh --k 500 --factors dense
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import numpy as np
from _common import blas_summary, environment, run_timed, write_result

from sgdnoise.sim.models.mlp import MLP
from sgdnoise.theory import (
    BlockOperator,
    LowRankFactors,
    fit_exponent,
    fit_power_law,
    kronecker_layer_operators,
    top_eigenbasis,
)

TOL = 1e-8
BATCH_SIZE = 50
TARGET_SECONDS = 120.0
TARGET_RSS_GB = 4.0


def synthetic_layer(N: int, seed: int, factors: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """(G or LowRankFactors, a, delta) of the first layer of a 784-50-50-10 ReLU MLP."""
    rng = np.random.default_rng(seed)
    d = 784
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = (1.0 + np.arange(d)) ** -0.75
    x = np.maximum(rng.standard_normal((N, d)) @ (Q * scales).T + 0.05, 0.0)
    x *= 9.0 / np.sqrt((x**2).sum(axis=1).mean())
    net = MLP((784, 50, 50, 10), "relu", "cross_entropy", bias=True)
    w = net.init(rng)
    y = rng.integers(0, 10, N)
    G, a, delta = net.layer_factors(w, x, y, 0) if factors == "dense" else (None, None, None)
    if factors == "dense":
        return G, a, delta
    W0, W1, W2 = net.unpack(w)
    a = np.hstack([x, np.ones((N, 1))])
    s0 = a @ W0.T
    a1 = np.hstack([np.maximum(s0, 0.0), np.ones((N, 1))])
    s1 = a1 @ W1.T
    z = np.hstack([np.maximum(s1, 0.0), np.ones((N, 1))]) @ W2.T
    J = (W2[None, :, :50] * (s1 > 0)[:, None, :]) @ (W1[None, :, :50] * (s0 > 0)[:, None, :])
    q = np.exp(z - z.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    Lam = q[:, :, None] * np.eye(10) - q[:, :, None] * q[:, None, :]
    delta = np.einsum("pc,pco->po", q - np.eye(10)[y], J)      # ∂ℓ/∂s₀ = J_pᵀ(q − e_y)
    return LowRankFactors(J, Lam), a, delta


def timed_operator(op: BlockOperator, clock: list[float]) -> BlockOperator:
    def apply(V: Any) -> Any:
        start = time.perf_counter()
        out = op.apply(V)
        clock[0] += time.perf_counter() - start
        return out

    return BlockOperator(apply, op.shape[0], name=op.name, block=op.block)


def run_method(H: BlockOperator, k: int, method: str, max_iter: int | None) -> dict[str, Any]:
    clock = [0.0]
    op = timed_operator(H, clock)
    cpu, wall = time.process_time(), time.perf_counter()
    res = top_eigenbasis(op, k, rng=0, tol=TOL, method=method, max_iter=max_iter)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"method": method, "k": k, "products": res.num_products, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "product_wall_s": round(clock[0], 1),
            "max_relative_residual": float(res.relative_residuals.max()),
            "converged": res.converged, "load_average": open("/proc/loadavg").read().split()[0]}


def pipeline(ops: Any, k: int) -> dict[str, Any]:
    wall = time.perf_counter()
    basis = top_eigenbasis(ops.H, k, rng=0, tol=TOL)
    t_eig = time.perf_counter() - wall
    d = ops.diagonals(basis.V, ("M", "Sigma1"))
    t_diag = time.perf_counter() - wall - t_eig
    fit_m = fit_exponent(basis.lam, d["M"], kappa_star=ops.kappa_star)
    fit_c = fit_power_law(basis.lam, d["Sigma1"] / BATCH_SIZE, top=k)
    total = time.perf_counter() - wall
    return {"method": basis.method, "k": k, "eig_s": round(t_eig, 1), "diagonals_s": round(t_diag, 1),
            "total_s": round(total, 1), "gamma_awd": fit_m.fit.slope, "gamma_emp": fit_c.slope,
            "products": basis.num_products, "converged": basis.converged,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=20000)
    parser.add_argument("--k", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--methods", nargs="+", default=["block", "eigsh", "lobpcg"])
    parser.add_argument("--lobpcg-max-k", type=int, default=100,
                        help="run LOBPCG only for k up to this (it needs ~k products/iteration)")
    parser.add_argument("--factors", choices=("low_rank", "dense"), default="low_rank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.N, args.k = 2000, [60]
    env = environment()
    print(blas_summary(env))
    start = time.perf_counter()
    G, a, delta = synthetic_layer(args.N, args.seed, args.factors)
    ops = kronecker_layer_operators(G, a, delta)
    print(f"factors ({args.factors}), N = {args.N}, D = {ops.H.shape[0]}: "
          f"{time.perf_counter() - start:.1f} s")
    rows = []
    for k in args.k:
        for method in args.methods:
            if method == "lobpcg" and k > args.lobpcg_max_k:
                continue
            row = run_method(ops.H, k, method, 100 if method == "lobpcg" else None)
            rows.append(row)
            print(row, flush=True)
    pipe = pipeline(ops, max(args.k))
    print(pipe)
    ok = pipe["total_s"] <= TARGET_SECONDS and pipe["peak_rss_gb"] <= TARGET_RSS_GB
    print(f"pipeline: {pipe['total_s']} s (target {TARGET_SECONDS:g} s), peak RSS "
          f"{pipe['peak_rss_gb']:.2f} GB (target {TARGET_RSS_GB:g} GB)")
    path = write_result("eigensolvers", config=vars(args), seed=args.seed,
                        timings={"methods": rows, "pipeline": pipe}, environment=env)
    print(f"wrote {path}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    run_timed(main)
