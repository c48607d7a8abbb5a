"""SGD training throughput: sgdnoise (numba and numpy backends) vs a plain PyTorch CPU loop.

The network is the paper's MNIST MLP, 784-50-50-10 with ReLU, no biases and cross-entropy, trained
by minibatch SGD with batch size 50 and learning rate 0.1, once without momentum and once with
momentum 0.9 (PyTorch-style, ``momentum_style="pytorch"``, which is ``torch.optim.SGD``'s rule).
The data are MNIST-shaped random numbers (N × 784 standard normal inputs, 10 random labels,
seeded).  A PyTorch step costs the same whatever the values; the sgdnoise kernel skips samples
whose ReLU units are off when it forms a weight gradient, so its steps get cheaper as units die
(about half of the first layer's units are on at the start; with momentum 0.9 on these random
labels almost all of the second layer's switch off within the first epoch).

Contestants, all fed the same batches (random reshuffling, drawn once by the sampler ``train``
uses):

* ``sgdnoise numba``: ``train(..., backend="numba", num_threads=k, record_every=epochs)`` for
  k = 1 and 2, end to end: input validation, batch drawing, the compiled epochs and the
  full-data loss ``train`` records after the last epoch; and, to show what that costs, the
  compiled epochs alone;
* ``sgdnoise numba float32``: the same with ``TrainConfig(dtype="float32")``, end to end and
  epochs only.  It is given the inputs as a float32 array, as PyTorch float32 gets its float32
  tensor ready-made (a float64 x would add one conversion per call);
* ``sgdnoise numpy``: the same ``train`` call with the numpy reference backend (float64);
* ``PyTorch float64`` and ``PyTorch float32``: a plain loop of ``torch.nn.Linear(bias=False)``
  layers, ``CrossEntropyLoss`` and ``torch.optim.SGD`` (index the batch, zero the gradients,
  forward, backward, step), with ``torch.set_num_threads(2)``; float32 is how PyTorch is usually
  run.

Throughput is samples per second of wall time, best of ``--repeats`` rounds after a warm-up run
(numba compilation, PyTorch allocator); each round runs every contestant once, so that load from
elsewhere hits all of them alike.  Target: sgdnoise numba ≥ 2× PyTorch in the same precision
(float64 against PyTorch float64, float32 against PyTorch float32); the ratio tables give every
pairing.  Run it on an otherwise idle machine: with two threads on two busy cores, both PyTorch
and the threaded numba epoch wait for each other's threads at every step and slow down many
times.

Correctness, one epoch from the same initial weights and the same batch order (the exit status
is non-zero if a check fails):

* float64: sgdnoise numba, sgdnoise numpy, numba with k threads and PyTorch float64 must end at
  weights within 1e-8 (max abs difference; float64 round-off gives about 1e-15);
* float32: sgdnoise numba float32 against sgdnoise numpy float32, PyTorch float32, and itself
  with k threads (bit-identical), within 1e-4.  Why 1e-4: float32 rounds every operation to a
  relative u = 2⁻²⁴ ≈ 6e-8, and two float32 implementations sum in different orders, so a
  gradient entry (a sum of up to K = 784 products) differs between them by about √K·u ≈ 2e-6
  of its size, at most K·u ≈ 5e-5.  The largest entries are |ĝ| ≈ 0.5 here (RMS 0.02); the
  differences enter every update η·ĝ (η = 0.1) and add up like a random walk over the S ≤ 400
  steps of an epoch: √S·η·√K·u·|ĝ| ≈ 2e-6 for the largest entries (seen: at most 6e-7, also
  between float32 and float64 runs), or S·η·K·u·|ĝ| ≈ 1e-3 if every rounding error had the
  same sign, which they do not.  The limit 1e-4 is 50× the random-walk estimate and 500× below
  what one wrong step does to the weights (η·|ĝ| ≈ 5e-2).

Usage::

    python benchmarks/bench_training.py                 # N 20000, 2 epochs -> results/training.json
    python benchmarks/bench_training.py --quick         # N 4000, 1 epoch, seconds
    python benchmarks/bench_training.py --epochs 2 --N 20000 --repeats 3 --seed 0
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import (
    best_of,
    blas_summary,
    environment,
    run_timed,
    write_result,
)

from sgdnoise.sim.models import MLP
from sgdnoise.sim.models._losses import loss_targets
from sgdnoise.sim.sampling import BatchSampler
from sgdnoise.sim.training import TrainConfig, train

WIDTHS = (784, 50, 50, 10)
BATCH_SIZE = 50
ETA = 0.1
TARGET_RATIO = 2.0
TRAJECTORY_ATOL = 1e-8
TRAJECTORY_ATOL_FLOAT32 = 1e-4  # float32 round-off, see the module docstring
DTYPES = ("float64", "float32")


def make_data(N: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs (N, 784), labels (N,), initial weights (He), all from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, WIDTHS[0]))
    y = rng.integers(0, WIDTHS[-1], N)
    w0 = MLP(WIDTHS).init(rng)
    return x, y, w0


def config(momentum: float, epochs: int, seed: int, dtype: str = "float64") -> TrainConfig:
    return TrainConfig(eta=ETA, batch_size=BATCH_SIZE, num_epochs=epochs, momentum=momentum,
                       momentum_style="pytorch", sampler="reshuffle", seed=seed, dtype=dtype)


def epoch_batches(N: int, cfg: TrainConfig) -> list[list[np.ndarray]]:
    """The batches ``train`` draws for ``cfg``, epoch by epoch (same generator, same order)."""
    sampler = BatchSampler(N, cfg.batch_size, cfg.sampler, cfg.drop_last)
    rng = np.random.default_rng(cfg.seed)
    fixed = sampler.first_permutation(rng)
    return [sampler.epoch(rng, fixed) for _ in range(cfg.num_epochs)]


# --------------------------------------------------------------------------- PyTorch
class TorchLoop:
    """A plain PyTorch training loop of the same network on the same batches."""

    def __init__(self, torch: Any, x: np.ndarray, y: np.ndarray, dtype: Any,
                 batches: list[list[np.ndarray]]) -> None:
        self.torch = torch
        self.dtype = dtype
        self.X = torch.from_numpy(x).to(dtype)
        self.Y = torch.from_numpy(y.astype(np.int64))
        self.batches = [[torch.from_numpy(np.asarray(idx, dtype=np.int64)) for idx in epoch]
                        for epoch in batches]

    def network(self, w0: np.ndarray) -> Any:
        torch = self.torch
        layers: list[Any] = []
        start = 0
        for l in range(len(WIDTHS) - 1):
            fan_in, fan_out = WIDTHS[l], WIDTHS[l + 1]
            lin = torch.nn.Linear(fan_in, fan_out, bias=False, dtype=self.dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(
                    w0[start:start + fan_out * fan_in].reshape(fan_out, fan_in)))
            start += fan_out * fan_in
            layers.append(lin)
            if l < len(WIDTHS) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    def train(self, w0: np.ndarray, momentum: float, num_epochs: int) -> np.ndarray:
        torch = self.torch
        net = self.network(w0)
        opt = torch.optim.SGD(net.parameters(), lr=ETA, momentum=momentum)
        criterion = torch.nn.CrossEntropyLoss()
        X, Y = self.X, self.Y
        for epoch in self.batches[:num_epochs]:
            for idx in epoch:
                opt.zero_grad(set_to_none=True)
                loss = criterion(net(X[idx]), Y[idx])
                loss.backward()
                opt.step()
        return np.concatenate([p.detach().to(torch.float64).numpy().ravel()
                               for p in net.parameters()])


def numba_label(num_threads: int, dtype: str = "float64") -> str:
    precision = " float32" if dtype == "float32" else ""
    return f"sgdnoise numba{precision}, {num_threads} thread{'s' if num_threads > 1 else ''}"


# --------------------------------------------------------------------------- reporting
def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                    for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def timed_rounds(contestants: dict[str, Callable[[], Any]], samples: int,
                 repeats: int) -> dict[str, dict[str, Any]]:
    """Best wall time of each contestant over ``repeats`` rounds, each round running every
    contestant once (so that a burst of load elsewhere hits all of them alike)."""
    for fn in contestants.values():
        fn()  # warm-up: compilation, allocator, page faults
    runs: dict[str, list[float]] = {label: [] for label in contestants}
    for _ in range(repeats):
        for label, fn in contestants.items():
            seconds, _ = best_of(fn, 1)
            runs[label].append(seconds)
    return {label: {"seconds": min(r), "samples_per_s": samples / min(r), "runs": r}
            for label, r in runs.items()}


def kernel_epochs(model: MLP, x: np.ndarray, T: np.ndarray, w0: np.ndarray,
                  batches: list[list[np.ndarray]], momentum: float, num_threads: int) -> None:
    """The compiled epochs alone (no validation, no recorded loss), in the dtype of x, T, w0."""
    from sgdnoise.sim.models import _mlp_numba

    w, v = w0.copy(), np.zeros_like(w0)
    loss0 = None
    for epoch in batches:
        starts = np.arange(0, BATCH_SIZE * len(epoch) + 1, BATCH_SIZE)
        _, _, _, _, loss0 = _mlp_numba.sgd_epoch(
            model._kernel_spec(), w, v, x, T, np.concatenate(epoch), starts, lr=ETA,
            beta=momentum, heavy_ball=False, clip_norm=None, weight_decay=0.0,
            divergence_factor=1e6, loss0=loss0, num_threads=num_threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N 4000, 1 epoch: a smoke run")
    parser.add_argument("--N", type=int, default=None, help="samples (default 20000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per timed run (2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--numba-threads", default="1,2",
                        help="comma-separated thread counts of the numba backend (default 1,2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="result file name (default training)")
    args = parser.parse_args(argv)

    N = args.N if args.N is not None else (4000 if args.quick else 20000)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 2)
    name = args.name or ("training_quick" if args.quick else "training")
    if N < BATCH_SIZE or epochs < 1 or args.repeats < 1:
        parser.error("need N >= 50, epochs >= 1 and repeats >= 1")
    numba_threads = [int(k) for k in args.numba_threads.split(",")]
    if not numba_threads or min(numba_threads) < 1:
        parser.error("--numba-threads must list positive integers")
    steps = N // BATCH_SIZE
    samples = epochs * steps * BATCH_SIZE

    env = environment()
    versions: dict[str, Any] = {"numpy": np.__version__, "sgdnoise": env["sgdnoise"]}
    for mod in ("numba", "torch"):
        try:
            versions[mod] = importlib.import_module(mod).__version__
        except ImportError:
            versions[mod] = None
    print(f"sgdnoise {env['sgdnoise']}, numpy {env['numpy']} ({blas_summary(env)}), numba "
          f"{versions['numba']}, torch {versions['torch']}, {env['cpu_count']} CPUs: "
          f"{env['cpu_model']}")
    print(f"load average at start: {env['load_average']}")
    if versions["numba"] is None:
        print("numba is not installed: nothing to benchmark")
        return 1
    torch = importlib.import_module("torch") if versions["torch"] else None
    if torch is not None:
        torch.set_num_threads(args.torch_threads)

    x, y, w0 = make_data(N, args.seed)
    model = MLP(WIDTHS)
    run_config = {"widths": WIDTHS, "activation": "relu", "bias": False,
                  "loss": "cross_entropy", "N": N, "batch_size": BATCH_SIZE, "eta": ETA,
                  "momentum_style": "pytorch", "sampler": "reshuffle", "epochs": epochs,
                  "steps_per_epoch": steps, "repeats": args.repeats,
                  "torch_threads": args.torch_threads, "numba_threads": numba_threads,
                  "quick": args.quick, "target_ratio": TARGET_RATIO, "dtypes": DTYPES,
                  "trajectory_atol": {"float64": TRAJECTORY_ATOL,
                                      "float32": TRAJECTORY_ATOL_FLOAT32}}
    print(f"\n{'-'.join(map(str, WIDTHS))} ReLU MLP, no bias, cross-entropy; N = {N}, B = "
          f"{BATCH_SIZE}, eta = {ETA}, {epochs} epoch(s) = {epochs * steps} steps per run, best "
          f"of {args.repeats}; seed {args.seed}")

    x32 = x.astype(np.float32)
    T = loss_targets(model.loss_name, y, N, WIDTHS[-1])
    inputs = {"float64": (x, T, w0), "float32": (x32, T.astype(np.float32),
                                                 w0.astype(np.float32))}

    # ---- correctness: one epoch from the same weights and batches, in each precision
    trajectory: dict[str, dict[str, float]] = {}
    ok = True
    for dtype in DTYPES:
        limit = TRAJECTORY_ATOL if dtype == "float64" else TRAJECTORY_ATOL_FLOAT32
        x_in = inputs[dtype][0]
        name32 = " float32" if dtype == "float32" else ""
        for momentum in (0.0, 0.9):
            cfg = config(momentum, 1, args.seed, dtype)
            fast = train(model, w0, x_in, y, cfg, backend="numba").w
            ref = train(model, w0, x_in, y, cfg, backend="numpy").w
            diffs = {f"numba{name32} vs numpy{name32}": float(np.abs(fast - ref).max())}
            for k in numba_threads:
                if k > 1:
                    threaded = train(model, w0, x_in, y, cfg, backend="numba", num_threads=k).w
                    diffs[f"numba{name32} {k} threads vs 1 thread"] = float(
                        np.abs(threaded - fast).max())
            if torch is not None:
                loop = TorchLoop(torch, x, y, getattr(torch, dtype), epoch_batches(N, cfg))
                diffs[f"numba{name32} vs PyTorch {dtype}"] = float(
                    np.abs(fast - loop.train(w0, momentum, 1)).max())
            trajectory[f"{dtype}, momentum {momentum}"] = diffs
            for label, d in diffs.items():
                good = d <= limit
                ok &= good
                print(f"one epoch, momentum {momentum}: max |Δw| {label} = {d:.2e} "
                      f"({'ok' if good else 'FAIL'}, limit {limit:g})")

    # ---- throughput
    timings: dict[str, dict[str, Any]] = {}
    for momentum in (0.0, 0.9):
        cfg = config(momentum, epochs, args.seed)
        batches = epoch_batches(N, cfg)
        print(f"\ntiming, momentum {momentum} ...", flush=True)
        contestants: dict[str, Callable[[], Any]] = {}
        for dtype in DTYPES:
            cfg_d = config(momentum, epochs, args.seed, dtype)
            for k in numba_threads:
                contestants[numba_label(k, dtype)] = (
                    lambda c=cfg_d, k=k, x_in=inputs[dtype][0]: train(
                        model, w0, x_in, y, c, backend="numba", num_threads=k,
                        record_every=epochs))
        for dtype in DTYPES:
            for k in numba_threads:
                contestants[numba_label(k, dtype) + ", epochs only"] = (
                    lambda b=batches, m=momentum, k=k, a=inputs[dtype]: kernel_epochs(
                        model, a[0], a[1], a[2], b, m, k))
        contestants["sgdnoise numpy"] = (
            lambda cfg=cfg: train(model, w0, x, y, cfg, backend="numpy", record_every=epochs))
        if torch is not None:
            for label, dtype in (("PyTorch float64", torch.float64),
                                 ("PyTorch float32", torch.float32)):
                loop = TorchLoop(torch, x, y, dtype, batches)
                contestants[label] = lambda lp=loop, m=momentum: lp.train(w0, m, epochs)
        timings[f"momentum {momentum}"] = timed_rounds(contestants, samples, args.repeats)

    # ---- tables
    labels = list(timings["momentum 0.0"])
    rows = []
    for label in labels:
        row = [label]
        for key in timings:
            r = timings[key][label]
            row += [f"{r['samples_per_s']:,.0f}", f"{1e6 * r['seconds'] / (epochs * steps):.0f}"]
        rows.append(tuple(row))
    print(f"\nthroughput (samples/s) and time per step (µs), best of {args.repeats}")
    print_table(rows, ("", "samples/s", "µs/step", "samples/s (β=0.9)", "µs/step (β=0.9)"))

    contestants = [label for label in labels if not label.startswith("sgdnoise numba")]
    fast_labels = [label for label in labels if label.startswith("sgdnoise numba")]
    speedups: dict[str, dict[str, float]] = {}
    rows = []
    for fast in fast_labels:
        speedups[fast] = {}
        row = [fast]
        for key in timings:
            for other in contestants:
                ratio = (timings[key][fast]["samples_per_s"]
                         / timings[key][other]["samples_per_s"])
                speedups[fast][f"{key}, vs {other}"] = ratio
                row.append(f"{ratio:.2f}")
        rows.append(tuple(row))
    header = ("speed-up of",
              *[f"vs {o}" + (" (β=0.9)" if key != "momentum 0.0" else "")
                for key in timings for o in contestants])
    print(f"\nspeed-up (ratio of samples/s); target {TARGET_RATIO:g}× over PyTorch in the same "
          "precision")
    print_table(rows, header)
    verdicts = {f"{fast}, {k}": r for fast, d in speedups.items() for k, r in d.items()
                if "PyTorch" in k}
    # the target: train() end to end against PyTorch in the same precision
    same_precision = {}
    for dtype in DTYPES:
        for k in numba_threads:
            fast = numba_label(k, dtype)
            for key in timings:
                label = f"{fast}, {key}, vs PyTorch {dtype}"
                if label in verdicts:
                    same_precision[label] = verdicts[label]
    print("\nsame precision, train() end to end:")
    for label, ratio in same_precision.items():
        print(f"{label}: {ratio:.2f} ({'meets' if ratio >= TARGET_RATIO else 'misses'} "
              f"{TARGET_RATIO:g}×)")
    env_end = environment()
    print(f"load average at end: {env_end['load_average']}")

    path = write_result(name, config=run_config, seed=args.seed, timings=timings,
                        environment=env, extra={"versions": versions, "trajectory": trajectory,
                                                "speedups": verdicts,
                                                "speedups_same_precision": same_precision,
                                                "load_average_end": env_end["load_average"],
                                                "trajectory_ok": ok})
    print(f"\nwrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    run_timed(main)
