"""The ``sgdnoise`` command: ``verify`` (the main job), ``table1``, ``run``, ``sweep`` and ``info``.

Every command exits with one of the codes below (the table in ``docs/cli.md``): :data:`EXIT_OK`,
:data:`EXIT_FAILED` (claims or sweep points failed), :data:`EXIT_USAGE` (a usage,
configuration, input or output-folder error), :data:`EXIT_DIVERGED` (the dynamics diverged),
:data:`EXIT_INTERRUPTED` (Ctrl-C) and :data:`EXIT_BROKEN_PIPE` (the reader of standard output
went away, as in ``sgdnoise verify --list | head -1``).  A user error is one line on standard
error, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sgdnoise import backends

if TYPE_CHECKING:
    from sgdnoise._io import OutputLayout

#: Success.
EXIT_OK = 0
#: Claims failed (``verify``) or sweep points failed (``sweep``).
EXIT_FAILED = 1
#: A usage, configuration, input or output-folder error (argparse's code as well).
EXIT_USAGE = 2
#: The dynamics diverged (``DivergenceError``); for ``verify`` and ``sweep``: every claim or
#: point that failed diverged.
EXIT_DIVERGED = 3
#: Interrupted with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Standard output was closed by its reader (128 + SIGPIPE, as for a program killed by it).
EXIT_BROKEN_PIPE = 141


def _err(line: str) -> None:
    """One line on standard error (which may itself be a closed pipe)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _diverged(exc: BaseException) -> str:
    """``diverged: <message>`` on one line."""
    return "diverged: " + " ".join(str(exc).split())


