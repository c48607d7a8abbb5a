r"""Philox4x32-10 counter-based random streams: one stream per (seed, replica, purpose).

A counter-based generator maps a 128-bit counter and a 64-bit key to 128 random bits by a fixed
bijection, so any block of any stream can be computed directly, in any order, on any device.
This is what lets the numpy reference, the Numba kernels and CuPy see *identical* random numbers
whatever the number of threads or the way a run is cut into chunks.

Generator
---------
Philox4x32 with 10 rounds, exactly as in Random123 (Salmon et al., SC'11): each round maps the
counter words (c0, c1, c2, c3) with the key (k0, k1) to

.. math::
    (\mathrm{hi}(M_1 c_2) \oplus c_1 \oplus k_0,\ \mathrm{lo}(M_1 c_2),\
     \mathrm{hi}(M_0 c_0) \oplus c_3 \oplus k_1,\ \mathrm{lo}(M_0 c_0)),

M₀ = 0xD2511F53, M₁ = 0xCD9E8D57 (hi/lo: upper/lower 32 bits of the 64-bit product), and the key
is bumped by the Weyl increments (0x9E3779B9, 0xBB67AE85) between rounds (9 bumps).

Stream convention (a public contract; changing it changes every simulation)
----------------------------------------------------------------------------
* key = (seed & 0xffffffff, seed >> 32) for an integer ``seed`` in [0, 2⁶⁴);
* counter = (i & 0xffffffff, i >> 32, replica, tag), where i ∈ [0, 2⁶⁴) is the *block index*
  within the stream, ``replica`` ∈ [0, 2³²) the replica and ``tag`` ∈ [0, 2³²) the purpose:
  :data:`NOISE` (0, Gaussian noise), :data:`BATCH` (1, minibatch indices),
  :data:`PERMUTATION` (2, epoch permutations).  Each block yields four 32-bit words w0…w3.

Derived variates, identical in every implementation of this module
-------------------------------------------------------------------
* uniform53(a, b) = ((a >> 5)·2²⁶ + (b >> 6)) / 2⁵³ ∈ [0, 1), 53 random bits, exact in float64.
* Normals: block i gives u1 = uniform53(w0, w1), u2 = uniform53(w2, w3) and, by Box–Muller,
  r = √(−2 log(1 − u1)), z0 = r cos(2πu2), z1 = r sin(2πu2).  Normal number j of a stream is
  z0 of block j // 2 if j is even, z1 if odd.
* Bounded integers in [0, n), 1 ≤ n < 2³²: draw number j of a stream uses block j // 2 and the
  word pair (hi, lo) = (w0, w1) if j is even, (w2, w3) if odd, and returns
  ((hi·n) + ((lo·n) >> 32)) >> 32 = ⌊(hi·2³² + lo)·n / 2⁶⁴⌋ (proof at :func:`_bounded`): the
  64-bit word scaled to [0, n), biased by at most n/2⁶⁴.
* Permutations (random reshuffling): start from the identity a = (0, 1, …, n−1); for
  i = n−1, n−2, …, 1 take j = the bounded draw number ``start + (n−1−i)`` with bound i+1 and swap
  a[i] ↔ a[j] (Fisher–Yates from the end).  A permutation consumes n − 1 draws, one per swap, in
  that order.
* Samples without replacement (i.i.d. minibatches of distinct indices): the first ``size`` swaps
  of that same Fisher–Yates pass (i = n−1, …, n−size, draw numbers start … start+size−1), then
  (a[n−1], a[n−2], …, a[n−size]).  A sample consumes ``size`` draws.

Shapes: the numpy helpers accept ``replica`` as an integer or an integer array of any shape and
return ``replica.shape + (count,)`` (or ``+ (n,)``, ``+ (size,)``), one row per replica.  They are
written against an array module (``numpy`` or ``cupy``: uint64 arithmetic, products of two 32-bit
words masked to 32 bits), chosen by the type of ``replica`` or by ``xp=``.

Compiled versions for Numba kernels (built on first access, so importing this module does not
import Numba): :data:`philox4x32_numba` ``(c0, c1, c2, c3, k0, k1) -> (w0, w1, w2, w3)``,
:data:`uniform53_numba`, :data:`normal_pair_numba` ``(k0, k1, replica, tag, block) -> (z0, z1)``,
:data:`bounded_numba` ``(hi, lo, n)``, :data:`integer_numba`
``(k0, k1, replica, tag, draw, n)`` and :data:`permutation_numba`
``(k0, k1, replica, tag, start, out)`` (fills ``out`` in place).  All words are uint64 values
below 2³².

References
----------
J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3",
SC'11 (Random123, Philox4x32-10).  G. E. P. Box, M. E. Muller, Ann. Math. Statist. 29 (1958).
Spec part B (replica dynamics; each replica its own stream).
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

import numpy as np

from sgdnoise._typing import FloatArray, IntArray

#: Tag of the Gaussian-noise stream.
NOISE: int = 0
#: Tag of the minibatch-index stream (with replacement and i.i.d. batches).
BATCH: int = 1
#: Tag of the epoch-permutation stream (random reshuffling).
PERMUTATION: int = 2

PHILOX_M0: int = 0xD2511F53
PHILOX_M1: int = 0xCD9E8D57
PHILOX_W0: int = 0x9E3779B9
PHILOX_W1: int = 0xBB67AE85
ROUNDS: int = 10

_MASK32 = 0xFFFFFFFF
_TWO_PI = 2.0 * math.pi
_INV_2_53 = 2.0**-53


# ------------------------------------------------------------------------------------ helpers
def _module_of(*arrays: Any) -> ModuleType:
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def _check_uint(value: Any, name: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be an integer in [0, 2**{bits}); got {value!r}"
        raise ValueError(msg)  # noqa: TRY004
    v = int(value)
    if not 0 <= v < 2**bits:
        raise ValueError(f"{name} must be in [0, 2**{bits}); got {v}")
    return v


def seed_key(seed: int) -> tuple[int, int]:
    """The Philox key (seed & 0xffffffff, seed >> 32) of an integer seed in [0, 2⁶⁴).

    References
    ----------
    Module docstring, "Stream convention".
    """
    s = _check_uint(seed, "seed", 64)
    return s & _MASK32, s >> 32


def _replicas(replica: Any, xp: ModuleType) -> Any:
    if isinstance(replica, numbers.Integral) and not isinstance(replica, bool):
        _check_uint(replica, "replica", 32)
        return xp.asarray(int(replica), dtype=xp.uint64)
    arr = xp.asarray(replica)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"replica must be an integer or an integer array; got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 2**32):
        raise ValueError("replica must lie in [0, 2**32)")
    return arr.astype(xp.uint64)


def philox4x32(counter: Any, key: Any) -> Any:
    r"""Philox4x32-10 of ``counter`` (…, 4) under ``key`` (…, 2), broadcast over leading axes.

    .. math::
        (c_0, c_1, c_2, c_3) \mapsto (\mathrm{hi}(M_1c_2)\oplus c_1\oplus k_0,\
        \mathrm{lo}(M_1c_2),\ \mathrm{hi}(M_0c_0)\oplus c_3\oplus k_1,\ \mathrm{lo}(M_0c_0))
        \quad\text{(10 rounds)}

    Parameters
    ----------
    counter : (..., 4) integer array (numpy or cupy)
        32-bit counter words.
    key : (..., 2) integer array
        32-bit key words.

    Returns
    -------
    (..., 4) uint32 array of the same array module.

    References
    ----------
    Salmon et al., SC'11 (Random123), Philox4x32-10; see the module docstring.
    """
    xp = _module_of(counter, key)
    c = xp.asarray(counter)
    k = xp.asarray(key)
    if c.shape[-1:] != (4,) or k.shape[-1:] != (2,):
        raise ValueError(f"counter must have shape (..., 4) and key (..., 2); got {c.shape}, "
                         f"{k.shape}")
    c = c.astype(xp.uint64) & _MASK32
    k = k.astype(xp.uint64) & _MASK32
    words = _philox_words(c[..., 0], c[..., 1], c[..., 2], c[..., 3], k[..., 0], k[..., 1], xp)
    return xp.stack(words, axis=-1).astype(xp.uint32)


def _philox_words(c0: Any, c1: Any, c2: Any, c3: Any, k0: Any, k1: Any, xp: ModuleType
                  ) -> tuple[Any, Any, Any, Any]:
    """The 10 rounds on uint64 arrays holding 32-bit values (broadcast together)."""
    m0 = xp.uint64(PHILOX_M0)
    m1 = xp.uint64(PHILOX_M1)
    w0 = xp.uint64(PHILOX_W0)
    w1 = xp.uint64(PHILOX_W1)
    mask = xp.uint64(_MASK32)
    s32 = xp.uint64(32)
    for rnd in range(ROUNDS):
        if rnd:
            k0 = (k0 + w0) & mask
            k1 = (k1 + w1) & mask
        p0 = m0 * c0
        p1 = m1 * c2
        c0, c1, c2, c3 = ((p1 >> s32) ^ c1 ^ k0, p1 & mask, (p0 >> s32) ^ c3 ^ k1, p0 & mask)
    return c0, c1, c2, c3


def _block_words(seed: int, replica: Any, tag: int, blocks: Any, xp: ModuleType
                 ) -> tuple[Any, Any, Any, Any]:
    """Words of blocks ``blocks`` (1-D uint64) of every replica: each (replica.shape + (nb,))."""
    k0, k1 = seed_key(seed)
    r = replica[..., None]
    b = blocks
    mask = xp.uint64(_MASK32)
    zero = xp.zeros(r.shape[:-1] + b.shape, dtype=xp.uint64)
    return _philox_words(
        (b & mask) + zero, (b >> xp.uint64(32)) + zero, r + zero,
        zero + xp.uint64(tag), xp.uint64(k0), xp.uint64(k1), xp,
    )


def _uniform53(a: Any, b: Any, xp: ModuleType) -> Any:
    """((a >> 5)·2²⁶ + (b >> 6)) / 2⁵³ on uint64 arrays of 32-bit words."""
    m = ((a >> xp.uint64(5)) << xp.uint64(26)) | (b >> xp.uint64(6))
    return m.astype(xp.float64) * _INV_2_53


def uniform53(a: Any, b: Any) -> FloatArray:
    r"""The float in [0, 1) made from the top 27 bits of ``a`` and the top 26 bits of ``b``.

    .. math:: u = \bigl(\lfloor a/2^5\rfloor\,2^{26} + \lfloor b/2^6\rfloor\bigr)\,/\,2^{53}

    Exact in float64 (53 bits); 1 − u is exact too, so log(1 − u) is finite.

    References
    ----------
    Module docstring, "Derived variates".
    """
    xp = _module_of(a, b)
    a = xp.asarray(a).astype(xp.uint64) & _MASK32
    b = xp.asarray(b).astype(xp.uint64) & _MASK32
    return _uniform53(a, b, xp)


def _box_muller(w0: Any, w1: Any, w2: Any, w3: Any, xp: ModuleType) -> tuple[Any, Any]:
    u1 = _uniform53(w0, w1, xp)
    u2 = _uniform53(w2, w3, xp)
    r = xp.sqrt(-2.0 * xp.log(1.0 - u1))
    angle = _TWO_PI * u2
    return r * xp.cos(angle), r * xp.sin(angle)


def _bounded(hi: Any, lo: Any, n: Any, xp: ModuleType) -> Any:
    r"""⌊(hi·2³² + lo)·n / 2⁶⁴⌋ in uint64 arithmetic, for 32-bit words hi, lo and 1 ≤ n < 2³².

    Proof that ((hi·n) + ((lo·n) >> 32)) >> 32 is this floor.  Write lo·n = q·2³² + ρ with
    q = (lo·n) >> 32 and 0 ≤ ρ < 2³².  Then (hi·2³² + lo)·n = (hi·n + q)·2³² + ρ, so with the
    integer m = hi·n + q,

    .. math:: \lfloor (m\,2^{32} + \rho)/2^{64} \rfloor = \lfloor (m + \rho/2^{32})/2^{32} \rfloor
              = \lfloor m / 2^{32} \rfloor,

    the last step because 0 ≤ ρ/2³² < 1 and m is an integer (adding less than one to an integer
    numerator cannot reach the next multiple of 2³²).  No intermediate overflows 64 bits:
    hi·n ≤ (2³² − 1)², q ≤ n − 1 ≤ 2³² − 2, so m ≤ 2⁶⁴ − 2³² − 1 < 2⁶⁴.
    """
    s32 = xp.uint64(32)
    return ((hi * n) + ((lo * n) >> s32)) >> s32


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def _check_n(n: Any, name: str = "n") -> int:
    v = _check_uint(n, name, 32)
    if v < 1:
        raise ValueError(f"{name} must be >= 1; got {v}")
    return v


def _pair_words(seed: int, replica: Any, tag: int, start: int, count: int, xp: ModuleType
                ) -> tuple[Any, Any]:
    """(hi, lo) word pairs of draw numbers start … start+count−1: each replica.shape + (count,)."""
    first = start // 2
    last = (start + count - 1) // 2
    blocks = xp.arange(first, last + 1, dtype=xp.uint64)
    w0, w1, w2, w3 = _block_words(seed, replica, tag, blocks, xp)
    hi = xp.stack([w0, w2], axis=-1).reshape(w0.shape[:-1] + (2 * blocks.size,))
    lo = xp.stack([w1, w3], axis=-1).reshape(hi.shape)
    off = start - 2 * first
    return hi[..., off:off + count], lo[..., off:off + count]


def _args(seed: Any, replica: Any, tag: Any, start: Any, xp: ModuleType | None
          ) -> tuple[int, Any, int, int, ModuleType]:
    xp = xp or _module_of(replica)
    seed_key(seed)
    tag = _check_uint(tag, "tag", 32)
    start = _check_uint(start, "start", 64)
    return int(seed), _replicas(replica, xp), tag, start, xp


def normals(seed: int, replica: Any, tag: int, start: int, count: int, *,
            xp: ModuleType | None = None) -> FloatArray:
    r"""Standard normals number ``start`` … ``start + count − 1`` of stream (seed, replica, tag).

    .. math:: z_0 = \sqrt{-2\log(1-u_1)}\cos(2\pi u_2),\quad
              z_1 = \sqrt{-2\log(1-u_1)}\sin(2\pi u_2)

    with u1 = uniform53(w0, w1), u2 = uniform53(w2, w3) of block j // 2; normal j is z0 (j even)
    or z1 (j odd).

    Parameters
    ----------
    seed : int
        In [0, 2⁶⁴).
    replica : int or integer array
        Replica index (any shape; each in [0, 2³²)).
    tag : int
        Purpose of the stream (:data:`NOISE` for Gaussian noise).
    start, count : int
        First normal number and how many.
    xp : module, optional
        ``numpy`` or ``cupy`` (default: the module of ``replica``, numpy for an integer).

    Returns
    -------
    float64 array of shape ``replica.shape + (count,)``.

    References
    ----------
    Box & Muller (1958); module docstring, "Derived variates".
    """
    seed, rep, tag, start, xp = _args(seed, replica, tag, start, xp)
    count = _check_count(count, "count")
    if count == 0:
        return xp.zeros(rep.shape + (0,))
    first = start // 2
    last = (start + count - 1) // 2
    blocks = xp.arange(first, last + 1, dtype=xp.uint64)
    z0, z1 = _box_muller(*_block_words(seed, rep, tag, blocks, xp), xp)
    z = xp.stack([z0, z1], axis=-1).reshape(z0.shape[:-1] + (2 * blocks.size,))
    off = start - 2 * first
    return z[..., off:off + count]


def integers(seed: int, replica: Any, tag: int, start: int, count: int, n: int, *,
             xp: ModuleType | None = None) -> IntArray:
    r"""Uniform integers in [0, n): draws number ``start`` … ``start + count − 1`` of the stream.

    .. math:: k = \bigl\lfloor (\mathrm{hi}\,2^{32} + \mathrm{lo})\, n / 2^{64} \bigr\rfloor
              = ((\mathrm{hi}\,n) + ((\mathrm{lo}\,n) \gg 32)) \gg 32

    with (hi, lo) = (w0, w1) of block j // 2 for an even draw number j, (w2, w3) for an odd one.

    Parameters
    ----------
    seed, replica, tag, start, count, xp
        As in :func:`normals`.
    n : int
        Exclusive upper bound, 1 ≤ n < 2³².

    Returns
    -------
    int64 array of shape ``replica.shape + (count,)``.

    References
    ----------
    Module docstring, "Derived variates" (proof of the identity at ``_bounded``).
    """
    seed, rep, tag, start, xp = _args(seed, replica, tag, start, xp)
    count = _check_count(count, "count")
    n = _check_n(n)
    if count == 0:
        return xp.zeros(rep.shape + (0,), dtype=xp.int64)
    hi, lo = _pair_words(seed, rep, tag, start, count, xp)
    return _bounded(hi, lo, xp.uint64(n), xp).astype(xp.int64)


def permutation(seed: int, replica: Any, tag: int, start: int, n: int, *,
                xp: ModuleType | None = None) -> IntArray:
    r"""A random permutation of 0 … n−1 by Fisher–Yates from the end, from draws ``start`` on.

    For i = n−1, …, 1: j = bounded draw number start + (n−1−i) with bound i + 1 (uniform in
    [0, i]), then swap a[i] ↔ a[j].  Consumes n − 1 draws, one per swap in that order.

    Parameters
    ----------
    seed, replica, tag, start, xp
        As in :func:`normals` (``tag`` is :data:`PERMUTATION` for epochs).
    n : int
        Length, 1 ≤ n < 2³².

    Returns
    -------
    int64 array of shape ``replica.shape + (n,)``.

    References
    ----------
    R. A. Fisher, F. Yates (1938); R. Durstenfeld, CACM 7 (1964); module docstring.
    """
    seed, rep, tag, start, xp = _args(seed, replica, tag, start, xp)
    n = _check_n(n)
    flat = rep.reshape(-1)
    R = flat.size
    a = xp.broadcast_to(xp.arange(n, dtype=xp.int64), (R, n)).copy()
    if n > 1:
        hi, lo = _pair_words(seed, flat, tag, start, n - 1, xp)
        bounds = xp.arange(n, 1, -1, dtype=xp.uint64)          # i + 1 for i = n−1 … 1
        J = _bounded(hi, lo, bounds, xp).astype(xp.int64)       # (R, n − 1)
        rows = xp.arange(R)
        for d in range(n - 1):
            i = n - 1 - d
            j = J[:, d]
            ai = a[:, i].copy()
            a[:, i] = a[rows, j]
            a[rows, j] = ai
    return a.reshape(rep.shape + (n,))


def sample_without_replacement(seed: int, replica: Any, tag: int, start: int, n: int,
                               size: int, *, xp: ModuleType | None = None) -> IntArray:
    r"""``size`` distinct indices of 0 … n−1: the first ``size`` swaps of :func:`permutation`.

    For i = n−1, …, n−size: j = bounded draw number start + (n−1−i) with bound i + 1, swap
    a[i] ↔ a[j]; return (a[n−1], …, a[n−size]).  Uniform over ordered samples; consumes ``size``
    draws.  Only the touched positions are stored (O(size) memory per replica).

    Parameters
    ----------
    seed, replica, tag, start, xp
        As in :func:`normals` (``tag`` is :data:`BATCH` for i.i.d. minibatches).
    n : int
        Population size, 1 ≤ n < 2³².
    size : int
        0 ≤ size ≤ n.

    Returns
    -------
    int64 array of shape ``replica.shape + (size,)``.

    References
    ----------
    Durstenfeld (1964), partial Fisher–Yates; module docstring.
    """
    seed, rep, tag, start, xp = _args(seed, replica, tag, start, xp)
    n = _check_n(n)
    size = _check_count(size, "size")
    if size > n:
        raise ValueError(f"size must be <= n; got size={size}, n={n}")
    flat = rep.reshape(-1)
    R = flat.size
    out = xp.zeros((R, size), dtype=xp.int64)
    if size == 0:
        return out.reshape(rep.shape + (0,))
    hi, lo = _pair_words(seed, flat, tag, start, size, xp)
    bounds = xp.arange(n, n - size, -1, dtype=xp.uint64)
    J = _bounded(hi, lo, bounds, xp).astype(xp.int64)           # (R, size)
    # Positions below the finished tail that earlier swaps wrote to: pos[:, t] holds value val[:, t]
    # (later entries win).  Every untouched position p still holds p.
    pos = xp.full((R, size), -1, dtype=xp.int64)
    val = xp.zeros((R, size), dtype=xp.int64)
    for d in range(size):
        i = n - 1 - d
        j = J[:, d]
        vi = _lookup(pos[:, :d], val[:, :d], xp.full(R, i, dtype=xp.int64), xp)
        vj = _lookup(pos[:, :d], val[:, :d], j, xp)
        out[:, d] = vj                  # a[i] ← a[j]; position i is final
        pos[:, d] = j                   # a[j] ← old a[i]
        val[:, d] = vi
    return out.reshape(rep.shape + (size,))


def _lookup(pos: Any, val: Any, p: Any, xp: ModuleType) -> Any:
    """Current value at position p (R,) given the write log (pos, val): the latest write, or p."""
    if pos.shape[1] == 0:
        return p.copy()
    hit = pos == p[:, None]
    any_hit = hit.any(axis=1)
    last = pos.shape[1] - 1 - xp.argmax(hit[:, ::-1], axis=1)
    found = val[xp.arange(p.shape[0]), last]
    return xp.where(any_hit, found, p)


# ----------------------------------------------------------------------------- Numba versions
_NUMBA_NAMES = ("philox4x32_numba", "uniform53_numba", "normal_pair_numba", "bounded_numba",
                "integer_numba", "permutation_numba")
_numba_cache: dict[str, Any] = {}


def _build_numba() -> dict[str, Any]:
    """Compile-on-call Numba versions of the scalar generator and its derived variates."""
    if _numba_cache:
        return _numba_cache
    import numba

    njit = numba.njit(cache=False, nogil=True)
    u64 = np.uint64
    M0, M1 = u64(PHILOX_M0), u64(PHILOX_M1)
    W0, W1 = u64(PHILOX_W0), u64(PHILOX_W1)
    MASK = u64(_MASK32)
    S5, S6, S26, S32 = u64(5), u64(6), u64(26), u64(32)
    ONE = u64(1)
    two_pi = _TWO_PI
    inv53 = _INV_2_53

    @njit
    def philox4x32_numba(c0, c1, c2, c3, k0, k1):
        c0 = u64(c0) & MASK
        c1 = u64(c1) & MASK
        c2 = u64(c2) & MASK
        c3 = u64(c3) & MASK
        k0 = u64(k0) & MASK
        k1 = u64(k1) & MASK
        for rnd in range(10):
            if rnd > 0:
                k0 = (k0 + W0) & MASK
                k1 = (k1 + W1) & MASK
            p0 = M0 * c0
            p1 = M1 * c2
            n0 = (p1 >> S32) ^ c1 ^ k0
            n2 = (p0 >> S32) ^ c3 ^ k1
            c1 = p1 & MASK
            c3 = p0 & MASK
            c0 = n0
            c2 = n2
        return c0, c1, c2, c3

    @njit
    def uniform53_numba(a, b):
        m = ((u64(a) >> S5) << S26) | (u64(b) >> S6)
        return np.float64(m) * inv53

    @njit
    def normal_pair_numba(k0, k1, replica, tag, block):
        b = u64(block)
        w0, w1, w2, w3 = philox4x32_numba(b & MASK, b >> S32, replica, tag, k0, k1)
        u1 = uniform53_numba(w0, w1)
        u2 = uniform53_numba(w2, w3)
        r = np.sqrt(-2.0 * np.log(1.0 - u1))
        angle = two_pi * u2
        return r * np.cos(angle), r * np.sin(angle)

    @njit
    def bounded_numba(hi, lo, n):
        nn = u64(n)
        return np.int64(((u64(hi) * nn) + ((u64(lo) * nn) >> S32)) >> S32)

    @njit
    def integer_numba(k0, k1, replica, tag, draw, n):
        d = u64(draw)
        b = d >> ONE
        w0, w1, w2, w3 = philox4x32_numba(b & MASK, b >> S32, replica, tag, k0, k1)
        if d & ONE:
            return bounded_numba(w2, w3, n)
        return bounded_numba(w0, w1, n)

    @njit
    def permutation_numba(k0, k1, replica, tag, start, out):
        n = out.shape[0]
        for i in range(n):
            out[i] = i
        d = u64(start)
        w0 = w1 = w2 = w3 = u64(0)
        have = False
        for i in range(n - 1, 0, -1):
            if not have or (d & ONE) == 0:
                b = d >> ONE
                w0, w1, w2, w3 = philox4x32_numba(b & MASK, b >> S32, replica, tag, k0, k1)
            if d & ONE:
                j = bounded_numba(w2, w3, i + 1)
            else:
                j = bounded_numba(w0, w1, i + 1)
            have = True
            d += ONE
            t = out[i]
            out[i] = out[j]
            out[j] = t
        return out

    _numba_cache.update(philox4x32_numba=philox4x32_numba, uniform53_numba=uniform53_numba,
                        normal_pair_numba=normal_pair_numba, bounded_numba=bounded_numba,
                        integer_numba=integer_numba, permutation_numba=permutation_numba)
    return _numba_cache


def __getattr__(name: str) -> Any:
    if name in _NUMBA_NAMES:
        return _build_numba()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BATCH",
    "NOISE",
    "PERMUTATION",
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_W0",
    "PHILOX_W1",
    "ROUNDS",
    "bounded_numba",  # noqa: F822 (built on first access, see __getattr__)
    "integer_numba",  # noqa: F822 (built on first access, see __getattr__)
    "integers",
    "normal_pair_numba",  # noqa: F822 (built on first access, see __getattr__)
    "normals",
    "permutation",
    "permutation_numba",  # noqa: F822 (built on first access, see __getattr__)
    "philox4x32",
    "philox4x32_numba",  # noqa: F822 (built on first access, see __getattr__)
    "sample_without_replacement",
    "seed_key",
    "uniform53",
    "uniform53_numba",  # noqa: F822 (built on first access, see __getattr__)
]
