"""Sweep folders: one sweep at a time (the lock), stale locks, damaged sweep.json, foreign files."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed")

from sgdnoise._io import FolderLock, FolderLockedError, OutputFolderError, read_lock
from sgdnoise.cli import main
from sgdnoise.sim.sweeps import LOCK_FILE, SweepSpec, load_sweep, run_sweep

BASE = {
    "problem": {"kind": "linear_regression", "N": 32, "d": 2, "seed": 0},
    "noise": {"kind": "sgd", "B": 4},
    "dynamics": {"eta": 0.05, "num_steps": 50, "num_replicas": 4},
}
SLOW_SWEEP = """
[problem]
kind = "linear_regression"
N = 128
d = 4
seed = 0

[noise]
kind = "sgd"
B = 4

[dynamics]
eta = 0.02
num_steps = 4000
num_replicas = 32

[sweep]
grid = { "run.seed" = [0, 1, 2] }
"""


def spec(**changes):
    return SweepSpec.from_dict({**BASE, **changes, "sweep": {"grid": {"dynamics.eta":
                                                                       [0.01, 0.02]}}})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_sweep_on_the_same_folder_is_refused_while_the_first_runs(tmp_path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SLOW_SWEEP, encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sgdnoise", "sweep", str(sweep), "--out", str(out),
           "--workers", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    try:
        deadline = time.monotonic() + 60
        while not read_lock(out / LOCK_FILE) and first.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        owner = read_lock(out / LOCK_FILE)
        assert owner and owner["pid"] == first.pid, first.poll()
        # the second process: refused at once, naming the first; nothing of the first touched
        assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by sgdnoise sweep (process {first.pid} on host " \
               f"{socket.gethostname()}, started {owner['started']})" in err
        assert read_lock(out / LOCK_FILE) == owner
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, stdout + stderr
    assert sum(ln.startswith("[") for ln in stdout.splitlines()) == 3   # each point ran once
    assert "failed" not in stdout.replace("0 failed", "")
    assert not (out / LOCK_FILE).exists()
    assert load_sweep(out)["done"] == 3


def test_stale_lock_of_a_killed_sweep_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    (out / LOCK_FILE).write_text(json.dumps(
        {"pid": dead, "host": socket.gethostname(), "started": "2020-01-01T00:00:00+00:00",
         "command": "sgdnoise sweep", "token": "old"}), encoding="utf-8")
    notes, lines = [], []
    summary = run_sweep(spec(), out_dir=out, workers=1, processes=False, warn=notes.append,
                        progress=lines.append)
    assert summary["done"] == 2
    assert notes == [(f"taking over the lock of sgdnoise sweep (process {dead} on host "
                      f"{socket.gethostname()}, started 2020-01-01T00:00:00+00:00), which is "
                      f"no longer running")]
    assert not (out / LOCK_FILE).exists()


def test_lock_is_released_on_error_and_on_ctrl_c(tmp_path):
    out = tmp_path / "out"

    def interrupt(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec(), out_dir=out, workers=1, processes=False, progress=interrupt)
    assert not (out / LOCK_FILE).exists()
    run_sweep(spec(), out_dir=out, workers=1, processes=False)
    with pytest.raises(ValueError, match="different base configuration"):
        run_sweep(spec(dynamics={**BASE["dynamics"], "num_steps": 51}), out_dir=out)
    assert not (out / LOCK_FILE).exists()
    with FolderLock(out / LOCK_FILE, folder=out, command="sgdnoise sweep"), \
            pytest.raises(FolderLockedError, match=f"process {os.getpid()} on host"):
        run_sweep(spec(), out_dir=out, workers=1, processes=False)


def test_truncated_sweep_json_names_the_file_and_how_to_recover(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        '[problem]\nkind = "linear_regression"\nN = 32\nd = 2\n[noise]\nkind = "sgd"\nB = 4\n'
        '[dynamics]\neta = 0.05\nnum_steps = 50\nnum_replicas = 4\n'
        '[sweep]\ngrid = { "dynamics.eta" = [0.01, 0.02] }\n', encoding="utf-8")
    out = tmp_path / "out"
    run_sweep(sweep, out_dir=out, workers=1, processes=False)
    text = (out / "sweep.json").read_text(encoding="utf-8")
    (out / "sweep.json").write_text(text[: len(text) // 2], encoding="utf-8")
    stamps = {p.name: (p / "result.json").stat().st_mtime_ns for p in (out / "points").iterdir()}

    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{str(out / 'sweep.json')!r} is not valid JSON" in err and "Traceback" not in err
    assert "delete that sweep.json and run the same command again" in err
    with pytest.raises(ValueError, match="sweep.json' is not valid JSON"):
        load_sweep(out)

    (out / "sweep.json").unlink()                      # the advice: rebuilt from the points
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0
    assert "2 points, 2 already done" in capsys.readouterr().out
    assert {p.name: (p / "result.json").stat().st_mtime_ns
            for p in (out / "points").iterdir()} == stamps
    assert load_sweep(out)["done"] == 2

    (out / "sweep.json").unlink()                      # but not with another base config
    with pytest.raises(ValueError, match="has no sweep.json and its point .* was computed with "
                                         "a different configuration"):
        run_sweep(spec(dynamics={**BASE["dynamics"], "num_steps": 51}), out_dir=out)


def test_sweep_folder_with_foreign_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "out"
    run_sweep(spec(), out_dir=out, workers=1, processes=False)
    point = next((out / "points").iterdir())
    (point / "my_plot.png").write_bytes(b"mine")
    with pytest.raises(OutputFolderError, match=rf"did not write \(points/{point.name}/"
                                                rf"my_plot\.png\)"):
        run_sweep(spec(), out_dir=out, workers=1, processes=False)
    assert (point / "my_plot.png").read_bytes() == b"mine"
    (point / "my_plot.png").unlink()
    (out / "points" / "notes").mkdir()
    with pytest.raises(OutputFolderError, match=r"did not write \(points/notes/\)"):
        run_sweep(spec(), out_dir=out)
    assert not (out / LOCK_FILE).exists()
