"""Array types shared across the package."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Array = NDArray[Any]
BackendName = Literal["numpy", "numba", "cupy", "auto"]

__all__ = ["Array", "BackendName", "FloatArray", "IntArray"]
