"""The ``sgdnoise`` command line."""

import json
import subprocess
import sys

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
