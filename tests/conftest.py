"""Shared test configuration: Hypothesis profiles and the ``backend`` fixture.

Profiles: ``ci`` (the default; derandomized, no example database, no deadline) and ``dev``
(more examples).  Pick one with ``HYPOTHESIS_PROFILE=dev pytest``.
"""

import os

import pytest
from hypothesis import settings

from sgdnoise import backends

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("dev", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=backends.BACKENDS, scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend of ``sgdnoise.backends.available()``; the others are skipped with a reason."""
    if request.param not in backends.available():
        pytest.skip(f"backend {request.param!r} is not available here")
    return request.param
