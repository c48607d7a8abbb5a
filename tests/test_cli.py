"""The ``sgdnoise`` command line."""

import json
import subprocess
import sys

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
