"""sgdnoise: closed forms, simulators and checkable claims about SGD noise and loss curvature.

Subpackages
-----------
theory
    Closed forms, bounds and sympy derivations (no randomness, no simulation).
sim
    Models built from scratch and the dynamics that train or perturb them.
verify
    Claims holding theory against simulation, hypothesis strategies, reports.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sgdnoise")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from sgdnoise import backends

__all__ = ["__version__", "backends"]
