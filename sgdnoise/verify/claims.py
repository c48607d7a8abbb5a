"""The registry of checkable claims, one per SPEC id, run by ``sgdnoise verify``.

Run one claim and read its verdict::

    from sgdnoise.verify.claims import REGISTRY

    result = REGISTRY.get("A1").check(seed=0)
    result.verdict  # 'pass'
"""

from __future__ import annotations

from sgdnoise.verify._part_a import CLAIMS_A
from sgdnoise.verify._part_a_networks import CLAIMS_A_NETWORKS
from sgdnoise.verify._part_b import CLAIMS_B
from sgdnoise.verify._part_c import CLAIMS_C
from sgdnoise.verify._part_d import CLAIMS_D
from sgdnoise.verify._registry import (
    SCALES,
    Claim,
    ClaimResult,
    Outcome,
    Registry,
    RunContext,
)


def default_registry() -> Registry:
    """A fresh registry holding every claim the package implements."""
    claims = {c.id: c for c in (*CLAIMS_A, *CLAIMS_A_NETWORKS, *CLAIMS_B, *CLAIMS_C, *CLAIMS_D)}
    return Registry(claims[k] for k in sorted(claims))


#: Every claim the package implements, in registration order (see :func:`default_registry`).
REGISTRY: Registry = default_registry()

__all__ = [
    "REGISTRY",
    "SCALES",
    "Claim",
    "ClaimResult",
    "Outcome",
    "Registry",
    "RunContext",
    "default_registry",
]
