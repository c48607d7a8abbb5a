"""The ``sgdnoise`` command line."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from sgdnoise.cli import main


def test_verify_only_writes_results_json(tmp_path, capsys):
    path = tmp_path / "out" / "r.json"
    code = main(["verify", "--only", "A1", "A2", "--seed", "2", "--json", str(path)])
    assert code == 0
    data = json.loads(path.read_text())
    assert [c["id"] for c in data["claims"]] == ["A1", "A2"]
    assert all(c["verdict"] == "pass" and c["seed"] == 2 for c in data["claims"])
    prov = data["provenance"]
    assert prov["seed"] == 2 and prov["backend"] == "numpy" or prov["backend"] in ("numba", "cupy")
    assert "numpy" in prov["versions"]
    out = capsys.readouterr().out
    assert "verify: 2 passed, 0 failed" in out


def test_verify_list(capsys):
    assert main(["verify", "--list"]) == 0
    out = capsys.readouterr().out
    for cid in ("A1", "A2", "A3", "A5", "A7"):
        assert cid in out


def test_verify_unknown_id_is_a_usage_error(tmp_path, capsys):
    assert main(["verify", "--only", "Q9", "--json", str(tmp_path / "r.json")]) == 2
    assert "unknown claim id" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_verify_exit_code_reflects_failure(tmp_path, monkeypatch):
    from sgdnoise.verify import claims as claims_mod
    from sgdnoise.verify._registry import Claim, Outcome, Registry

    failing = Registry([Claim("X1", "s", "t", lambda ctx: Outcome("p", "m", "t", False))])
    monkeypatch.setattr(claims_mod, "default_registry", lambda: failing)
    assert main(["verify", "--json", str(tmp_path / "r.json")]) == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["claims"][0]["verdict"] == "FAIL"


def test_info_json():
    out = subprocess.run([sys.executable, "-m", "sgdnoise", "info", "--json"],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert "numpy" in data["backends"]


def test_bad_seed_rejected(capsys):
    assert main(["verify", "--seed", "-1"]) == 2


def _write_idx(path, array):
    import struct

    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.tobytes())


def test_table1_runs_on_local_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 25)
    images = rng.integers(0, 256, size=(250, 28, 28))
    images[:, :4, :4] = labels[:, None, None] * 25  # a learnable signal
    _write_idx(tmp_path / "train-images-idx3-ubyte", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    out = tmp_path / "out"
    code = main(["table1", "--root", str(tmp_path), "--classes", "3", "--samples-per-class", "20",
                 "--seeds", "1", "--epochs", "2", "--top", "50", "--hidden", "8", "8",
                 "--out", str(out)])
    assert code == 0
    data = json.loads((out / "table1.json").read_text())
    assert [(r["classes"], r["loss"]) for r in data["rows"]] == [(3, "cross_entropy"),
                                                                (3, "softmax_mse")]
    assert all(np.isfinite(r["gamma_emp"]) for r in data["rows"])
    assert (out / "table1.png").stat().st_size > 0 and "γ_emp" in (out / "table1.md").read_text()
    assert "| 3 | cross_entropy |" in capsys.readouterr().out


def test_table1_without_files_names_them(tmp_path, capsys):
    assert main(["table1", "--root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err


# ---------------------------------------------------------------------- verify --out, progress


def _registry(monkeypatch, *claims):
    from sgdnoise.verify import claims as claims_mod
    from sgdnoise.verify._registry import Registry

    monkeypatch.setattr(claims_mod, "default_registry", lambda: Registry(claims))


def test_verify_out_writes_results_figures_and_reports(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["verify", "--only", "A1", "A2", "--seed", "2", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in data["claims"]] == ["A1", "A2"]
    assert data["provenance"]["seed"] == 2 and data["provenance"]["status"] == "complete"
    assert data["provenance"]["claims"] == ["A1", "A2"] and "finished" in data["provenance"]
    assert (out / "figures").is_dir()
    md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "2 passed, 0 failed" in md and "## A1: pass" in md and "## A2: pass" in md
    assert '<section id="claim-A2">' in page and "<script" not in page
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("[")]
    assert len(lines) == 2
    assert re.fullmatch(r"\[1/2\] A1 … done in \d+\.\d s \(pass\)", lines[0])
    assert re.fullmatch(r"\[2/2\] A2 … done in \d+\.\d s \(pass\)", lines[1])
    assert f"report: {out / 'report.html'}" in captured.out
    assert "verify: 2 passed, 0 failed" in captured.out


def test_verify_quiet_suppresses_progress(tmp_path, capsys):
    assert main(["verify", "--only", "A1", "--quiet", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "[1/1]" not in captured.err and "done in" not in captured.err
    assert "verify: 1 passed, 0 failed" in captured.out


def test_verify_default_is_an_output_folder(tmp_path, monkeypatch):
    from sgdnoise.cli import DEFAULT_OUT

    monkeypatch.chdir(tmp_path)
    assert main(["verify", "--only", "A1", "--quiet"]) == 0
    out = tmp_path / DEFAULT_OUT
    assert {p.name for p in out.iterdir()} == {"results.json", "report.md", "report.html",
                                               "figures"}
    assert not (tmp_path / "results.json").exists()


def test_verify_json_alone_writes_no_report(tmp_path):
    path = tmp_path / "r.json"
    assert main(["verify", "--only", "A1", "--quiet", "--json", str(path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"r.json"}
    assert json.loads(path.read_text())["provenance"]["status"] == "complete"


def test_verify_out_and_json_write_the_same_results(tmp_path):
    path, out = tmp_path / "copy.json", tmp_path / "out"
    assert main(["verify", "--only", "A1", "--quiet", "--out", str(out), "--json",
                 str(path)]) == 0
    assert json.loads(path.read_text()) == json.loads((out / "results.json").read_text())


def test_verify_saves_after_each_claim_and_on_interrupt(tmp_path, monkeypatch, capsys):
    from sgdnoise.verify._registry import Claim, Outcome

    out = tmp_path / "out"
    seen = {}

    def first(ctx):
        (Path(ctx.out_dir) / "X1_curve.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
        return Outcome("p", "m", "t", True, {"x": 1.0})

    def second(ctx):  # what a reader sees while X2 runs
        seen["ids"] = [c["id"] for c in json.loads((out / "results.json").read_text())["claims"]]
        seen["md"] = (out / "report.md").read_text(encoding="utf-8")
        raise KeyboardInterrupt

    def third(ctx):
        raise AssertionError("not reached")

    _registry(monkeypatch, Claim("X1", "s", "t", first), Claim("X2", "s", "t", second),
              Claim("X3", "s", "t", third))
    assert main(["verify", "--out", str(out)]) == 130
    assert seen["ids"] == ["X1"]
    assert "1 passed, 0 failed, 2 not run" in seen["md"]
    data = json.loads((out / "results.json").read_text())
    assert [c["id"] for c in data["claims"]] == ["X1"]
    assert data["provenance"]["status"] == "interrupted"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "interrupted after 1 of 3 claim(s)" in md and "Not run: X2, X3." in md
    assert "![X1\\_curve.png](figures/X1_curve.png)" in md
    assert "data:image/png;base64," in (out / "report.html").read_text(encoding="utf-8")
    err = capsys.readouterr().err
    assert "[2/3] X2 … \n" in err and "interrupted" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_verify_replaces_stale_figures_of_the_claims_it_runs(tmp_path, monkeypatch):
    from sgdnoise.verify._registry import Claim, Outcome

    _registry(monkeypatch, Claim("X1", "s", "t", lambda ctx: Outcome("p", "m", "t", True)))
    assert main(["verify", "--quiet", "--out", str(tmp_path)]) == 0  # an earlier run
    figures = tmp_path / "figures"
    (figures / "X1_old.png").write_bytes(b"old")
    (figures / "Y1_other.png").write_bytes(b"other")
    assert main(["verify", "--quiet", "--out", str(tmp_path)]) == 0
    assert not (figures / "X1_old.png").exists()
    assert (figures / "Y1_other.png").read_bytes() == b"other"
    assert "X1_old" not in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_verify_error_claim_is_reported(tmp_path, monkeypatch, capsys):
    from sgdnoise.verify._registry import Claim

    def broken(ctx):
        raise RuntimeError("no <luck>")

    _registry(monkeypatch, Claim("X1", "s", "t", broken))
    assert main(["verify", "--out", str(tmp_path)]) == 1
    assert re.search(r"\[1/1\] X1 … done in \d+\.\d s \(ERROR\)", capsys.readouterr().err)
    assert "RuntimeError: no &lt;luck&gt;" in (tmp_path / "report.html").read_text()


def test_verify_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["verify", "--only", "A1", "--out", str(target)]) == 2
    assert f"output folder {str(target)!r} is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "x"


def _long_claim(ctx):
    from sgdnoise.verify._registry import Outcome

    for i in range(3):
        ctx.report(i + 1, 3, "parts")
    return Outcome("p", "m", "t", True)


def _on_a_terminal(monkeypatch):
    """Make :mod:`sgdnoise._progress` see a terminal (pytest captures stderr) and draw every
    update (tqdm redraws at most every 0.1 s by default)."""
    from sgdnoise import _progress

    real = _progress.progress_bar
    monkeypatch.setattr(_progress, "stderr_is_terminal", lambda stream=None: True)
    monkeypatch.setattr(_progress, "progress_bar",
                        lambda *args, **kwargs: real(*args, mininterval=0, **kwargs))


def test_verify_draws_a_bar_for_long_claims_on_a_terminal(tmp_path, monkeypatch, capsys):
    from sgdnoise.verify._registry import Claim

    _registry(monkeypatch, Claim("X1", "s", "statement", _long_claim))
    _on_a_terminal(monkeypatch)
    assert main(["verify", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert lines[0] == "[1/1] X1 … "                    # the bar starts on its own line
    frames = [f for f in re.split(r"[\r\n]", err) if "parts [" in f]
    assert frames and frames[-1].startswith("    X1   100%|")
    assert "3/3 parts [" in frames[-1]
    assert re.search(r"\r    X1   done in \d+\.\d s \(pass\)\n$", err)   # after the erased bar


def test_verify_draws_no_bar_off_a_terminal_and_quiet_silences_it(tmp_path, monkeypatch, capsys):
    from sgdnoise.verify._registry import Claim

    _registry(monkeypatch, Claim("X1", "s", "statement", _long_claim))
    assert main(["verify", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "parts" not in err and "\r" not in err              # a log: one line per claim
    assert re.fullmatch(r"\[1/1\] X1 … done in \d+\.\d s \(pass\)\n", err)
    _on_a_terminal(monkeypatch)
    assert main(["verify", "--quiet", "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""


def test_verify_closes_the_bar_of_an_interrupted_claim(tmp_path, monkeypatch, capsys):
    from sgdnoise.verify._registry import Claim

    def interrupted(ctx):
        ctx.report(1, 3, "parts")
        raise KeyboardInterrupt

    _registry(monkeypatch, Claim("X1", "s", "statement", interrupted))
    _on_a_terminal(monkeypatch)
    assert main(["verify", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "1/3 parts" in err and "interrupted" in err


def test_claim_check_passes_progress_to_the_run():
    from sgdnoise.verify._registry import Claim

    seen = []
    result = Claim("X1", "s", "t", _long_claim).check(
        backend="numpy", progress=lambda d, t, w: seen.append((d, t, w)))
    assert result.passed and seen == [(1, 3, "parts"), (2, 3, "parts"), (3, 3, "parts")]
