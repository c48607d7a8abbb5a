"""The command line never destroys a user's file, and reports user errors in one line.

Output folders (``run``, ``sweep``, ``verify``, ``generalization``, ``table1``), divergence (exit
code 3 everywhere), Ctrl-C, read-only folders, a closed standard output.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sgdnoise import cli
from sgdnoise.cli import main
from sgdnoise.sim import scripted
from sgdnoise.sim.scripted import load_run
from sgdnoise.sim.training import DivergenceError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "linreg_epoch.toml"

CONFIG = """
[problem]
kind = "linear_regression"
N = 32
d = 2
seed = 0

[noise]
kind = "sgd"
B = 4

[dynamics]
eta = 0.05
num_steps = 50
num_replicas = 4

[run]
name = "demo"
"""


@pytest.fixture
def config_file(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "demo.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------------- output folders
def test_run_never_deletes_a_users_folder(tmp_path, config_file, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.tex").write_text("x", encoding="utf-8")
    before = _tree(tmp_path)
    assert main(["run", str(config_file), "--out", str(d)]) == 2
    err = capsys.readouterr().err
    assert f"output folder {str(d)!r} is not empty" in err and "thesis.tex" in err
    assert "give another folder, or empty or remove" in err and "Traceback" not in err
    assert _tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "d"]   # no lock, no temp


def test_run_never_moves_a_users_file(tmp_path, config_file, capsys):
    f = tmp_path / "f"
    f.write_text("x", encoding="utf-8")
    assert main(["run", str(config_file), "--out", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert f.read_text(encoding="utf-8") == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "f"]


def test_run_refuses_the_current_folder_its_parents_and_the_configs_folder(
        tmp_path, config_file, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out, why in ((".", "the current folder"), ("..", "a folder above the current folder"),
                     (str(config_file.parent), f"the folder of {config_file.parent}"),
                     (os.sep, "the root of the file system")):
        assert main(["run", str(config_file), "--out", out]) == 2
        assert f"output folder {out!r} is {why}" in capsys.readouterr().err
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "work"]


def test_run_uses_an_empty_folder_and_replaces_only_an_earlier_run(tmp_path, config_file,
                                                                    capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["run", str(config_file), "--out", str(out)]) == 0
    assert main(["run", str(config_file), "--out", str(out), "--seed", "4"]) == 0
    assert load_run(out)["result"]["seed"] == 4
    (out / "notes.md").write_text("mine", encoding="utf-8")
    capsys.readouterr()
    assert main(["run", str(config_file), "--out", str(out), "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "holds the output of an earlier sgdnoise run but also files it did not write " \
           "(notes.md)" in err
    assert load_run(out)["result"]["seed"] == 4 and (out / "notes.md").read_text() == "mine"


def test_every_command_refuses_a_users_folder(tmp_path, monkeypatch, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.tex").write_text("x", encoding="utf-8")
    sweep = tmp_path / "s.toml"
    sweep.write_text(CONFIG + '\n[sweep]\ngrid = { "dynamics.eta" = [0.01] }\n', "utf-8")
    for argv, command in (
            (["sweep", str(sweep), "--out", str(d)], "sweep"),
            (["verify", "--only", "A1", "--out", str(d)], "verify"),
            (["generalization", "--out", str(d), "--steps", "1"], "generalization"),
            (["table1", "--root", str(tmp_path), "--out", str(d)], "table1")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"is not empty and is not the output of an earlier sgdnoise {command} " \
               f"(it holds thesis.tex)" in err, err
    assert _tree(d) == {"thesis.tex": b"x"}
    # verify --json never overwrites a file that is not its own results file
    assert main(["verify", "--only", "A1", "--json", str(d / "thesis.tex")]) == 2
    assert "exists and is not the output of an earlier sgdnoise verify" in \
        capsys.readouterr().err
    assert _tree(d) == {"thesis.tex": b"x"}
    monkeypatch.chdir(d)
    assert main(["verify", "--only", "A1", "--out", "."]) == 2
    assert "output folder '.' is the current folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- divergence
def _diverging_example(tmp_path: Path) -> Path:
    """The example file with a learning rate far beyond stability (the reproducer)."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("eta = 0.05", "eta = 50.0")
    assert "eta = 50.0" in text
    path = tmp_path / "diverge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_run_that_diverges_exits_3_with_one_line_and_writes_nothing(tmp_path):
    config = _diverging_example(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sgdnoise", "run", str(config), "--out",
                           str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("sgdnoise run: diverged: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["diverge.toml"]


def _raise_divergence(*_args, **_kwargs):
    raise DivergenceError(12, 0, float("nan"), 1e4, "the loss is not finite")


def test_every_command_reports_divergence_with_exit_code_3(tmp_path, monkeypatch, capsys):
    from sgdnoise.verify import generalization, table1

    monkeypatch.setattr(generalization, "compare_noise", _raise_divergence)
    monkeypatch.setattr(table1, "run_table1", _raise_divergence)
    for argv, prefix in ((["generalization", "--out", str(tmp_path / "g")], "generalization"),
                         (["table1", "--root", str(tmp_path), "--out", str(tmp_path / "t")],
                          "sgdnoise table1")):
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"{prefix}: diverged: ") and err.count("\n") == 1, err
        assert "step 12" in err
    # whatever a command does not catch itself is caught by main
    monkeypatch.setattr(cli, "_cmd_info", _raise_divergence)
    assert main(["info"]) == 3
    assert capsys.readouterr().err.startswith("sgdnoise info: diverged: ")


def test_verify_claim_that_diverges_exits_3_unless_another_claim_failed(tmp_path, monkeypatch,
                                                                       capsys):
    from sgdnoise.verify import claims as claims_mod
    from sgdnoise.verify._registry import Claim, Outcome, Registry

    ok = Claim("X1", "s", "t", lambda ctx: Outcome("p", "m", "t", True))
    bad = Claim("X2", "s", "t", _raise_divergence)
    wrong = Claim("X3", "s", "t", lambda ctx: Outcome("p", "m", "t", False))
    for claims, code in (((ok, bad), 3), ((ok, bad, wrong), 1)):
        monkeypatch.setattr(claims_mod, "default_registry", lambda c=claims: Registry(c))
        out = tmp_path / f"out{code}"
        assert main(["verify", "--quiet", "--out", str(out)]) == code
        err = capsys.readouterr().err
        assert "sgdnoise verify: X2 diverged: training diverged at step 12" in err


def test_sweep_point_that_diverges_is_recorded_and_the_sweep_exits_3(tmp_path, capsys):
    pytest.importorskip("distributed")
    sweep = tmp_path / "s.toml"
    sweep.write_text(CONFIG + '\n[sweep]\ngrid = { "dynamics.eta" = [0.05, 1e12] }\n', "utf-8")
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1"]) == 3
    captured = capsys.readouterr()
    lines = [ln for ln in captured.out.splitlines() if ln.startswith("[")]
    assert len(lines) == 2 and any(" failed " in ln and " diverged: " in ln for ln in lines)
    assert "2 points" in captured.out and "(1 of the failed diverged)" in captured.out
    summary = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert (summary["done"], summary["failed"], summary["diverged"]) == (1, 1, 1)
    failed = [p for p in summary["points"] if p["status"] == "failed"]
    assert failed[0]["error"].startswith("diverged: ")
    assert not (out / "sweep.lock").exists()


# ------------------------------------------------------------- interrupts, read-only, pipes
def test_ctrl_c_during_run_exits_130_and_keeps_the_earlier_run(tmp_path, config_file,
                                                              monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(["run", str(config_file), "--out", str(out)]) == 0
    before = _tree(out)

    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    for name in ("simulate", "write_run_folder"):
        with monkeypatch.context() as m:
            m.setattr(scripted, name, interrupt)
            assert main(["run", str(config_file), "--out", str(out), "--seed", "9"]) == 130
        err = capsys.readouterr().err
        assert err == f"sgdnoise run: interrupted; nothing was written ({out} is as it was)\n"
        assert _tree(out) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "out"]  # no temp, lock


def test_swap_puts_the_earlier_run_back_when_the_new_one_cannot_be_moved_in(tmp_path,
                                                                           monkeypatch):
    target, tmp = tmp_path / "run", tmp_path / ".run.tmp-x"
    target.mkdir()
    (target / "result.json").write_text("old")
    tmp.mkdir()
    rename = os.rename

    def failing(src, dst):
        if Path(src) == tmp:
            raise KeyboardInterrupt
        rename(src, dst)

    monkeypatch.setattr(scripted.os, "rename", failing)
    with pytest.raises(KeyboardInterrupt):
        scripted._swap_in(tmp, target)
    assert (target / "result.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.tmp-x", "run"]


def test_read_only_output_folder_is_named(tmp_path, config_file, monkeypatch, capsys):
    from sgdnoise import _io

    ro = tmp_path / "ro"
    ro.mkdir()
    access = os.access
    monkeypatch.setattr(_io.os, "access", lambda p, mode: Path(p) != ro and access(p, mode))
    for argv in (["run", str(config_file), "--out", str(ro / "run")],
                 ["verify", "--only", "A1", "--out", str(ro)],
                 ["generalization", "--out", str(ro / "g")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.endswith(f"cannot be written: {str(ro)!r} is on a read-only file system or "
                            f"not writable by you; give another folder\n")
    assert list(ro.iterdir()) == []


def test_unwritable_output_folder_is_a_one_line_error(tmp_path, config_file, monkeypatch,
                                                      capsys):
    from sgdnoise import _io

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self.path))

    monkeypatch.setattr(_io.FolderLock, "acquire", denied)
    out = tmp_path / "ro" / "run"
    assert main(["run", str(config_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"sgdnoise run: cannot write to the output folder {str(out)!r}: " \
                  f"Permission denied ({tmp_path / 'ro' / '.run.lock'})\n"


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (not root)")
def test_read_only_folders_give_exit_2_and_no_traceback(tmp_path, config_file):
    ro = tmp_path / "ro"
    ro.mkdir()
    sweep = tmp_path / "s.toml"
    sweep.write_text(CONFIG + '\n[sweep]\ngrid = { "dynamics.eta" = [0.01] }\n', "utf-8")
    ro.chmod(0o555)
    try:
        for argv in (["run", str(config_file), "--out", str(ro / "run")],
                     ["sweep", str(sweep), "--out", str(ro)],
                     ["verify", "--only", "A1", "--out", str(ro)]):
            proc = subprocess.run([sys.executable, "-m", "sgdnoise", *argv], text=True,
                                  capture_output=True, timeout=120, check=False)
            assert proc.returncode == 2, proc.stderr
            assert "Traceback" not in proc.stderr
            assert f"cannot be written: {str(ro)!r} is on a read-only file system or not " \
                   f"writable by you" in proc.stderr
    finally:
        ro.chmod(0o755)


def test_closed_standard_output_exits_quietly():
    with subprocess.Popen([sys.executable, "-m", "sgdnoise", "verify", "--list"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()   # the reader goes away before anything is written (| head -0)
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, err
    assert err == ""          # no traceback, no "Exception ignored"


def test_broken_pipe_in_process_returns_141(monkeypatch):
    class Closed:
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["verify", "--list"]) == 141


def test_run_into_a_folder_another_run_is_writing_is_refused(tmp_path, config_file, capsys):
    from sgdnoise._io import FolderLock

    out = tmp_path / "out"
    with FolderLock(tmp_path / ".out.lock", folder=out, command="sgdnoise run"):
        assert main(["run", str(config_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"output folder {str(out)!r} is in use by sgdnoise run (process {os.getpid()}" in err
    assert not out.exists() and not (tmp_path / ".out.lock").exists()
    assert main(["run", str(config_file), "--out", str(out)]) == 0
