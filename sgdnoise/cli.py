"""The ``sgdnoise`` command: ``verify`` (the main job), ``table1``, ``run``, ``sweep`` and ``info``."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from sgdnoise import backends


def _format_result(r, width: int = 100) -> str:
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


#: Output folder of ``sgdnoise verify`` when neither ``--out`` nor ``--json`` is given.
DEFAULT_OUT = "sgdnoise-results"


class _Progress:
    """One line per claim on stderr: ``[3/11] B3 … done in 12.3 s (pass)``.

    The start of the line is written (and flushed) when the claim starts, the rest when it ends,
    so a log shows which claim is running without a line per second.
    """

    #: Seconds between two progress lines of one claim (the last part is always shown).
    EVERY = 5.0

    def __init__(self, total: int, *, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.claim_id, self.opened, self.last = "", False, 0.0

    def start(self, i: int, claim_id: str) -> None:
        self.claim_id, self.opened, self.last = claim_id, False, time.monotonic()
        if not self.quiet:
            print(f"[{i}/{self.total}] {claim_id} … ", end="", file=sys.stderr, flush=True)

    def part(self, done: int, total: int, what: str) -> None:
        """A long claim's progress: ``    B3  ########----  8/20 data draws``, at most every 5 s."""
        now = time.monotonic()
        if self.quiet or (now - self.last < self.EVERY and done < total):
            return
        if not self.opened:
            print(file=sys.stderr)
            self.opened = True
        filled = round(20 * done / max(total, 1))
        bar = "#" * filled + "-" * (20 - filled)
        print(f"    {self.claim_id:<4} {bar}  {done}/{total} {what}", file=sys.stderr, flush=True)
        self.last = now

    def done(self, seconds: float, verdict: str) -> None:
        if not self.quiet:
            lead = f"    {self.claim_id:<4} " if self.opened else ""
            print(f"{lead}done in {seconds:.1f} s ({verdict})", file=sys.stderr, flush=True)


