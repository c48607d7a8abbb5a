"""Sweeps: expansion and ids, validation, and a run on an in-process Dask cluster."""

import json
import re

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("pandas")

from sgdnoise.sim.scripted import load_run
from sgdnoise.sim.sweeps import SweepSpec, load_sweep, point_id, run_sweep, to_dataframe

BASE = {
    "problem": {"kind": "linear_regression", "N": 32, "d": 2, "seed": 0},
    "noise": {"kind": "sgd", "B": 4},
    "dynamics": {"eta": 0.05, "num_steps": 50, "num_replicas": 4},
}


def spec(**sweep):
    return SweepSpec.from_dict({**BASE, "sweep": sweep})


def test_grid_expansion_and_stable_ids():
    s = spec(grid={"dynamics.eta": [0.01, 0.02, 0.05], "noise.B": [1, 4]})
    pts = s.points()
    assert len(pts) == 6
    assert [p.overrides for p in pts[:2]] == [{"dynamics.eta": 0.01, "noise.B": 1},
                                              {"dynamics.eta": 0.01, "noise.B": 4}]
    assert pts[1].config.noise["B"] == 4 and pts[1].config.dynamics["eta"] == 0.01
    # the id depends on the overrides only: not on key order, nor on the other points
    assert point_id({"noise.B": 4, "dynamics.eta": 0.01}) == pts[1].id
    assert spec(grid={"noise.B": [4], "dynamics.eta": [0.01]}).points()[0].id == pts[1].id
    assert len({p.id for p in pts}) == 6
    # regression value: the hash of the canonical JSON must never change between versions
    assert point_id({"dynamics.eta": 0.01}) == point_id({"dynamics.eta": 1e-2})
    assert re.fullmatch(r"[0-9a-f]{12}", pts[0].id)


def test_random_draws_are_reproducible_and_in_range():
    rnd = {"dynamics.eta": {"log_uniform": [1e-3, 1e-1]}, "noise.B": {"int_uniform": [1, 8]},
           "noise.scheme": {"choice": ["iid", "reshuffle"]}}
    a = spec(random=rnd, num_samples=20, seed=3).overrides()
    b = spec(random=rnd, num_samples=5, seed=3).overrides()
    assert a[:5] == b                     # draw j does not depend on num_samples
    assert a != spec(random=rnd, num_samples=20, seed=4).overrides()
    etas = np.array([o["dynamics.eta"] for o in a])
    assert ((etas >= 1e-3) & (etas <= 1e-1)).all()
    assert {o["noise.B"] for o in a} <= set(range(1, 9))
    assert {o["noise.scheme"] for o in a} <= {"iid", "reshuffle"}
    grid_and_random = spec(grid={"dynamics.num_steps": [10, 20]}, random=rnd, num_samples=3)
    assert len(grid_and_random.points()) == 6


def test_base_file_and_inline_sections(tmp_path):
    (tmp_path / "base.toml").write_text(
        '[problem]\nkind = "toy2d"\nN = 10\n[noise]\nkind = "gd"\n'
        '[dynamics]\neta = 0.001\nnum_steps = 5\n', encoding="utf-8")
    (tmp_path / "s.toml").write_text(
        'base = "base.toml"\n[dynamics]\nnum_steps = 7\n'
        '[sweep]\ngrid = { "dynamics.eta" = [0.001, 0.002] }\n', encoding="utf-8")
    s = SweepSpec.from_toml(tmp_path / "s.toml")
    assert s.base.problem["kind"] == "toy2d" and s.base.dynamics["num_steps"] == 7
    assert [p.config.dynamics["eta"] for p in s.points()] == [0.001, 0.002]


BAD = [
    ({"grid": {"eta": [0.1]}}, "sweep.grid['eta']: 'eta' is not a config key of the form"),
    ({"grid": {"dynamics.eta": []}}, "sweep.grid['dynamics.eta']: expected a non-empty list"),
    ({"grid": {"dynamics.eta": [-1.0]}}, "sweep point dynamics.eta=-1.0: dynamics.eta: must be"),
    ({"grid": {"noise.colour": ["red"]}}, "noise.colour: unknown key"),
    ({"random": {"dynamics.eta": {"normal": [0, 1]}}},
     "sweep.random['dynamics.eta']: 'normal' is not one of uniform, log_uniform"),
    ({"random": {"dynamics.eta": {"log_uniform": [0.0, 1.0]}}},
     "sweep.random['dynamics.eta'].log_uniform: expected [low, high] with 0 < low <= high"),
    ({"random": {"dynamics.eta": {"uniform": [0.1, 0.2]}}, "num_samples": 0},
     "sweep.num_samples: expected an integer >= 1"),
    ({"grid": {"dynamics.eta": [0.1]}, "num_samples": 3}, "sweep.num_samples: needs sweep.random"),
    ({"grid": {"dynamics.eta": [0.1]}, "random": {"dynamics.eta": {"uniform": [0.1, 0.2]}}},
     "sweep.random['dynamics.eta']: already in sweep.grid"),
    ({"grid": {"dynamics.eta": [0.1]}, "colour": 1}, "sweep.colour: unknown key"),
    ({}, "sweep: give sweep.grid and/or sweep.random"),
]


