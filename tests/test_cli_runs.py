"""``sgdnoise run`` and ``sgdnoise sweep``: CLI = Python API, overrides, and kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sgdnoise.cli import main
from sgdnoise.sim.scripted import RunConfig, load_run, run_config

CONFIG = """
[problem]
kind = "linear_regression"
N = 64
d = 3
seed = 1

[noise]
kind = "sgd"
B = 4
scheme = "iid"

[dynamics]
eta = 0.05
num_steps = 200
num_replicas = 6
beta = 0.3

[measure.record]
every = 20

[measure.first_passage]
loss = 0.2

[run]
seed = 1
name = "demo"
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_cli_run_equals_python_api_and_overrides_beat_the_file(config_file, tmp_path, capsys):
    assert main(["run", str(config_file), "--out", str(tmp_path / "cli"), "--seed", "5",
                 "--backend", "numpy"]) == 0
    assert f"written to {tmp_path / 'cli'}" in capsys.readouterr().out
    api = run_config(RunConfig.from_toml(config_file).with_overrides({"run.seed": 5}),
                     out_dir=tmp_path / "api")
    cli = load_run(tmp_path / "cli")
    assert cli["result"]["seed"] == 5 and cli["config"].run["seed"] == 5
    assert cli["config"] == api.config
    for name in ("theta", "trajectory", "first_passage", "velocity"):
        np.testing.assert_array_equal(cli["arrays"][name], getattr(api.run, name))


def test_cli_run_default_folder_is_runs_name(config_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config_file)]) == 0
    assert load_run(tmp_path / "runs" / "demo")["result"]["seed"] == 1


@pytest.mark.parametrize(("text", "message"), [
    (CONFIG.replace('scheme = "iid"', 'scheme = "shuffle"'),
     "noise.scheme: 'shuffle' is not one of replacement, iid, reshuffle, shuffle_once"),
    (CONFIG + "colour = 1\n", "run.colour: unknown key"),
    ("[problem", "not valid TOML"),
])
def test_cli_run_reports_bad_configs(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_sweep_reports_bad_sweep_files(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(CONFIG + '\n[sweep]\ngrid = { "dynamics.eta" = [] }\n', encoding="utf-8")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "sweep.grid['dynamics.eta']: expected a non-empty list" in capsys.readouterr().err


# ------------------------------------------------------------------------- kill and resume
KILL_SWEEP = """
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
num_steps = 3000
num_replicas = 32

[measure.moments]
after = 1500

[sweep]
grid = { "run.seed" = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }
"""


def _done(points: Path) -> dict[str, tuple[int, str]]:
    """id → (mtime of result.json, start time recorded in point.json) of finished points."""
    out = {}
    for folder in points.iterdir():
        if not folder.name.startswith(".") and (folder / "result.json").exists():
            info = json.loads((folder / "point.json").read_text(encoding="utf-8"))
            out[folder.name] = ((folder / "result.json").stat().st_mtime_ns, info["started"])
    return out


def test_sweep_killed_and_resumed_computes_every_point_exactly_once(tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(KILL_SWEEP, encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sgdnoise", "sweep", str(sweep), "--out", str(out),
           "--workers", "2"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env)
    points = out / "points"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if points.is_dir() and len(_done(points)) >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, the scheduler and the worker processes
        proc.wait()
        log.close()
    before = _done(points)
    assert 3 <= len(before) < 12, (tmp_path / "first.log").read_text()

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120,
                           check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"12 points, {len(before)} already done" in again.stdout
    # the killed sweep left its lock; its process is gone, so the lock is taken over
    assert f"sgdnoise sweep: taking over the lock of sgdnoise sweep (process {proc.pid} " \
           in again.stderr
    assert not (out / "sweep.lock").exists()
    ran = [ln for ln in again.stdout.splitlines() if ln.startswith("[")]
    assert len(ran) == 12 - len(before)           # only the missing points ran
    assert not {ln.split()[1] for ln in ran} & set(before)

    after = _done(points)
    assert sorted(p.name for p in points.iterdir()) == sorted(after)  # no temp folders left
    assert len(after) == 12
    assert {k: after[k] for k in before} == before   # finished points untouched
    summary = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert (summary["done"], summary["failed"], summary["pending"]) == (12, 0, 0)
    seeds = set()
    for folder in points.iterdir():
        run = load_run(folder)
        assert run["arrays"]["theta"].shape == (32, 4)
        assert np.isfinite(run["arrays"]["theta_var"]).all()
        seeds.add(run["result"]["seed"])
    assert seeds == set(range(12))