def _cmd_verify(args: argparse.Namespace) -> int:
    import datetime as dt

    from sgdnoise._io import provenance, write_json_atomic
    from sgdnoise.verify.claims import default_registry
    from sgdnoise.verify.reports import claim_files, results_payload, write_report

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
    out_dir = args.out if args.out is not None or args.json is not None else DEFAULT_OUT
    if out_dir is not None:
        out_dir = Path(out_dir)
        figures = out_dir / "figures"
        try:
            figures.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"sgdnoise verify: cannot create the output folder {str(out_dir)!r}: {exc}",
                  file=sys.stderr)
            return 2
    else:  # --json only: figures beside the JSON file, no report (as before --out existed)
        figures = Path(args.json).resolve().parent / "figures"
    scale = "full" if args.full else "quick"
    print(f"sgdnoise verify: {len(claims)} claim(s), seed {args.seed}, backend {backend}, "
          f"scale {scale}")
    prov = provenance(seed=args.seed, backend=backend, scale=scale,
                      claims=[c.id for c in claims], status="running")
    results = []

    def save(status: str) -> list[Path]:
        """Rewrite every output file (each atomically) with the results so far."""
        prov["status"] = status
        if status != "running":
            prov["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        paths = []
        if out_dir is not None:
            paths += write_report(results, out_dir, provenance=prov, figures_dir=figures).values()
        if args.json is not None:
            paths.append(write_json_atomic(args.json, results_payload(results, provenance=prov)))
        return paths

    try:
        save("running")  # the files exist (and say what is planned) before the first claim
    except OSError as exc:
        print(f"sgdnoise verify: cannot write the results: {exc}", file=sys.stderr)
        return 2
    progress = _Progress(len(claims), quiet=args.quiet)
    try:
        for i, claim in enumerate(claims, 1):
            if out_dir is not None:  # a figure left by an earlier run must not pass for this one
                for stale in claim_files(figures, claim.id):
                    stale.unlink(missing_ok=True)
            progress.start(i, claim.id)
            r = claim.check(seed=args.seed, backend=backend, scale=scale, out_dir=str(figures),
                            progress=progress.part, layer=args.layer)
            progress.done(r.seconds, r.verdict)
            results.append(r)
            print(_format_result(r), flush=True)
            if i < len(claims):
                save("running")
    except KeyboardInterrupt:
        if not args.quiet:
            print(file=sys.stderr)
        paths = save("interrupted")
        done = ", ".join(r.id for r in results) or "none"
        print(f"sgdnoise verify: interrupted; the claims that finished ({done}) are in "
              f"{', '.join(map(str, paths))}", file=sys.stderr)
        return 130
    paths = save("complete")
    n_pass = sum(r.passed for r in results)
    n_fail = len(results) - n_pass
    print(f"results written to {', '.join(str(p) for p in paths if p.suffix == '.json')}")
    if out_dir is not None:
        print(f"report: {out_dir / 'report.html'} and {out_dir / 'report.md'}")
    print(f"verify: {n_pass} passed, {n_fail} failed")
    return 0 if n_fail == 0 else 1


def _cmd_table1(args: argparse.Namespace) -> int:
    from sgdnoise.verify.table1 import Table1Config, run_table1

    try:
        config = Table1Config(dataset=args.dataset, class_counts=tuple(args.classes),
                              samples_per_class=args.samples_per_class,
                              losses=tuple(args.losses), num_seeds=args.seeds,
                              num_epochs=args.epochs, top=args.top,
                              hidden=tuple(args.hidden), layer=args.layer)
        rows = run_table1(args.root, config, out_dir=args.out, seed=args.seed,
                          backend=args.backend,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (FileNotFoundError, ValueError) as exc:
        print(f"sgdnoise table1: {exc}", file=sys.stderr)
        return 2
    print((Path(args.out) / "table1.md").read_text(encoding="utf-8"), end="")
    print(f"written to {Path(args.out).resolve()} ({len(rows)} rows)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from sgdnoise.sim.scripted import RunConfig, run_config

    try:
        config = RunConfig.from_toml(args.config)
        overrides = {}
        if args.backend is not None:
            overrides["run.backend"] = args.backend
        if args.seed is not None:
            overrides["run.seed"] = args.seed
        config = config.with_overrides(overrides)
    except (OSError, ValueError) as exc:
        print(f"sgdnoise run: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out is not None else Path("runs") / config.run["name"]
    try:
        record = run_config(config, out_dir=out)
    except ValueError as exc:
        print(f"sgdnoise run: {exc}", file=sys.stderr)
        return 2
    s = record.summary
    print(f"sgdnoise run: {s['num_replicas']} replicas, {config.dynamics['num_steps']} steps, "
          f"backend {record.run.config['backend']}, seed {config.run['seed']}, "
          f"{record.timings['simulate_s']:.2f} s")
    for key, value in s.items():
        if key != "num_replicas":
            print(f"  {key:<24} {value}")
    print(f"written to {record.path}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from sgdnoise.sim.sweeps import SweepSpec, run_sweep

    try:
        spec = SweepSpec.from_toml(args.sweep)
        summary = run_sweep(spec, out_dir=args.out, scheduler=args.scheduler,
                            workers=args.workers, skip_failed=args.skip_failed,
                            progress=lambda line: print(line, flush=True))
    except (OSError, ValueError) as exc:
        print(f"sgdnoise sweep: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sgdnoise sweep: interrupted; finished points are kept in {args.out}; run the "
              f"same command again to resume", file=sys.stderr)
        return 130
    return 0 if summary["failed"] == 0 and summary["pending"] == 0 else 1


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


def _layer_argument(text: str) -> int | str:
    """``--layer``: ``all`` or a layer index."""
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'all' or a layer index; got {text!r}") from None


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
    v.add_argument("--out", metavar="DIR",
                   help="write results.json, figures/, report.md and report.html to DIR "
                        f"(default ./{DEFAULT_OUT} when --json is not given)")
    v.add_argument("--json", default=None, metavar="PATH",
                   help="also write the results JSON to PATH; without --out only this file is "
                        "written, with the figures in a folder 'figures' beside it")
    v.add_argument("--quiet", "-q", action="store_true",
                   help="no progress lines on stderr")
    v.add_argument("--layer", type=_layer_argument, default=None, metavar="all|INDEX",
                   help="what the trained-network claim A6 analyses: 'all' = the whole network "
                        "(every layer jointly), INDEX = one layer (default: every layer "
                        "separately)")
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
                   help="hidden widths (default 50 50)")
    t.add_argument("--layer", type=_layer_argument, default=1, metavar="all|INDEX",
                   help="the analysed layer (default 1), or 'all' for the whole network; large "
                        "ones use the matrix-free operators and the top --top eigenpairs")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--backend", default="auto", choices=["numpy", "numba", "auto"],
                   help="training backend (default auto: numba when installed)")
    t.add_argument("--out", default="table1", help="output folder (default ./table1)")
    t.set_defaults(func=_cmd_table1)
    r = sub.add_parser("run", help="run one simulation described by a TOML config")
    r.add_argument("config", metavar="CONFIG.toml", help="the configuration file")
    r.add_argument("--out", metavar="DIR",
                   help="output folder (default ./runs/<run.name>); replaced if it exists")
    r.add_argument("--backend", default=None, choices=[*backends.BACKENDS, "auto"],
                   help="override run.backend of the file")
    r.add_argument("--seed", type=int, default=None, help="override run.seed of the file")
    r.set_defaults(func=_cmd_run)
    w = sub.add_parser("sweep", help="run (or resume) a parameter sweep on Dask")
    w.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file")
    w.add_argument("--out", required=True, metavar="DIR",
                   help="sweep folder: DIR/sweep.json and DIR/points/<id>/")
    w.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler (default: a LocalCluster)")
    w.add_argument("--workers", type=int, default=None, metavar="N",
                   help="LocalCluster worker processes (default min(4, CPUs))")
    w.add_argument("--skip-failed", action="store_true",
                   help="do not retry points that failed in an earlier run")
    w.set_defaults(func=_cmd_sweep)
    from sgdnoise.verify.generalization import add_arguments, run_from_args

    g = sub.add_parser("generalization",
                       help="GD/SGD/GLD generalization comparison on the digits MLP (part B)")
    add_arguments(g)
    g.set_defaults(func=run_from_args)
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
