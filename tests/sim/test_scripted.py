"""Scripted runs: config validation, the output folder and its loaders, determinism."""

import json
import re
import sys

import numpy as np
import pytest

from sgdnoise.sim.dynamics import (
    FirstPassage,
    LinearRegressionProblem,
    Moments,
    Record,
    sgd,
    simulate,
)
from sgdnoise.sim.scripted import (
    RunConfig,
    apply_overrides,
    load_run,
    run_config,
    to_dataframe,
    to_xarray,
)

BASE = {
    "problem": {"kind": "linear_regression", "N": 64, "d": 3, "noise": 0.5, "seed": 2},
    "noise": {"kind": "sgd", "B": 4, "scheme": "reshuffle"},
    "dynamics": {"eta": 0.05, "num_steps": 300, "num_replicas": 8},
    "measure": {"record": {"every": 50, "loss": True}, "first_passage": {"loss": 0.2},
                "moments": {"after": 100}},
    "run": {"seed": 7, "name": "small"},
}


def with_(**changes):
    """BASE with dotted keys changed (value None deletes the key)."""
    out = apply_overrides(BASE, {k.replace("__", "."): v for k, v in changes.items()})
    tables = [*out.values(), *(t for t in out.get("measure", {}).values() if isinstance(t, dict))]
    for table in tables:
        for key in [k for k, v in table.items() if v is None]:
            del table[key]
    return out


BAD = [
    (with_(noise__scheme="shuffle"),
     "noise.scheme: 'shuffle' is not one of replacement, iid, reshuffle, shuffle_once"),
    (with_(noise__foo=1),
     "noise.foo: unknown key; allowed keys: B, form, kind, noise_trace, scheme"),
    (with_(noise__k=2), "noise.k: unknown key for noise.kind = 'sgd'"),
    (with_(noise__kind="adam"), "noise.kind: 'adam' is not one of gd, sgd, langevin"),
    (with_(noise__B=0), "noise.B: must be >= 1; got 0"),
    (with_(noise__B=65), "noise.B: must be <= problem.N = 64"),
    (with_(problem__kind="mlp"), "problem.kind: 'mlp' is not one of linear_regression, toy2d"),
    (with_(problem__lam=[1.0]), "problem.lam: unknown key; allowed keys: N, d, input_variances"),
    (with_(problem__N=2.5), "problem.N: expected an integer; got 2.5"),
    (with_(problem__input_variances=[1.0, 2.0]), "problem.input_variances: must have length 3"),
    (with_(dynamics__eta=None), "dynamics.eta: required key is missing"),
    (with_(dynamics__eta=0.0), "dynamics.eta: must be > 0.0"),
    (with_(dynamics__eta="fast"), "dynamics.eta: expected a number; got 'fast'"),
    (with_(dynamics__beta=1.0), "dynamics.beta: must be < 1.0"),
    (with_(dynamics__momentum_style="nesterov"), "dynamics.momentum_style: 'nesterov' is not"),
    (with_(dynamics__theta0=[0.0, 1.0]), "dynamics.theta0: must have length 3"),
    (with_(dynamics__num_steps=-1), "dynamics.num_steps: must be >= 0"),
    (with_(measure__record__loss="yes"), "measure.record.loss: expected true or false"),
    (with_(measure__record__every=None), "measure.record.every: required key is missing"),
    (with_(measure__moments__after=301),
     "measure.moments.after: must be <= dynamics.num_steps"),
    (with_(measure__moments__every=3, measure__moments__phase=3),
     "measure.moments.phase: must be < measure.moments.every = 3"),
    (with_(measure__moments__about="origin"), "measure.moments.about: 'origin' is not one of"),
    (with_(measure__moments__colour=1), "measure.moments.colour: unknown key; allowed keys"),
    (with_(measure__noise_lags__num_lags=300, measure__noise_lags__after=100),
     "measure.noise_lags.num_lags: must be <= dynamics.num_steps - measure.noise_lags.after"),
    (with_(measure__noise_lags__num_lags=3, measure__first_passage__stop=True),
     "measure.noise_lags: cannot be combined with measure.first_passage.stop"),
    (with_(measure__histogram__bins=3), "measure.histogram: unknown measurement; allowed:"),
    ({**BASE, "measure": {"record_every": 50}},
     "measure.record_every: moved: now measure.record.every"),
    ({**BASE, "measure": {"moments_after": 50}},
     "measure.moments_after: moved: now measure.moments.after"),
    (with_(run__backend="tpu"), "run.backend: 'tpu' is not one of numpy, numba, cupy, auto"),
    (with_(run__name="a/b"), "run.name: expected a non-empty name without path separators"),
    (with_(run__colour="red"), "run.colour: unknown key; allowed keys: backend, name, "),
    ({**BASE, "extra": {}}, "extra: unknown section; allowed sections: problem, noise"),
    ({k: v for k, v in BASE.items() if k != "noise"}, "noise: required section is missing"),
    (with_(noise__kind="langevin", noise__scheme=None),
     "noise.langevin_kind: required key is missing"),
    (with_(noise__kind="langevin", noise__langevin_kind="const", noise__k=1),
     "noise.k: only used with noise.langevin_kind in leading, hessian"),
    (with_(noise__kind="langevin", noise__langevin_kind="fixed"),
     "noise.covariance: required with noise.langevin_kind = 'fixed'"),
    ({**BASE, "problem": {"kind": "quadratic"}}, "problem.lam: give exactly one of"),
    ({**BASE, "problem": {"kind": "quadratic", "H": [[1.0, 0.0]]}},
     "problem.H: must be a square matrix"),
]