@pytest.mark.parametrize(("sweep", "message"), BAD)
def test_invalid_sweep_names_the_key(sweep, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        spec(**sweep)


def test_sweep_bar_counts_the_points_only_where_asked(tmp_path, capsys):
    s = spec(grid={"dynamics.eta": [0.01, 0.02]})
    lines = []
    run_sweep(s, out_dir=tmp_path / "a", workers=1, processes=False, progress=lines.append,
              bar=True)
    err = capsys.readouterr().err
    assert "sweep" in err and "0/2 [" in err and err.endswith("\r")  # drawn, then erased
    assert sum(ln.startswith("[") for ln in lines) == 2               # the lines are unchanged
    run_sweep(s, out_dir=tmp_path / "b", workers=1, processes=False)  # default: not a terminal
    assert capsys.readouterr().err == ""


def test_sweep_runs_records_failures_and_resumes(tmp_path):
    # η = 1e12 (η λ_max ≫ 2) overflows θ to inf within 50 steps: DivergenceError, recorded with its
    # traceback, while the other points complete
    s = spec(grid={"dynamics.eta": [0.01, 0.05, 1e12], "noise.B": [2, 4]})
    out = tmp_path / "sw"
    lines = []
    summary = run_sweep(s, out_dir=out, workers=2, processes=False, progress=lines.append)
    assert (summary["total"], summary["done"], summary["failed"], summary["pending"]) == \
        (6, 4, 2, 0)
    assert lines[-1].startswith("sweep: 4 done, 2 failed, 0 pending of 6")
    assert sum(re.match(r"\[\d/6\] [0-9a-f]{12} (done|failed)", ln) is not None
               for ln in lines) == 6
    by_eta = {}
    for p in s.points():
        folder = out / "points" / p.id
        by_eta.setdefault(p.overrides["dynamics.eta"], []).append(folder)
        info = json.loads((folder / "point.json").read_text(encoding="utf-8"))
        assert info["id"] == p.id and info["overrides"] == p.overrides
    for folder in by_eta[1e12]:
        err = json.loads((folder / "error.json").read_text(encoding="utf-8"))
        assert err["error_type"] == "DivergenceError"
        assert "Traceback" in err["traceback"] and "simulate" in err["traceback"]
        assert not (folder / "result.json").exists()
    for folder in by_eta[0.01] + by_eta[0.05]:
        rec = load_run(folder)
        assert rec["arrays"]["theta"].shape == (4, 2)
        assert not (folder / "error.json").exists()
    assert not list((out / "points").glob(".tmp-*"))

    df = to_dataframe(out)
    assert df.shape[0] == 6
    assert set(df.columns) >= {"id", "status", "dynamics.eta", "noise.B", "loss_final_mean",
                               "error"}
    assert (df["status"] == "done").sum() == 4
    assert df.loc[df["status"] == "failed", "error"].str.startswith("DivergenceError").all()

    # resume: finished points are not touched; failed ones are kept with skip_failed ...
    stamps = {f: f.joinpath("point.json").stat().st_mtime_ns
              for f in (out / "points").iterdir()}
    lines.clear()
    again = run_sweep(s, out_dir=out, workers=2, processes=False, skip_failed=True,
                      progress=lines.append)
    assert lines == ["sweep: 6 points, 4 already done, 2 failed kept, 0 to run"]
    assert (again["done"], again["failed"]) == (4, 2)
    assert {f: f.joinpath("point.json").stat().st_mtime_ns for f in stamps} == stamps
    # ... and retried (failing again) without it
    lines.clear()
    again = run_sweep(s, out_dir=out, workers=1, processes=False, progress=lines.append)
    assert lines[0] == "sweep: 6 points, 4 already done, 0 failed kept, 2 to run"
    assert (again["done"], again["failed"]) == (4, 2)
    for f in by_eta[0.01] + by_eta[0.05]:
        assert f.joinpath("point.json").stat().st_mtime_ns == stamps[f]
    assert load_sweep(out)["failed"] == 2


def test_output_folder_of_another_base_is_refused(tmp_path):
    s = spec(grid={"dynamics.eta": [0.01]})
    run_sweep(s, out_dir=tmp_path, workers=1, processes=False)
    other = SweepSpec.from_dict({**BASE, "dynamics": {"eta": 0.01, "num_steps": 51},
                                 "sweep": {"grid": {"dynamics.eta": [0.01]}}})
    with pytest.raises(ValueError, match="out_dir: .* different base configuration"):
        run_sweep(other, out_dir=tmp_path, workers=1, processes=False)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_sweep(s, out_dir=tmp_path, workers=0)


def test_unreadable_base_file_is_a_clear_error(tmp_path):
    (tmp_path / "base.toml").write_text("[problem\nkind = 'toy2d'\n", encoding="utf-8")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('base = "base.toml"\n[sweep]\ngrid = { "dynamics.eta" = [0.01] }\n',
                     encoding="utf-8")
    with pytest.raises(ValueError, match=r"base\.toml: not valid TOML"):
        SweepSpec.from_toml(sweep)
