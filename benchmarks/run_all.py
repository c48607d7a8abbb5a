"""Run every benchmark one after the other and print one table of speed-ups against baselines.

Each benchmark script runs in its own process (so numba threads, BLAS pools and PyTorch do not
interfere), writes its JSON into ``benchmarks/results/`` as usual, and prints its own report; this
script then collects, from each JSON, every speed-up it recorded against a baseline measured in
the same run (keys containing ``ratio`` or ``speedup``) and prints them in one table, after the
machine's float64 GEMM rate measured at the start.  Nothing is compared with numbers from other
runs or machines.

Usage::

    python benchmarks/run_all.py            # full sizes, about 10 minutes on 2 cores
    python benchmarks/run_all.py --quick    # each script's --quick mode, about 2 minutes
    python benchmarks/run_all.py --only training toy_escape

Exit status: non-zero if any benchmark failed (including its correctness checks).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import environment, measure_gemm_rate, write_result

HERE = Path(__file__).resolve().parent
#: name → script; every script accepts --quick.
BENCHMARKS: dict[str, str] = {
    "layer_moments": "bench_layer_moments.py",
    "network_curvature": "bench_network_curvature.py",
    "large_curvature": "bench_large_curvature.py",
    "training": "bench_training.py",
    "toy_escape": "bench_toy_escape.py",
    "replica_sgd": "bench_replica_sgd.py",
    "first_passage": "bench_first_passage.py",
}
_WROTE = re.compile(r"wrote (\S+\.json)")
_KEYS = re.compile(r"ratio|speedup", re.IGNORECASE)


def _ratios(node: object, path: str = "") -> list[tuple[str, float]]:
    """Every numeric leaf under a key that names a ratio or speed-up, with its dotted path."""
    out: list[tuple[str, float]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and _KEYS.search(sub):
                out.append((sub, float(value)))
            elif isinstance(value, (dict, list)) and key not in ("environment", "config"):
                out.extend(_ratios(value, sub))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_ratios(value, f"{path}[{i}]"))
    return out


def run_one(name: str, quick: bool) -> tuple[int, Path | None, float]:
    """Run one benchmark script; return (exit status, its JSON path, seconds)."""
    cmd = [sys.executable, str(HERE / BENCHMARKS[name])] + (["--quick"] if quick else [])
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    found = _WROTE.findall(proc.stdout)
    path = Path(found[-1]) if found else None
    if path is not None and not path.is_absolute():
        path = HERE / path
    return proc.returncode, path, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each script's --quick mode")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    gemm = measure_gemm_rate()
    print(f"machine float64 GEMM rate: {gemm:.1f} GFLOP/s (n = 2000, best of 3)")
    rows: list[tuple[str, str, str]] = []
    failed: list[str] = []
    runs: dict[str, dict] = {}
    for name in names:
        status, path, seconds = run_one(name, args.quick)
        runs[name] = {"status": status, "seconds": seconds, "json": str(path) if path else None}
        if status != 0 or path is None or not path.exists():
            failed.append(name)
            rows.append((name, "FAILED" if status else "no result file", f"exit {status}"))
            continue
        ratios = _ratios(json.loads(path.read_text(encoding="utf-8")))
        runs[name]["ratios"] = dict(ratios)
        rows.extend((name, key, f"{value:,.2f}×") for key, value in ratios)
    width = max(len(r[1]) for r in rows) if rows else 10
    print(f"\nspeed-ups against baselines measured in the same runs "
          f"(GEMM {gemm:.1f} GFLOP/s{', quick sizes' if args.quick else ''})")
    print(f"{'benchmark':<18}  {'comparison':<{width}}  value")
    print("-" * (width + 32))
    for name, key, value in rows:
        print(f"{name:<18}  {key:<{width}}  {value}")
    path = write_result("all_quick" if args.quick else "all",
                        config={"quick": args.quick, "benchmarks": names}, seed=0,
                        timings={"gemm_gflops": gemm}, environment=environment(),
                        extra={"runs": runs, "failed": failed})
    print(f"\nwrote {path}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
