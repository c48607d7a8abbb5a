"""A pytest plugin for testing one's own conjectures with sgdnoise.

Installing sgdnoise registers this module with pytest (entry point ``sgdnoise`` in the group
``pytest11``), so it is active in every test run of the environment; it changes nothing for a
test suite that does not use it: no Hypothesis profile is loaded unless asked for, and the
fixtures and the marker only act where a test names them. Disable it with
``pytest -p no:sgdnoise``; where plugin autoloading is off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``),
enable it with ``pytest -p sgdnoise``. Do not also name this module in ``pytest_plugins`` or
with ``-p sgdnoise.pytest_plugin``: pytest would register it twice and stop.

Hypothesis profiles
-------------------
Registered when the plugin is imported, so a ``conftest.py`` may also load them itself with
``hypothesis.settings.load_profile("sgdnoise-ci")``:

``sgdnoise-ci``
    ``derandomize=True, database=None, deadline=None, print_blob=True``: the same examples on
    every run, nothing stored between runs, no timing failures on a busy machine, and a failure
    prints the ``@reproduce_failure`` blob.
``sgdnoise-dev``
    ``max_examples=1000, deadline=None, print_blob=True``: a longer search for counterexamples.

Options
-------
``--sgdnoise-profile {ci,dev}``
    Load the profile ``sgdnoise-ci`` or ``sgdnoise-dev`` for the whole run (restored when the
    run ends). Not to be combined with Hypothesis' own ``--hypothesis-profile``.
``--sgdnoise-seed N``
    Root seed of the ``sgdnoise_rng`` fixture (an integer ≥ 0, default 0); shown in the header
    of the test report.
``--sgdnoise-claim ID [--sgdnoise-claim ID ...]``
    Run only the tests marked ``sgdnoise_claim`` with one of these ids.

Fixtures
--------
``sgdnoise_rng``
    A fresh ``numpy.random.Generator`` for each test, seeded from ``--sgdnoise-seed`` and the
    test's node id (``SeedSequence([seed, crc32(nodeid)])``): tests draw independent streams,
    and a test draws the same numbers whether it runs alone or with the others. A failing test
    that used it reports the seed.
``sgdnoise_backend``
    Each of ``sgdnoise.backends.BACKENDS`` in turn (``"numpy"``, ``"numba"``, ``"cupy"``); a
    backend that is not available here is skipped, with the reason.

Marker
------
``@pytest.mark.sgdnoise_claim("A1", ...)``
    Says which claims of the sgdnoise spec (ids as in ``sgdnoise verify --list``, or ids of
    one's own) a test checks. The ids are recorded as ``sgdnoise_claim`` user properties (so
    they appear in ``--junitxml`` reports), ``--sgdnoise-claim`` selects by them, and the
    terminal summary counts the outcomes per claim id.

Example
-------
A conftest-free test file::

    import numpy as np
    import pytest
    from hypothesis import given

    from sgdnoise.theory import hessian_moments, loewner_sandwich, max_curvatures
    from sgdnoise.verify.strategies import per_sample_hessian_families

    @pytest.mark.sgdnoise_claim("A1")
    @given(h=per_sample_hessian_families(max_dim=5))
    def test_loewner_upper_side(h):
        H, M = hessian_moments(h)
        assert loewner_sandwich(H, M, float(max_curvatures(h).max())).upper >= -1e-10

run with ``pytest --sgdnoise-profile ci``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

from sgdnoise import backends

#: The Hypothesis profiles this plugin registers, by the short name ``--sgdnoise-profile`` takes.
PROFILES: dict[str, str] = {"ci": "sgdnoise-ci", "dev": "sgdnoise-dev"}

settings.register_profile("sgdnoise-ci", derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("sgdnoise-dev", max_examples=1000, deadline=None, print_blob=True)

_PREVIOUS_PROFILE = pytest.StashKey[str]()
_AVAILABLE = pytest.StashKey[tuple[str, ...]]()
_MARKER_HELP = ("sgdnoise_claim(id, ...): the sgdnoise claim ids (e.g. 'A1') the test checks; "
                "recorded as user properties, selectable with --sgdnoise-claim, counted in the "
                "terminal summary")


def _seed(config: pytest.Config) -> int:
    return int(config.getoption("sgdnoise_seed"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--sgdnoise-profile``, ``--sgdnoise-seed`` and ``--sgdnoise-claim`` options."""
    group = parser.getgroup("sgdnoise", "sgdnoise: Hypothesis profiles, seeds and claim ids")
    group.addoption("--sgdnoise-profile", choices=sorted(PROFILES), default=None,
                    help="load the Hypothesis profile sgdnoise-ci (derandomized, no database, "
                         "no deadline) or sgdnoise-dev (1000 examples) for this run")
    group.addoption("--sgdnoise-seed", type=int, default=0, metavar="N",
                    help="root seed of the sgdnoise_rng fixture (default 0)")
    group.addoption("--sgdnoise-claim", action="append", default=[], metavar="ID",
                    help="run only tests marked sgdnoise_claim with this id (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the claim tracker, check the seed, load the profile if asked."""
    config.addinivalue_line("markers", _MARKER_HELP)
    if _seed(config) < 0:
        raise pytest.UsageError(f"--sgdnoise-seed must be >= 0; got {_seed(config)}")
    config.pluginmanager.register(_ClaimTracker(config), "sgdnoise-claims")
    name = config.getoption("sgdnoise_profile")
    if name is None:
        return
    if config.getoption("--hypothesis-profile", default=None):
        raise pytest.UsageError(
            "give either --sgdnoise-profile or --hypothesis-profile, not both")
    config.stash[_PREVIOUS_PROFILE] = settings.get_current_profile_name()
    settings.load_profile(PROFILES[name])


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the Hypothesis profile that was active before ``--sgdnoise-profile``."""
    previous = config.stash.get(_PREVIOUS_PROFILE, None)
    if previous is not None:
        settings.load_profile(previous)
        del config.stash[_PREVIOUS_PROFILE]


def pytest_report_header(config: pytest.Config) -> str:
    """``sgdnoise: --sgdnoise-seed=0, Hypothesis profile ...`` in the header of the run."""
    name = config.getoption("sgdnoise_profile")
    profile = PROFILES[name] if name else "not set by sgdnoise"
    return f"sgdnoise: --sgdnoise-seed={_seed(config)}, hypothesis profile {profile}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """Add the seed to the report of a failing test that used ``sgdnoise_rng``."""
    report = yield
    if report.failed and "sgdnoise_rng" in getattr(item, "fixturenames", ()):
        text = f"sgdnoise_rng: --sgdnoise-seed={_seed(item.config)}, node id {item.nodeid!r}"
        report.sections.append(("sgdnoise", text))
    return report


@pytest.fixture
def sgdnoise_rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A numpy Generator seeded from ``--sgdnoise-seed`` and the test's node id.

    The stream is ``np.random.default_rng(np.random.SeedSequence([seed, crc32(nodeid)]))`` with
    ``crc32`` from :mod:`zlib` over the UTF-8 node id, so it is reproducible outside pytest.
    """
    key = zlib.crc32(request.node.nodeid.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([_seed(request.config), key]))


@pytest.fixture(params=backends.BACKENDS)
def sgdnoise_backend(request: pytest.FixtureRequest) -> str:
    """Each sgdnoise backend in turn; one that is not available here is skipped with the reason."""
    config = request.config
    if _AVAILABLE not in config.stash:
        config.stash[_AVAILABLE] = backends.available()
    name = request.param
    if name not in config.stash[_AVAILABLE]:
        hint = ("needs CuPy and a CUDA device: pip install 'sgdnoise[gpu]'" if name == "cupy"
                else "needs numba: pip install numba")
        pytest.skip(f"sgdnoise backend {name!r} is not available here ({hint})")
    return name


class _ClaimTracker:
    """Selection by ``--sgdnoise-claim``, user properties and the per-claim summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.claims: dict[str, tuple[str, ...]] = {}   # node id -> claim ids
        self.outcomes: dict[str, str] = {}             # node id -> passed / failed / skipped

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        wanted = set(config.getoption("sgdnoise_claim") or ())
        keep, drop = [], []
        for item in items:
            ids: list[str] = []
            for mark in item.iter_markers("sgdnoise_claim"):
                if not mark.args or mark.kwargs or not all(
                        isinstance(a, str) and a for a in mark.args):
                    raise pytest.UsageError(
                        f"{item.nodeid}: sgdnoise_claim takes one or more claim ids as "
                        f"non-empty strings, e.g. @pytest.mark.sgdnoise_claim('A1'); got "
                        f"args={mark.args!r}, kwargs={mark.kwargs!r}")
                ids.extend(a for a in mark.args if a not in ids)
            if ids:
                self.claims[item.nodeid] = tuple(ids)
                item.user_properties.extend(("sgdnoise_claim", cid) for cid in ids)
            (keep if not wanted or wanted & set(ids) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.claims:
            return
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped:
            self.outcomes.setdefault(report.nodeid, "skipped")
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.outcomes:
            return
        counts: dict[str, dict[str, int]] = {}
        for nodeid, outcome in self.outcomes.items():
            for cid in self.claims[nodeid]:
                per = counts.setdefault(cid, {})
                per[outcome] = per.get(outcome, 0) + 1
        terminalreporter.ensure_newline()
        terminalreporter.section("sgdnoise claims")
        for cid in sorted(counts):
            per = counts[cid]
            text = ", ".join(f"{per[k]} {k}" for k in ("passed", "failed", "skipped") if k in per)
            terminalreporter.write_line(f"{cid}: {text}")


__all__ = [
    "PROFILES",
    "pytest_addoption",
    "pytest_configure",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_unconfigure",
    "sgdnoise_backend",
    "sgdnoise_rng",
]
