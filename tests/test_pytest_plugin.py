"""The sgdnoise pytest plugin, exercised in inner pytest runs (``pytester``).

Each inner run finds the plugin through a ``pytest11`` entry point named ``sgdnoise``: the
installed one, or one written into the inner run's folder (so the tests do not depend on how
the package was installed), and loads it with ``-p sgdnoise`` (which works with plugin
autoloading on or off).
"""

import json
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import sgdnoise.theory
import sgdnoise.verify.strategies  # noqa: F401
from sgdnoise import backends

pytest_plugins = ["pytester"]

# In-process inner runs drop the modules they import first; extension modules (numpy.fft,
# numba) cannot be imported twice, so everything the inner runs use is imported here, once.
AVAILABLE = backends.available()

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def inner(pytester):
    """A pytester whose runs load the sgdnoise plugin through its entry point."""
    dist = pytester.path / "sgdnoise_plugin_entry-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sgdnoise-plugin-entry\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nsgdnoise = sgdnoise.pytest_plugin\n")
    pytester.syspathinsert()

    def run(*args):
        # in-process runs find sgdnoise already imported, so pytest cannot rewrite its asserts
        return pytester.runpytest("-p", "sgdnoise", "-p", "no:cacheprovider",
                                  "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)

    pytester.run_sgdnoise = run
    return pytester


def test_pyproject_registers_the_entry_point():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["entry-points"]["pytest11"] == {"sgdnoise": "sgdnoise.pytest_plugin"}


def test_without_options_no_profile_is_loaded_and_nothing_changes(inner):
    before = settings.get_current_profile_name()
    inner.makepyfile(test_plain=f"""
        from hypothesis import given, settings, strategies as st

        def test_profile_untouched():
            assert settings.get_current_profile_name() == {before!r}

        @given(st.integers())
        def test_plain_property(x):
            assert x == x
        """)
    result = inner.run_sgdnoise("--strict-markers")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["sgdnoise: --sgdnoise-seed=0, hypothesis profile not set*"])
    result.stdout.no_fnmatch_line("*sgdnoise claims*")
    without = inner.runpytest("-p", "no:sgdnoise", "-p", "no:cacheprovider")
    without.assert_outcomes(passed=2)
    assert settings.get_current_profile_name() == before


@pytest.mark.parametrize(("name", "expected"), [
    ("ci", {"derandomize": True, "database": None, "deadline": None, "print_blob": True}),
    ("dev", {"max_examples": 1000, "deadline": None, "print_blob": True}),
])
def test_profile_option_loads_the_profile_and_restores_the_old_one(inner, name, expected):
    before = settings.get_current_profile_name()
    inner.makepyfile(test_profile=f"""
        from hypothesis import settings

        def test_loaded():
            assert settings.get_current_profile_name() == "sgdnoise-{name}"
            for key, value in {expected!r}.items():
                assert getattr(settings.default, key) == value, key
        """)
    result = inner.run_sgdnoise("--sgdnoise-profile", name)
    result.assert_outcomes(passed=1)
    header = f"sgdnoise: --sgdnoise-seed=0, hypothesis profile sgdnoise-{name}"
    result.stdout.fnmatch_lines([header])
    assert settings.get_current_profile_name() == before