@pytest.mark.parametrize(("config", "message"), BAD)
def test_invalid_config_names_the_dotted_key(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RunConfig.from_dict(config)


def test_toml_file_and_dict_agree_and_round_trip(tmp_path):
    cfg = RunConfig.from_dict(BASE)
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    assert RunConfig.from_toml(path) == cfg
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.run["backend"] == "numpy" and cfg.dynamics["beta"] == 0.0  # defaults filled
    bad = tmp_path / "bad.toml"
    bad.write_text("[noise\nkind = 1", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        RunConfig.from_toml(bad)


def test_run_folder_round_trip(tmp_path):
    record = run_config(BASE, out_dir=tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "config.toml", "result.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["seed"] == 7 and result["backend"] == "numpy"
    assert result["config"] == record.config.to_dict()
    assert {"numpy", "sgdnoise"} <= set(result["versions"])
    assert {"build_s", "simulate_s", "total_s"} <= set(result["timings"])
    assert result["summary"]["num_replicas"] == 8
    assert result["summary"]["loss_final_mean"] == pytest.approx(record.run.loss_final.mean())

    loaded = load_run(out)
    assert loaded["config"] == record.config
    for name in ("theta", "loss_final", "trajectory", "loss", "first_passage", "theta_var"):
        np.testing.assert_array_equal(loaded["arrays"][name], getattr(record.run, name))

    df = to_dataframe(out)
    R, D = 8, 3
    assert df.shape[0] == R
    assert list(df["replica"]) == list(range(R))
    # replica, θ, θ0 (2D), loss_final, first_passage, censored, 4 moments × D
    assert df.shape[1] == 1 + 2 * D + 1 + 2 + 4 * D
    np.testing.assert_array_equal(df[[f"theta_{i}" for i in range(D)]].to_numpy(),
                                  record.run.theta)
    assert to_dataframe(record).equals(df)

    ds = to_xarray(out)
    assert dict(ds.sizes) == {"replica": R, "param": D, "record": 300 // 50 + 1}
    assert ds["trajectory"].dims == ("record", "replica", "param")
    np.testing.assert_array_equal(ds["step"].to_numpy(), np.arange(0, 301, 50))
    assert json.loads(ds.attrs["config"]) == record.config.to_dict()


def test_same_seed_same_result_other_seed_differs(tmp_path):
    a = run_config(BASE, out_dir=None).run
    b = run_config(BASE, out_dir=tmp_path / "b").run
    c = run_config(with_(run__seed=8), out_dir=None).run
    np.testing.assert_array_equal(a.trajectory, b.trajectory)
    np.testing.assert_array_equal(a.theta_var, b.theta_var)
    assert not np.array_equal(a.theta, c.theta)


def test_config_run_equals_direct_simulate_call():
    """The config describes exactly the documented data and engine call."""
    from sgdnoise.sim.data import gaussian_regression

    data = gaussian_regression(64, np.eye(3), sigma=0.5, rng=np.random.default_rng(2))
    direct = simulate(LinearRegressionProblem(data.x, data.y), sgd(4, scheme="reshuffle"),
                      eta=0.05, num_steps=300, num_replicas=8, seed=7,
                      observe=[Record(every=50, loss=True), FirstPassage(loss=0.2),
                               Moments(after=100)])
    scripted = run_config(BASE, out_dir=None).run
    for name in ("theta", "trajectory", "loss", "first_passage", "theta_mean", "velocity_var"):
        np.testing.assert_array_equal(getattr(scripted, name), getattr(direct, name))


def test_other_problems_and_noises_run(tmp_path):
    toy = {"problem": {"kind": "toy2d", "N": 20}, "noise": {"kind": "gd"},
           "dynamics": {"eta": 0.005, "num_steps": 10, "theta0": [1.0, 1.0]}}
    rec = run_config(toy, out_dir=tmp_path / "toy")
    assert rec.run.theta.shape == (1, 2)
    quad = {"problem": {"kind": "quadratic", "lam": [1.0, 0.5], "N": 16,
                        "tilt_variances": [1.0, 2.0]},
            "noise": {"kind": "sgd", "B": 2, "scheme": "iid"},
            "dynamics": {"eta": 0.1, "num_steps": 20, "num_replicas": 3}}
    rec = run_config(quad, out_dir=None)
    assert rec.run.theta.shape == (3, 2)
    fixed = {"problem": {"kind": "quadratic", "H": [[2.0, 0.0], [0.0, 1.0]]},
             "noise": {"kind": "langevin", "langevin_kind": "fixed",
                       "covariance": [[0.1, 0.0], [0.0, 0.2]]},
             "dynamics": {"eta": 0.1, "num_steps": 20, "num_replicas": 3}}
    rec = run_config(fixed, out_dir=None)
    assert rec.config.build_noise().kind == "fixed" and np.isfinite(rec.run.theta).all()


def test_earlier_run_folder_is_replaced_but_never_a_file_it_did_not_write(tmp_path):
    out = tmp_path / "o"
    run_config(BASE, out_dir=out)
    run_config(with_(run__seed=1), out_dir=out)          # an earlier run is replaced
    assert load_run(out)["result"]["seed"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "config.toml", "result.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]   # no temp, old or lock left
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match=r"output folder .* but also files it did not write "
                                         r"\(notes\.txt\)"):
        run_config(with_(run__seed=2), out_dir=out)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert load_run(out)["result"]["seed"] == 1          # the earlier run is untouched


def test_loaders_refuse_other_folders_and_missing_xarray(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="path: .* is not a run folder"):
        load_run(tmp_path)
    run_config(BASE, out_dir=tmp_path / "r")
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match=r"pip install 'sgdnoise\[analysis\]'"):
        to_xarray(tmp_path / "r")


def test_overrides_need_section_and_key():
    cfg = RunConfig.from_dict(BASE)
    assert cfg.with_overrides({"dynamics.eta": 0.01}).dynamics["eta"] == 0.01
    with pytest.raises(ValueError, match=r"eta: expected a key of the form section\.key"):
        cfg.with_overrides({"eta": 0.01})
    assert cfg.with_overrides({"measure.moments.after": 7}).measure["moments"]["after"] == 7
    lags = cfg.with_overrides({"measure.noise_lags.num_lags": 4}).measure["noise_lags"]
    assert lags == {"num_lags": 4, "after": 0}
    with pytest.raises(ValueError, match=r"measure\.table\.key"):
        cfg.with_overrides({"measure.moments": 7})
    with pytest.raises(ValueError, match="dyn.eta: unknown section 'dyn'"):
        cfg.with_overrides({"dyn.eta": 0.01})
