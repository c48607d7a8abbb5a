"""The ``sgdnoise`` command: ``verify`` (the main job) and ``info``."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from sgdnoise import backends


def _format_result(r, width: int = 100) -> str:  # noqa: ANN001
    head = f"{r.id:<4} {r.verdict:<5} {r.seconds:6.2f} s  {r.source}"
    lines = [head]
    fields = [("statement", r.statement), ("predicted", r.prediction),
              ("measured", r.measurement), ("tolerance", r.tolerance)]
    if r.error:
        fields.append(("error", r.error))
    for label, text in fields:
        wrapped = [w for line in text.splitlines() or [""]
                   for w in (textwrap.wrap(line, width=width - 17) or [""])]
        lines.append(f"    {label:<11}  {wrapped[0]}")
        lines.extend(f"    {'':<11}  {w}" for w in wrapped[1:])
    return "\n".join(lines)


def _cmd_verify(args: argparse.Namespace) -> int:
    from sgdnoise._io import provenance, write_json_atomic
    from sgdnoise.verify.claims import default_registry

    registry = default_registry()
    if args.list:
        for claim in registry:
            print(f"{claim.id:<4} {claim.source}")
            for w in textwrap.wrap(claim.statement, width=90):
                print(f"     {w}")
        return 0
    ids = args.only or registry.ids()
    try:
        claims = [registry.get(i) for i in ids]
        backend = backends.resolve(args.backend)
    except ValueError as exc:
        print(f"sgdnoise verify: {exc}", file=sys.stderr)
        return 2
    scale = "full" if args.full else "quick"
    print(f"sgdnoise verify: {len(claims)} claim(s), seed {args.seed}, backend {backend}, "
          f"scale {scale}")
    results = []
    figures = str(Path(args.json).resolve().parent / "figures")
    for i, claim in enumerate(claims, 1):
        print(f"[{i}/{len(claims)}] {claim.id} …", file=sys.stderr, flush=True)
        r = claim.check(seed=args.seed, backend=backend, scale=scale, out_dir=figures)
        results.append(r)
        print(_format_result(r), flush=True)
    payload = {
        "provenance": provenance(seed=args.seed, backend=backend, scale=scale,
                                 claims=[c.id for c in claims]),
        "claims": [r.to_dict() for r in results],
    }
    path = write_json_atomic(args.json, payload)
    n_pass = sum(r.passed for r in results)
    n_fail = len(results) - n_pass
    print(f"results written to {path}")
    print(f"verify: {n_pass} passed, {n_fail} failed")
    return 0 if n_fail == 0 else 1


def _cmd_table1(args: argparse.Namespace) -> int:
    from sgdnoise.verify.table1 import Table1Config, run_table1

    try:
        config = Table1Config(dataset=args.dataset, class_counts=tuple(args.classes),
                              samples_per_class=args.samples_per_class,
                              losses=tuple(args.losses), num_seeds=args.seeds,
                              num_epochs=args.epochs, top=args.top,
                              hidden=tuple(args.hidden))
        rows = run_table1(args.root, config, out_dir=args.out, seed=args.seed,
                          backend=args.backend,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (FileNotFoundError, ValueError) as exc:
        print(f"sgdnoise table1: {exc}", file=sys.stderr)
        return 2
    print((Path(args.out) / "table1.md").read_text(encoding="utf-8"), end="")
    print(f"written to {Path(args.out).resolve()} ({len(rows)} rows)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    data = backends.info()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"sgdnoise {data['sgdnoise']} on Python {data['python']} ({data['platform']})")
    print(f"  CPUs: {data['cpu_count']}")
    for mod in ("numpy", "scipy", "sympy", "hypothesis"):
        print(f"  {mod:<10} {data[mod]}")
    nb = data["numba"]
    print(f"  numba      {nb['version']} ({nb['threads']} threads)" if nb else "  numba      absent")
    cp = data["cupy"]
    if cp is None:
        print("  cupy       absent (pip install 'sgdnoise[gpu]')")
    elif "error" in cp:
        print(f"  cupy       {cp['version']}, no usable GPU: {cp['error']}")
    else:
        print(f"  cupy       {cp['version']}, GPU(s): {', '.join(cp['devices']) or 'none'}")
    if data.get("blas"):
        for b in data["blas"]:
            print(f"  BLAS       {b['internal_api']} {b['version']} ({b['num_threads']} threads)")
    print(f"  backends available: {', '.join(data['backends'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="sgdnoise",
        description="Check published theory of SGD noise and loss curvature against simulation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="run the registered claims and report verdicts")
    v.add_argument("--list", action="store_true", help="list the claims and exit")
    v.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids (e.g. A1 A3)")
    v.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    v.add_argument("--backend", default="auto", choices=[*backends.BACKENDS, "auto"],
                   help="compute backend (default auto)")
    v.add_argument("--full", action="store_true", help="paper-scale settings (slower)")
    v.add_argument("--json", default="results.json", metavar="PATH",
                   help="where to write the results (default ./results.json); figures go to "
                        "the folder 'figures' beside it")
    v.set_defaults(func=_cmd_verify)
    t = sub.add_parser("table1", help="the paper's Table-1 protocol on local MNIST-style files")
    t.add_argument("--root", required=True, help="folder with the data files (IDX, npz, ...)")
    t.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist", "cifar10"])
    t.add_argument("--classes", type=int, nargs="+", default=[3, 6, 10], metavar="C",
                   help="class counts 𝒞 (default 3 6 10)")
    t.add_argument("--samples-per-class", type=int, default=2000)
    t.add_argument("--losses", nargs="+", default=["cross_entropy", "softmax_mse"],
                   choices=["cross_entropy", "softmax_mse"])
    t.add_argument("--seeds", type=int, default=4)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--top", type=int, default=1000, help="fit window 𝒩 (default 1000)")
    t.add_argument("--hidden", type=int, nargs="+", default=[50, 50], metavar="WIDTH",
                   help="hidden widths (default 50 50; layer 1 is analysed)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--backend", default="auto", choices=["numpy", "numba", "auto"],
                   help="training backend (default auto: numba when installed)")
    t.add_argument("--out", default="table1", help="output folder (default ./table1)")
    t.set_defaults(func=_cmd_table1)
    i = sub.add_parser("info", help="show versions and available backends")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sgdnoise`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "seed", 0) is not None and getattr(args, "seed", 0) < 0:
        print("sgdnoise: --seed must be >= 0", file=sys.stderr)
        return 2
    return int(args.func(args))


__all__ = ["build_parser", "main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