def test_profiles_can_be_loaded_from_a_conftest(inner):
    inner.makeconftest("""
        from hypothesis import settings
        settings.load_profile("sgdnoise-ci")
        """)
    inner.makepyfile(test_c="""
        from hypothesis import settings

        def test_ci():
            assert settings.default.derandomize and settings.default.database is None
        """)
    inner.run_sgdnoise().assert_outcomes(passed=1)


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "hypothesispytest", "--sgdnoise-profile", "ci", "--hypothesis-profile", "default"],
     "not both"),
    (["--sgdnoise-seed", "-1"], "--sgdnoise-seed must be >= 0"),
    (["--sgdnoise-profile", "fast"], "invalid choice"),
])
def test_bad_options_are_usage_errors(inner, args, message):
    inner.makepyfile(test_x="def test_x():\n    pass\n")
    result = inner.run_sgdnoise(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


RNG_TESTS = """
    import json
    from pathlib import Path

    def _save(request, values):
        path = Path(__file__).parent / "draws.json"
        seen = json.loads(path.read_text()) if path.exists() else {}
        seen[request.node.name] = values
        path.write_text(json.dumps(seen))

    def test_one(sgdnoise_rng, request):
        _save(request, sgdnoise_rng.random(4).tolist())

    def test_two(sgdnoise_rng, request):
        _save(request, sgdnoise_rng.random(4).tolist())
    """


def _draws(pytester, *args, passed=2):
    path = pytester.path / "draws.json"
    path.unlink(missing_ok=True)
    pytester.run_sgdnoise(*args).assert_outcomes(passed=passed)
    return json.loads(path.read_text())


def test_rng_fixture_is_seeded_per_test_and_reproducible(inner):
    inner.makepyfile(test_rng=RNG_TESTS)
    first = _draws(inner, "--sgdnoise-seed", "5")
    again = _draws(inner, "--sgdnoise-seed", "5")
    alone = _draws(inner, "--sgdnoise-seed", "5", "-k", "two", passed=1)
    other = _draws(inner, "--sgdnoise-seed", "6")
    assert first == again
    assert alone == {"test_two": first["test_two"]}          # independent of the other tests
    assert first["test_one"] != first["test_two"]           # independent streams per test
    assert first["test_one"] != other["test_one"]           # the seed matters
    # the documented derivation: SeedSequence([seed, crc32(node id)])
    key = zlib.crc32(b"test_rng.py::test_one")
    expected = np.random.default_rng(np.random.SeedSequence([5, key])).random(4)
    assert first["test_one"] == expected.tolist()


def test_a_failing_test_reports_the_seed(inner):
    inner.makepyfile(test_fail="""
        def test_unlucky(sgdnoise_rng):
            assert sgdnoise_rng.random() > 2
        """)
    result = inner.run_sgdnoise("--sgdnoise-seed", "3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*sgdnoise*", "sgdnoise_rng: --sgdnoise-seed=3, node id 'test_fail.py::test_unlucky'"])


def test_backend_fixture_runs_available_backends_and_skips_the_others(inner):
    inner.makepyfile(test_backend="""
        from sgdnoise import backends

        def test_backend(sgdnoise_backend):
            assert sgdnoise_backend in backends.available()
        """)
    result = inner.run_sgdnoise("-rs")
    have = AVAILABLE
    result.assert_outcomes(passed=len(have), skipped=len(backends.BACKENDS) - len(have))
    for name in backends.BACKENDS:
        if name not in have:
            result.stdout.fnmatch_lines([f"*sgdnoise backend '{name}' is not available here*"])
    ids = inner.run_sgdnoise("--collect-only", "-q").stdout.str()
    for name in backends.BACKENDS:
        assert f"test_backend.py::test_backend[{name}]" in ids


CLAIM_TESTS = """
    import pytest

    @pytest.mark.sgdnoise_claim("A1")
    def test_a1():
        pass

    @pytest.mark.sgdnoise_claim("A1", "A2")
    def test_a1_a2_fails():
        assert False

    @pytest.mark.sgdnoise_claim("A2")
    def test_a2_skips():
        pytest.skip("not today")

    def test_unmarked():
        pass
    """


