"""The backend switch."""

import subprocess
import sys

import pytest

from sgdnoise import backends


def test_numpy_always_available():
    assert "numpy" in backends.available()


def test_auto_resolves_to_an_available_backend():
    assert backends.resolve("auto") in backends.available()
    assert backends.resolve("auto", supported=("numpy",)) == "numpy"


@pytest.mark.parametrize("name", ["torch", "", "NUMPY"])
def test_unknown_backend_raises_naming_argument(name):
    with pytest.raises(ValueError, match="backend"):
        backends.resolve(name)


def test_unsupported_backend_raises():
    with pytest.raises(ValueError, match="not implemented"):
        backends.resolve("numba", supported=("numpy", "cupy"))


@pytest.mark.skipif("cupy" in backends.available(), reason="a GPU is present")
def test_cupy_absent_gives_clear_error():
    with pytest.raises(ValueError, match="not available"):
        backends.resolve("cupy")


def test_import_does_not_load_numba_or_cupy():
    code = ("import sys, sgdnoise, sgdnoise.theory, sgdnoise.verify.claims; "
            "print('numba' in sys.modules, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_info_reports_versions():
    data = backends.info()
    for key in ("sgdnoise", "python", "numpy", "scipy", "sympy", "backends"):
        assert key in data
    assert data["backends"][0] == "numpy"