def _os_error(exc: OSError, folder: object = None) -> str:
    """An OSError as one line, naming the file and, when given, the output folder."""
    what = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    if folder is not None:
        return f"cannot write to the output folder {str(folder)!r}: {what}{where}"
    return f"{what}{where}"


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
    """One line per claim on stderr, ``[3/11] B3 … done in 12.3 s (pass)``, and a bar for long ones.

    The start of the line is written (and flushed) when the claim starts, the rest when it ends,
    so a log shows which claim is running without a line per second.  A claim that reports its
    parts (:meth:`RunContext.report <sgdnoise.verify.RunContext.report>`) gets a bar below that
    line from :func:`sgdnoise._progress.progress_bar`: only on a terminal, never with ``quiet``.
    """

    def __init__(self, total: int, *, quiet: bool, bars: bool | None = None) -> None:
        self.total, self.quiet = total, quiet
        self.bars = False if quiet else bars
        self.claim_id, self.bar, self.drawn = "", None, False

    def start(self, i: int, claim_id: str) -> None:
        self.claim_id, self.bar, self.drawn = claim_id, None, False
        if not self.quiet:
            print(f"[{i}/{self.total}] {claim_id} … ", end="", file=sys.stderr, flush=True)

    def part(self, done: int, total: int, what: str) -> None:
        """A long claim's progress: ``    B3   40%|████      | 8/20 data draws [00:04<00:06]``."""
        if self.quiet:
            return
        if self.bar is None:
            from sgdnoise._progress import progress_bar, stderr_is_terminal

            self.drawn = stderr_is_terminal() if self.bars is None else self.bars
            if self.drawn:
                print(file=sys.stderr, flush=True)   # the bar goes below "[i/n] ID … "
            label = what.replace("{", "{{").replace("}", "}}")
            self.bar = progress_bar(
                total, desc=f"    {self.claim_id:<4}", enabled=self.drawn,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} " + label
                           + " [{elapsed}<{remaining}]")
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        """Erase a bar left open (the claim was interrupted)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def done(self, seconds: float, verdict: str) -> None:
        self.close()
        if not self.quiet:
            lead = f"    {self.claim_id:<4} " if self.drawn else ""
            print(f"{lead}done in {seconds:.1f} s ({verdict})", file=sys.stderr, flush=True)


def _cmd_verify(args: argparse.Namespace) -> int:
    import datetime as dt

    from sgdnoise._io import (
        OutputFolderError,
        check_output_file,
        check_output_folder,
        provenance,
        write_json_atomic,
    )
    from sgdnoise.verify.claims import default_registry
    from sgdnoise.verify.reports import (
        VERIFY_OUTPUT,
        claim_files,
        is_results_payload,
        results_payload,
        write_report,
    )

    registry = default_registry()
    if args.list:
        for claim in registry:
            print(f"{claim.id:<4} {claim.source}")
            for w in textwrap.wrap(claim.statement, width=90):
                print(f"     {w}")
        return EXIT_OK
    ids = args.only or registry.ids()
    try:
        claims = [registry.get(i) for i in ids]
        backend = backends.resolve(args.backend)
    except ValueError as exc:
        print(f"sgdnoise verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out_dir = args.out if args.out is not None or args.json is not None else DEFAULT_OUT
    try:
        if args.json is not None:
            check_output_file(args.json, is_results_payload, "sgdnoise verify")
        if out_dir is not None:
            check_output_folder(out_dir, VERIFY_OUTPUT)
    except OutputFolderError as exc:
        print(f"sgdnoise verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if out_dir is not None:
        out_dir = Path(out_dir)
        figures = out_dir / "figures"
        try:
            figures.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"sgdnoise verify: cannot create the output folder {str(out_dir)!r}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
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
        print(f"sgdnoise verify: cannot write the results: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
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
        progress.close()
        if not args.quiet:
            print(file=sys.stderr)
        paths = save("interrupted")
        done = ", ".join(r.id for r in results) or "none"
        print(f"sgdnoise verify: interrupted; the claims that finished ({done}) are in "
              f"{', '.join(map(str, paths))}", file=sys.stderr)
        return EXIT_INTERRUPTED
    paths = save("complete")
    n_pass = sum(r.passed for r in results)
    n_fail = len(results) - n_pass
    print(f"results written to {', '.join(str(p) for p in paths if p.suffix == '.json')}")
    if out_dir is not None:
        print(f"report: {out_dir / 'report.html'} and {out_dir / 'report.md'}")
    print(f"verify: {n_pass} passed, {n_fail} failed")
    diverged = [r for r in results if (r.error or "").startswith("DivergenceError:")]
    for r in diverged:
        _err(f"sgdnoise verify: {r.id} {_diverged(r.error.split(':', 1)[1])}")
    if n_fail == 0:
        return EXIT_OK
    return EXIT_DIVERGED if len(diverged) == n_fail else EXIT_FAILED


def _is_table1_result(payload: object) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("rows"), list) \
        and isinstance(payload.get("provenance"), dict)


def _table1_output() -> OutputLayout:
    """The output folder of ``table1`` (built on first use: ``_io`` is imported lazily)."""
    from sgdnoise._io import OutputLayout

    return OutputLayout(command="sgdnoise table1", marker="table1.json",
                        recognise=_is_table1_result,
                        files=("table1.json", "table1.md", "table1.png"))


def _cmd_table1(args: argparse.Namespace) -> int:
    from sgdnoise._io import check_output_folder
    from sgdnoise.sim.training import DivergenceError
    from sgdnoise.verify.table1 import Table1Config, run_table1

    try:
        config = Table1Config(dataset=args.dataset, class_counts=tuple(args.classes),
                              samples_per_class=args.samples_per_class,
                              losses=tuple(args.losses), num_seeds=args.seeds,
                              num_epochs=args.epochs, top=args.top,
                              hidden=tuple(args.hidden), layer=args.layer)
        check_output_folder(args.out, _table1_output(), protect=[args.root])
        rows = run_table1(args.root, config, out_dir=args.out, seed=args.seed,
                          backend=args.backend,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    except DivergenceError as exc:
        print(f"sgdnoise table1: {_diverged(exc)}", file=sys.stderr)
        return EXIT_DIVERGED
    except (FileNotFoundError, ValueError) as exc:  # missing or damaged data files included
        print(f"sgdnoise table1: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sgdnoise table1: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    print((Path(args.out) / "table1.md").read_text(encoding="utf-8"), end="")
    print(f"written to {Path(args.out).resolve()} ({len(rows)} rows)")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from sgdnoise._io import check_output_folder
    from sgdnoise.sim.scripted import RUN_OUTPUT, RunConfig, run_config
    from sgdnoise.sim.training import DivergenceError

    try:
        config = RunConfig.from_toml(args.config)
        overrides = {}
        if args.backend is not None:
            overrides["run.backend"] = args.backend
        if args.seed is not None:
            overrides["run.seed"] = args.seed
        config = config.with_overrides(overrides)
    except OSError as exc:
        print(f"sgdnoise run: cannot read {args.config}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"sgdnoise run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out is not None else Path("runs") / config.run["name"]
    try:
        check_output_folder(out, RUN_OUTPUT, protect=[Path(args.config).parent])
        record = run_config(config, out_dir=out)
    except DivergenceError as exc:
        print(f"sgdnoise run: {_diverged(exc)}", file=sys.stderr)
        return EXIT_DIVERGED
    except ValueError as exc:  # the output folder may not be used (or is locked), or the config
        print(f"sgdnoise run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sgdnoise run: {_os_error(exc, out)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"sgdnoise run: interrupted; nothing was written ({out} is as it was)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    s = record.summary
    print(f"sgdnoise run: {s['num_replicas']} replicas, {config.dynamics['num_steps']} steps, "
          f"backend {record.run.config['backend']}, seed {config.run['seed']}, "
          f"{record.timings['simulate_s']:.2f} s")
    for key, value in s.items():
        if key != "num_replicas":
            print(f"  {key:<24} {value}")
    print(f"written to {record.path}")
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    from sgdnoise._io import FolderLockedError, check_output_folder
    from sgdnoise.sim.sweeps import SWEEP_OUTPUT, SweepSpec, run_sweep

    try:
        spec = SweepSpec.from_toml(args.sweep)
        check_output_folder(args.out, SWEEP_OUTPUT, protect=[Path(args.sweep).parent])
        summary = run_sweep(spec, out_dir=args.out, scheduler=args.scheduler,
                            workers=args.workers, skip_failed=args.skip_failed,
                            progress=lambda line: print(line, flush=True),
                            warn=lambda line: _err(f"sgdnoise sweep: {line}"))
    except FolderLockedError as exc:
        print(f"sgdnoise sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sgdnoise sweep: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"sgdnoise sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"sgdnoise sweep: interrupted; finished points are kept in {args.out}; run the "
              f"same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary["failed"] == 0 and summary["pending"] == 0:
        return EXIT_OK
    if summary["pending"] == 0 and summary["failed"] == summary["diverged"]:
        return EXIT_DIVERGED
    return EXIT_FAILED


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
                   help="no progress lines or bars on stderr (bars are only drawn on a "
                        "terminal)")
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
                   help="output folder (default ./runs/<run.name>): a new or empty folder, or "
                        "the folder of an earlier run, which is replaced")
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


def _broken_pipe() -> int:
    """Standard output's reader went away: send what is left to /dev/null (so the final flush
    at exit cannot fail again) and exit quietly, as the Python documentation recommends for
    SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # standard output is not a file descriptor (e.g. captured in a test)
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sgdnoise`` console script; returns the exit status.

    Errors a user can cause never end in a traceback: whatever a command does not report itself
    is reported here as one line on standard error with its exit code (:data:`EXIT_USAGE` for
    an output folder that may not be used or a file-system error, :data:`EXIT_DIVERGED` for
    ``DivergenceError``, :data:`EXIT_INTERRUPTED` for Ctrl-C, :data:`EXIT_BROKEN_PIPE` when
    standard output is closed by its reader).
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "seed", 0) is not None and getattr(args, "seed", 0) < 0:
        print("sgdnoise: --seed must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    name = f"sgdnoise {args.command}"
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
    except BrokenPipeError:
        return _broken_pipe()
    except KeyboardInterrupt:
        _err(f"{name}: interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        _err(f"{name}: {_os_error(exc)}")
        return EXIT_USAGE
    except Exception as exc:
        from sgdnoise._io import OutputFolderError
        from sgdnoise.sim.training import DivergenceError

        if isinstance(exc, DivergenceError):
            _err(f"{name}: {_diverged(exc)}")
            return EXIT_DIVERGED
        if isinstance(exc, OutputFolderError):
            _err(f"{name}: {exc}")
            return EXIT_USAGE
        raise
    return code


__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_DIVERGED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
