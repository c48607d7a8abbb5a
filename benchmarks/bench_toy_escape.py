"""Escape from the sharp minimum of the spec-B3 toy: the replica engine vs a per-step PyTorch loop.

The experiment (spec claim B3, the paper's Fig. 2): the two-basin 2-D toy on N = 100 data points
(``toy_data``), replicas started at (1, 1), η = 0.005, 500 steps of the parameter-form dynamics
θ ← θ − η∇L(θ) + ε, ε ~ N(0, S) with S the full per-sample gradient covariance Σ̂ at the current
point rescaled to Tr S = 0.01 (``langevin("full")``, ``form="parameter"``).  Every step needs all
N per-sample gradients (for ∇L and Σ̂) and a 2 × 2 eigendecomposition, so the throughput is
counted in per-sample gradient evaluations per second, R · steps · N / wall time.

Contestants:

* ``sgdnoise numba, k threads`` (k = 1, 2): ``simulate(..., execution=Execution("numba",
  num_threads=k))`` end to end with R replicas (``--replicas``);
* ``sgdnoise numpy``: the array-module reference, on ``--numpy-replicas`` replicas (its cost per
  evaluation does not depend on R once R is in the hundreds);
* ``PyTorch loop``: a reimplementation of the original approach (authors' code, repository
  uuujf/SGDNoise): one replica at a time, each step builds the per-sample losses as torch
  tensors, takes every per-sample gradient with ``torch.autograd.grad`` (one backward pass per
  sample), forms the covariance, rescales it, takes ``torch.linalg.eigh`` and adds the noise —
  on ``--torch-replicas`` replicas × ``--torch-steps`` steps, extrapolated per evaluation.
  Without PyTorch this baseline is skipped with a message.

Correctness (exit status 1 on a mismatch): numba (1 and 2 threads) and numpy end at the same θ
to 1e-10 on the same replicas, 1 and 2 threads bit for bit; the PyTorch loop, fed the engine's
Philox normals (``sgdnoise.sim.philox.normals``), ends where the engine does to 1e-9.

Targets printed: numba ≥ 1e8 evaluations/s; numba ≥ 1000× the PyTorch loop.  Also printed: the
escape frequency (both coordinates < −0.5 at the end).  Timings are best of ``--repeats`` rounds
after a warm-up (numba compilation), each round running every contestant once.

Usage::

    python benchmarks/bench_toy_escape.py              # R 20000 -> results/toy_escape.json
    python benchmarks/bench_toy_escape.py --quick      # R 2000, a smoke run
    python benchmarks/bench_toy_escape.py --replicas 50000 --repeats 3 --seed 0
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import environment, interleaved_rounds, run_timed, write_result

from sgdnoise.sim import philox
from sgdnoise.sim.dynamics import Execution, Toy2DProblem, langevin, simulate
from sgdnoise.sim.models import toy_data

N = 100
ETA = 0.005
NUM_STEPS = 500
NOISE_TRACE = 0.01
START = (1.0, 1.0)
TARGET_RATE = 1e8
TARGET_RATIO = 1000.0
ENGINE_TOL = 1e-10
TORCH_TOL = 1e-9


def run_engine(problem: Toy2DProblem, R: int, seed: int, backend: str, num_steps: int = NUM_STEPS,
               num_threads: int | None = None) -> np.ndarray:
    """Final θ (R, 2) of the B3 dynamics with full-covariance noise."""
    run = simulate(problem, langevin("full"), eta=ETA, num_steps=num_steps, num_replicas=R,
                   seed=seed, theta0=np.array(START), form="parameter", noise_trace=NOISE_TRACE,
                   execution=Execution(backend=backend, num_threads=num_threads))
    return run.theta


class TorchLoop:
    """Per-step PyTorch loop: per-sample autograd for the covariance (the original approach)."""

    def __init__(self, torch: Any, x: np.ndarray) -> None:
        self.torch = torch
        self.x = torch.from_numpy(x)
        c = np.cos(np.pi / 4)
        s = np.sin(np.pi / 4)
        self.c, self.s = float(c), float(s)

    def per_sample_losses(self, w: Any) -> Any:
        torch = self.torch
        p = w[0] - self.x[:, 0] - 1
        q = w[1] - self.x[:, 1] - 1
        f1 = 10 * (self.c * p - self.s * q) ** 2 + 100 * (self.c * p + self.s * q) ** 2
        f2 = (w[0] - self.x[:, 0] + 1) ** 2 + (w[1] - self.x[:, 1] + 1) ** 2
        return torch.minimum(f1, f2)

    def run(self, seed: int, replicas: range, num_steps: int) -> np.ndarray:
        torch = self.torch
        out = []
        for r in replicas:
            w = torch.tensor(START, dtype=torch.float64)
            for k in range(num_steps):
                w = w.detach().requires_grad_(True)
                losses = self.per_sample_losses(w)
                grads = torch.stack([torch.autograd.grad(losses[p], w, retain_graph=True)[0]
                                     for p in range(N)])
                g_mean = grads.mean(dim=0)
                centred = grads - g_mean
                Sigma = centred.T @ centred / N
                S = Sigma * (NOISE_TRACE / torch.trace(Sigma))
                lam, V = torch.linalg.eigh(S)
                z = torch.from_numpy(philox.normals(seed, r, philox.NOISE, 2 * k, 2))
                eps = V @ (torch.sqrt(torch.clamp(lam, min=0)) * (V.T @ z))
                w = (w - ETA * g_mean + eps).detach()
            out.append(w.numpy())
        return np.array(out)


def label(num_threads: int) -> str:
    return f"sgdnoise numba, {num_threads} thread{'s' if num_threads > 1 else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="R 2000: a smoke run")
    parser.add_argument("--replicas", type=int, default=None, help="R for numba (20000)")
    parser.add_argument("--numpy-replicas", type=int, default=None, help="R for numpy (500)")
    parser.add_argument("--torch-replicas", type=int, default=2)
    parser.add_argument("--torch-steps", type=int, default=None, help="steps per torch replica")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--numba-threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="result file name (default toy_escape)")
    args = parser.parse_args(argv)

    R = args.replicas or (2000 if args.quick else 20000)
    R_np = args.numpy_replicas or (100 if args.quick else 500)
    torch_steps = args.torch_steps or (5 if args.quick else 20)
    name = args.name or ("toy_escape_quick" if args.quick else "toy_escape")
    threads = [int(k) for k in args.numba_threads.split(",")]
    if min(R, R_np, args.repeats, args.torch_replicas, torch_steps, *threads) < 1:
        parser.error("sizes, repeats and thread counts must be >= 1")

    env = environment()
    try:
        torch = importlib.import_module("torch")
        torch.set_num_threads(args.torch_threads)
    except ImportError:
        torch = None
    print(f"sgdnoise {env['sgdnoise']}, numpy {env['numpy']}, torch "
          f"{getattr(torch, '__version__', None)}, {env['cpu_count']} CPUs: {env['cpu_model']}")
    print(f"load average at start: {env['load_average']}")

    x = toy_data(np.random.default_rng(args.seed), N=N)
    problem = Toy2DProblem(x)
    seed = args.seed
    config = {"N": N, "eta": ETA, "num_steps": NUM_STEPS, "noise_trace": NOISE_TRACE,
              "noise": "langevin('full'), form='parameter'", "replicas": R,
              "numpy_replicas": R_np, "torch_replicas": args.torch_replicas,
              "torch_steps": torch_steps, "numba_threads": threads, "repeats": args.repeats,
              "quick": args.quick, "target_rate": TARGET_RATE, "target_ratio": TARGET_RATIO}
    print(f"\nB3 toy: N = {N}, eta = {ETA}, {NUM_STEPS} steps, Tr S = {NOISE_TRACE}, full "
          f"covariance noise; R = {R} (numba), {R_np} (numpy); seed {seed}")

    # ---- correctness
    ok = True
    checks: dict[str, float] = {}
    small = min(R_np, 200)
    ref = run_engine(problem, small, seed, "numpy")
    for k in threads:
        fast = run_engine(problem, small, seed, "numba", num_threads=k)
        checks[f"numba {k} vs numpy"] = float(np.abs(fast - ref).max())
    if len(threads) > 1:
        a = run_engine(problem, small, seed, "numba", num_threads=threads[0])
        b = run_engine(problem, small, seed, "numba", num_threads=threads[-1])
        checks["numba threads bitwise (0 = identical)"] = float(np.abs(a - b).max())
        ok &= bool(np.array_equal(a, b))
    loop = TorchLoop(torch, x) if torch is not None else None
    if loop is not None:
        t_ref = run_engine(problem, args.torch_replicas, seed, "numpy", num_steps=torch_steps)
        t_out = loop.run(seed, range(args.torch_replicas), torch_steps)
        checks["torch loop vs engine"] = float(np.abs(t_out - t_ref).max())
    for key, value in checks.items():
        limit = TORCH_TOL if "torch" in key else ENGINE_TOL
        good = value <= limit
        ok &= good
        print(f"max |Δθ| {key}: {value:.2e} ({'ok' if good else 'FAIL'}, limit {limit:g})")

    # ---- throughput
    contestants: dict[str, tuple[Callable[[], Any], int]] = {}
    for k in threads:
        contestants[label(k)] = (lambda k=k: run_engine(problem, R, seed, "numba", num_threads=k),
                                 R * NUM_STEPS * N)
    contestants["sgdnoise numpy"] = (lambda: run_engine(problem, R_np, seed, "numpy"),
                                     R_np * NUM_STEPS * N)
    if loop is not None:
        contestants["PyTorch loop"] = (
            lambda: loop.run(seed, range(args.torch_replicas), torch_steps),
            args.torch_replicas * torch_steps * N)
    else:
        print("torch is not installed: the PyTorch-loop baseline is skipped")
    for fn, _ in contestants.values():
        fn()                                     # warm-up: compilation, allocator
    timings, last = interleaved_rounds(contestants, args.repeats, "evaluations")
    print(f"\nper-sample gradient evaluations per second, best of {args.repeats}")
    width = max(map(len, timings))
    for key, t in timings.items():
        print(f"  {key.ljust(width)}  {t['evaluations_per_s']:>14,.0f}  ({t['seconds']:.3f} s for "
              f"{t['evaluations']:,} evaluations)")

    ratios: dict[str, float] = {}
    best_numba = max((timings[label(k)]["evaluations_per_s"], label(k)) for k in threads)
    for other in timings:
        if other.startswith("sgdnoise numba"):
            continue
        ratios[f"{best_numba[1]} vs {other}"] = best_numba[0] / timings[other]["evaluations_per_s"]
    print()
    for key, ratio in ratios.items():
        print(f"speed-up {key}: {ratio:,.1f}×")
    rate_ok = best_numba[0] >= TARGET_RATE
    print(f"target numba >= {TARGET_RATE:.0e}/s: {best_numba[0]:.3g} "
          f"({'meets' if rate_ok else 'misses'})")
    torch_key = f"{best_numba[1]} vs PyTorch loop"
    if torch_key in ratios:
        print(f"target >= {TARGET_RATIO:g}x the PyTorch loop: {ratios[torch_key]:,.0f}x "
              f"({'meets' if ratios[torch_key] >= TARGET_RATIO else 'misses'})")
    theta = last[label(threads[-1])]
    escaped = float(np.mean((theta[:, 0] < -0.5) & (theta[:, 1] < -0.5)))
    print(f"escape frequency (both coordinates < -0.5 after {NUM_STEPS} steps): {escaped:.4f} "
          f"of {R} replicas")
    env_end = environment()
    print(f"load average at end: {env_end['load_average']}")
    path = write_result(name, config=config, seed=seed, timings=timings, environment=env,
                        extra={"checks": checks, "checks_ok": ok, "ratios": ratios,
                               "escape_frequency": escaped,
                               "load_average_end": env_end["load_average"]})
    print(f"\nwrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    run_timed(main)
