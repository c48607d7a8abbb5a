"""First passage of single-sample SGD on 1-D linear regression: numba kernel vs numpy reference.

Problem (spec C3): x, y ~ N(0, 1) independent, N = 10⁴ (seeded), B = 1, η = 0.1, R replicas
started at θ*.  A step draws one index (half a Philox block), updates θ ← θ − η(xθ − y)x and
checks L(θ) ≥ level.  For timing the level is out of reach, so every replica runs all its steps
(the work is then exactly R · steps replica-steps); the claim C3 run uses reachable levels.

Contestants (``first_passage_times`` end to end, best of ``--repeats`` rounds after a warm-up):

* ``numba, k threads`` (k = 1, 2) over ``--steps`` steps (default 20 000);
* ``numpy``: the vectorised reference (replicas in lock-step, indices drawn per chunk of 512
  steps) over ``--numpy-steps`` steps (default 1 000).

Throughput is replica-steps per second.  Targets: numba (all threads) ≥ 1e8 steps/s and
≥ 20× the numpy reference.

Correctness (exit status 1 on a mismatch): at a reachable level (c = 1.6) numba (1 and 2
threads), numpy and ``simulate(..., execution="numpy")`` give identical first-passage steps.

Usage::

    python benchmarks/bench_first_passage.py            # -> results/first_passage.json
    python benchmarks/bench_first_passage.py --quick    # R 1024, fewer steps
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _common import (
    blas_summary,
    environment,
    interleaved_rounds,
    run_timed,
    write_result,
)

from sgdnoise.sim.dynamics import (
    Execution,
    FirstPassage,
    LinearRegressionProblem,
    first_passage_times,
    sgd,
    simulate,
)

N = 10_000
ETA = 0.1
TARGET_RATE = 1e8
TARGET_RATIO = 20.0


def make_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y ~ N(0, 1) independent, from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(N), rng.standard_normal(N)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--replicas", type=int, default=None, help="R (4096)")
    parser.add_argument("--steps", type=int, default=None, help="numba steps (20000)")
    parser.add_argument("--numpy-steps", type=int, default=None, help="numpy steps (1000)")
    parser.add_argument("--numba-threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    R = args.replicas or (1024 if args.quick else 4096)
    steps = args.steps or (5000 if args.quick else 20000)
    np_steps = args.numpy_steps or (500 if args.quick else 1000)
    threads = [int(k) for k in args.numba_threads.split(",")]
    name = args.name or ("first_passage_quick" if args.quick else "first_passage")
    if min(R, steps, np_steps, args.repeats, *threads) < 1:
        parser.error("sizes, repeats and thread counts must be >= 1")

    env = environment()
    print(f"sgdnoise {env['sgdnoise']}, numpy {env['numpy']} ({blas_summary(env)}), "
          f"{env['cpu_count']} CPUs: {env['cpu_model']}")
    print(f"load average at start: {env['load_average']}")
    x, y = make_data(args.seed)
    problem = LinearRegressionProblem(x[:, None], y)
    theta0 = float(problem.theta_star[0])
    seed = args.seed

    # ---- correctness at a reachable level
    level = 1.6 * problem.loss_star
    Rc, Kc = min(R, 256), 5000
    ref = simulate(problem, sgd(1), eta=ETA, num_steps=Kc, num_replicas=Rc, seed=seed,
                   theta0=problem.theta_star, observe=[FirstPassage(loss=level, stop=True)],
                   execution="numpy").first_passage
    outs = {"numpy": first_passage_times(x, y, eta=ETA, level=level, num_steps=Kc,
                                         num_replicas=Rc, seed=seed, theta0=theta0,
                                         execution="numpy").first_passage}
    for k in threads:
        outs[f"numba, {k} threads"] = first_passage_times(
            x, y, eta=ETA, level=level, num_steps=Kc, num_replicas=Rc, seed=seed,
            theta0=theta0, execution=Execution("numba", num_threads=k)).first_passage
    checks = {key: int(np.count_nonzero(v != ref)) for key, v in outs.items()}
    ok = all(v == 0 for v in checks.values())
    for key, v in checks.items():
        print(f"first-passage steps differing from simulate(numpy), {key}: {v} of {Rc} "
              f"({'ok' if v == 0 else 'FAIL'}); {int((ref >= 0).sum())} passages")

    # ---- throughput (unreachable level: every replica runs every step)
    never = 1e300
    contestants: dict[str, tuple[Any, int]] = {}
    for k in threads:
        contestants[f"numba, {k} thread{'s' if k > 1 else ''}"] = (
            lambda k=k: first_passage_times(x, y, eta=ETA, level=never, num_steps=steps,
                                            num_replicas=R, seed=seed, theta0=theta0,
                                            execution=Execution("numba", num_threads=k)), R * steps)
    contestants["numpy"] = (
        lambda: first_passage_times(x, y, eta=ETA, level=never, num_steps=np_steps,
                                    num_replicas=R, seed=seed, theta0=theta0, execution="numpy"),
        R * np_steps)
    for key, (fn, _) in contestants.items():
        if key != "numpy":
            fn()                                       # warm-up (compilation)
    timings, _ = interleaved_rounds(contestants, args.repeats, "replica_steps")
    width = max(map(len, timings))
    for key, t in timings.items():
        print(f"  {key.ljust(width)}  {t['replica_steps_per_s']:>14,.0f} replica-steps/s")
    best = max(v["replica_steps_per_s"] for k, v in timings.items() if k != "numpy")
    ratio = best / timings["numpy"]["replica_steps_per_s"]
    print(f"best numba {best:.3g} steps/s ({'meets' if best >= TARGET_RATE else 'misses'} "
          f"{TARGET_RATE:.0e}); {ratio:.1f}× numpy ({'meets' if ratio >= TARGET_RATIO else 'misses'}"
          f" {TARGET_RATIO:g}×)")
    env_end = environment()
    print(f"load average at end: {env_end['load_average']}")
    config = {"N": N, "B": 1, "eta": ETA, "replicas": R, "steps": steps, "numpy_steps": np_steps,
              "numba_threads": threads, "repeats": args.repeats, "quick": args.quick,
              "target_rate": TARGET_RATE, "target_ratio": TARGET_RATIO}
    path = write_result(name, config=config, seed=seed, timings=timings, environment=env,
                        extra={"checks": checks, "checks_ok": ok, "best_rate": best,
                               "ratio": ratio, "load_average_end": env_end["load_average"]})
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    run_timed(main)