def test_claim_marker_records_summarises_and_selects(inner):
    inner.makepyfile(test_user_claims=CLAIM_TESTS)
    result = inner.run_sgdnoise("--strict-markers", "--junitxml=out.xml")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*sgdnoise claims*", "A1: 1 passed, 1 failed",
                                 "A2: 1 failed, 1 skipped"])
    tree = ET.parse(inner.path / "out.xml")
    props = {case.get("name"): [p.get("value") for p in case.iter("property")
                                if p.get("name") == "sgdnoise_claim"]
             for case in tree.iter("testcase")}
    assert props == {"test_a1": ["A1"], "test_a1_a2_fails": ["A1", "A2"],
                     "test_a2_skips": ["A2"], "test_unmarked": []}
    selected = inner.run_sgdnoise("--sgdnoise-claim", "A2")
    selected.assert_outcomes(failed=1, skipped=1, deselected=2)
    both = inner.run_sgdnoise("--sgdnoise-claim", "A1", "--sgdnoise-claim", "A2")
    both.assert_outcomes(passed=1, failed=1, skipped=1, deselected=1)
    markers = inner.run_sgdnoise("--markers").stdout.str()
    assert "@pytest.mark.sgdnoise_claim(id, ...)" in markers


@pytest.mark.parametrize("mark", ["sgdnoise_claim()", "sgdnoise_claim(1)",
                                  "sgdnoise_claim('')", "sgdnoise_claim(id='A1')"])
def test_claim_marker_without_ids_is_a_usage_error(inner, mark):
    inner.makepyfile(test_bad=f"""
        import pytest

        @pytest.mark.{mark}
        def test_x():
            pass
        """)
    result = inner.run_sgdnoise()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*sgdnoise_claim takes one or more claim ids*"])


# The worked example of docs/property-tests.md: one's own conjectures about the Loewner
# sandwich (claim A1), tested with an exported strategy.
CONJECTURES = '''
    import numpy as np
    import pytest
    from hypothesis import given

    from sgdnoise.theory import hessian_moments, loewner_sandwich, max_curvatures
    from sgdnoise.verify.strategies import per_sample_hessian_families

    TOL = 1e-10  # margins are relative to ||M||_2; round-off is ~1e-15


    @pytest.mark.sgdnoise_claim("A1")
    @given(h=per_sample_hessian_families(max_dim=5, max_samples=12))
    def test_sandwich_with_kappa_star(h):
        """True: H^2 <= M <= kappa* H with kappa* = max_p lambda_max(h_p)."""
        H, M = hessian_moments(h)
        margins = loewner_sandwich(H, M, kappa_star=float(max_curvatures(h).max()))
        assert margins.lower >= -TOL and margins.upper >= -TOL


    @pytest.mark.sgdnoise_claim("A1")
    @given(h=per_sample_hessian_families(max_dim=5, max_samples=12))
    def test_sandwich_with_the_top_eigenvalue_of_H(h):
        """False: M <= lambda_max(H) H (the mean Hessian's top eigenvalue in place of kappa*)."""
        H, M = hessian_moments(h)
        lam_max = float(np.linalg.eigvalsh(H)[-1])
        assert loewner_sandwich(H, M, kappa_star=lam_max).upper >= -TOL
    '''


def test_worked_example_true_conjecture_passes_false_one_is_falsified(inner):
    inner.makepyfile(test_my_conjecture=CONJECTURES)
    result = inner.run_sgdnoise("--sgdnoise-profile", "ci", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED test_my_conjecture.py::test_sandwich_with_the_top_eigenvalue_of_H*",
    ])
    out = result.stdout.str()
    # Newer Hypothesis releases say "Failing test case:", older ones "Falsifying example:".
    assert re.search(r"(Falsifying example|Failing test case): "
                     r"test_sandwich_with_the_top_eigenvalue_of_H\(", out), out
    assert "h=array(" in out                       # the shrunk counterexample is printed
    assert "A1: 1 passed, 1 failed" in out
    # the same counterexample, derandomized, on a second run
    again = inner.run_sgdnoise("--sgdnoise-profile", "ci").stdout.str()
    falsifying = [ln for ln in out.splitlines() if "h=array(" in ln]
    assert falsifying and all(ln in again for ln in falsifying)


def test_plugin_module_imports_no_heavy_backends():
    code = ("import sys, sgdnoise.pytest_plugin; "
            "print(sorted(m for m in ('numba', 'cupy', 'scipy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
