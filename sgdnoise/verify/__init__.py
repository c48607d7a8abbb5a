"""Claims that hold theory against simulation, hypothesis strategies, and reports.

:mod:`sgdnoise.verify.claims` holds the registry run by ``sgdnoise verify``;
:mod:`sgdnoise.verify.strategies` exports hypothesis strategies for the random families of SPEC
(import it explicitly: it needs ``hypothesis``).
"""

from sgdnoise.verify.claims import REGISTRY, Claim, ClaimResult, Outcome, RunContext

__all__ = ["REGISTRY", "Claim", "ClaimResult", "Outcome", "RunContext"]
