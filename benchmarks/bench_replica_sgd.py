"""Replica-parallel minibatch SGD on linear regression: the numba kernel vs the numpy reference.

Problem: ``LinearRegressionProblem`` with d = 100 inputs, N = 4096 samples (x ~ N(0, I),
y = xᵀw* + 0.5·noise, seeded), R = 4096 replicas from θ₀ = 0, batch size B = 32, η = 0.05,
plain SGD (``sgd(32, scheme=…)``) with replacement and with random reshuffling (one epoch =
⌊N/B⌋ = 128 steps; each replica draws its own epoch permutations).  A step costs B·d
multiply-adds for the residuals and as many for the gradient, per replica.

Contestants (``simulate`` end to end, best of ``--repeats`` rounds after a warm-up; each round
runs every contestant once):

* ``numba, k threads`` (k = 1, 2) over ``--steps`` steps (default 256, two epochs);
* ``numpy``: the vectorised reference over ``--numpy-steps`` steps (default 128, one epoch, so
  that reshuffling pays for exactly one permutation per replica, as the numba run does per
  epoch).

Throughput is replica-steps per second, R · steps / wall time; target: numba ≥ 10× numpy.

Correctness (exit status 1 on a mismatch): on a shortened run (R = 256, 64 steps) numba (1 and
2 threads) and numpy end at the same θ to 1e-10 (max abs difference, θ of order 1), and the two
thread counts bit for bit.

Usage::

    python benchmarks/bench_replica_sgd.py             # full size -> results/replica_sgd.json
    python benchmarks/bench_replica_sgd.py --quick     # R 512, N 1024: a smoke run
    python benchmarks/bench_replica_sgd.py --replicas 4096 --steps 256 --repeats 3 --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import (
    blas_summary,
    environment,
    interleaved_rounds,
    run_timed,
    write_result,
)

from sgdnoise.sim.dynamics import Execution, LinearRegressionProblem, sgd, simulate

D = 100
B = 32
ETA = 0.05
SCHEMES = ("replacement", "reshuffle")
TARGET_RATIO = 10.0
TOLERANCE = 1e-10


def make_problem(N: int, seed: int) -> LinearRegressionProblem:
    """x ~ N(0, I), y = xᵀw* + 0.5·n, w* ~ N(0, I/D), all from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    w_star = rng.standard_normal(D) / np.sqrt(D)
    return LinearRegressionProblem(X, X @ w_star + 0.5 * rng.standard_normal(N))


def run(problem: LinearRegressionProblem, scheme: str, R: int, steps: int, seed: int,
        backend: str, num_threads: int | None = None) -> np.ndarray:
    return simulate(problem, sgd(B, scheme=scheme), eta=ETA, num_steps=steps, num_replicas=R,
                    seed=seed, execution=Execution(backend=backend, num_threads=num_threads)).theta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="R 512, N 1024: a smoke run")
    parser.add_argument("--replicas", type=int, default=None, help="R (4096)")
    parser.add_argument("--N", type=int, default=None, help="samples (4096)")
    parser.add_argument("--steps", type=int, default=None, help="numba steps (256)")
    parser.add_argument("--numpy-steps", type=int, default=None, help="numpy steps (one epoch)")
    parser.add_argument("--numba-threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="result file name (default replica_sgd)")
    args = parser.parse_args(argv)

    R = args.replicas or (512 if args.quick else 4096)
    N = args.N or (1024 if args.quick else 4096)
    epoch = N // B
    steps = args.steps or (2 * epoch)
    np_steps = args.numpy_steps or epoch
    threads = [int(k) for k in args.numba_threads.split(",")]
    name = args.name or ("replica_sgd_quick" if args.quick else "replica_sgd")
    if min(R, steps, np_steps, args.repeats, *threads) < 1 or N < B:
        parser.error("sizes, repeats and thread counts must be >= 1 and N >= 32")

    env = environment()
    print(f"sgdnoise {env['sgdnoise']}, numpy {env['numpy']} ({blas_summary(env)}), "
          f"{env['cpu_count']} CPUs: {env['cpu_model']}")
    print(f"load average at start: {env['load_average']}")
    problem = make_problem(N, args.seed)
    seed = args.seed
    config = {"D": D, "N": N, "B": B, "eta": ETA, "replicas": R, "steps": steps,
              "numpy_steps": np_steps, "steps_per_epoch": epoch, "schemes": SCHEMES,
              "numba_threads": threads, "repeats": args.repeats, "quick": args.quick,
              "target_ratio": TARGET_RATIO}
    print(f"\nlinear regression d = {D}, N = {N}, B = {B}, eta = {ETA}, R = {R}; numba {steps} "
          f"steps, numpy {np_steps} steps; seed {seed}")

    # ---- correctness on a shortened run
    ok = True
    checks: dict[str, float] = {}
    for scheme in SCHEMES:
        ref = run(problem, scheme, min(R, 256), 64, seed, "numpy")
        outs = [run(problem, scheme, min(R, 256), 64, seed, "numba", k) for k in threads]
        for k, out in zip(threads, outs, strict=True):
            checks[f"{scheme}: numba {k} vs numpy"] = float(np.abs(out - ref).max())
        if len(outs) > 1:
            same = all(np.array_equal(outs[0], o) for o in outs[1:])
            checks[f"{scheme}: numba threads bitwise (0 = identical)"] = 0.0 if same else 1.0
    for key, value in checks.items():
        good = value <= TOLERANCE
        ok &= good
        print(f"max |Δθ| {key}: {value:.2e} ({'ok' if good else 'FAIL'}, limit {TOLERANCE:g})")

    # ---- throughput
    timings: dict[str, dict[str, Any]] = {}
    ratios: dict[str, float] = {}
    for scheme in SCHEMES:
        contestants: dict[str, tuple[Callable[[], Any], int]] = {}
        for k in threads:
            contestants[f"numba, {k} thread{'s' if k > 1 else ''}"] = (
                lambda k=k, s=scheme: run(problem, s, R, steps, seed, "numba", k), R * steps)
        contestants["numpy"] = (lambda s=scheme: run(problem, s, R, np_steps, seed, "numpy"),
                                R * np_steps)
        print(f"\ntiming {scheme} ...", flush=True)
        for fn, _ in contestants.values():
            if fn is not contestants["numpy"][0]:
                fn()                                     # warm-up (compilation)
        block, _ = interleaved_rounds(contestants, args.repeats, "replica_steps")
        timings[scheme] = block
        width = max(map(len, block))
        for key, t in block.items():
            print(f"  {key.ljust(width)}  {t['replica_steps_per_s']:>12,.0f} replica-steps/s "
                  f"({1e3 * t['seconds'] / (t['replica_steps'] / R):.2f} ms per step of all "
                  f"replicas)")
        for key in block:
            if key != "numpy":
                ratio = block[key]["replica_steps_per_s"] / block["numpy"]["replica_steps_per_s"]
                ratios[f"{scheme}: {key} vs numpy"] = ratio
                print(f"  speed-up {key} vs numpy: {ratio:.1f}× "
                      f"({'meets' if ratio >= TARGET_RATIO else 'misses'} {TARGET_RATIO:g}×)")
    env_end = environment()
    print(f"\nload average at end: {env_end['load_average']}")
    path = write_result(name, config=config, seed=seed, timings=timings, environment=env,
                        extra={"checks": checks, "checks_ok": ok, "ratios": ratios,
                               "load_average_end": env_end["load_average"]})
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    run_timed(main)
