"""Minibatch index schemes: with replacement, i.i.d. batches, random reshuffling, shuffle-once.

All indices are drawn in numpy from an explicit generator and handed to the kernels, so every
backend sees the same randomness.

Schemes (``scheme=``):

- ``"replacement"``: each batch draws B indices uniformly with replacement;
- ``"iid"``: each batch is B distinct indices, drawn afresh every step (without replacement
  inside a batch, independent across batches);
- ``"reshuffle"``: random reshuffling, each epoch a fresh permutation is cut into batches;
- ``"shuffle_once"``: one permutation, drawn in the first epoch and reused every epoch.

An epoch is ⌈N/B⌉ batches (⌊N/B⌋ with ``drop_last=True``, the default: the last partial batch of
a permutation is dropped, so every batch has exactly B samples). For ``"replacement"`` and
``"iid"`` an epoch is simply ⌊N/B⌋ (or ⌈N/B⌉) steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdnoise._typing import IntArray
from sgdnoise._validate import check_choice, check_positive_int

SCHEMES: tuple[str, ...] = ("replacement", "iid", "reshuffle", "shuffle_once")


@dataclass(frozen=True)
class BatchSampler:
    """Draws the minibatches of one epoch at a time.

    Parameters
    ----------
    N : int
        Number of training samples.
    B : int
        Batch size (1 ≤ B ≤ N).
    scheme : str
        One of :data:`SCHEMES`.
    drop_last : bool
        Drop the last partial batch of an epoch (default True: all batches have size B).

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D: epoch-based sampling, open choices).
    """

    N: int
    B: int
    scheme: str = "reshuffle"
    drop_last: bool = True

    def __post_init__(self) -> None:
        check_positive_int(self.N, "N")
        check_positive_int(self.B, "B")
        if self.B > self.N:
            raise ValueError(f"B must be <= N; got B={self.B}, N={self.N}")
        check_choice(self.scheme, "scheme", SCHEMES)

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch."""
        return self.N // self.B if self.drop_last else -(-self.N // self.B)

    def epoch(self, rng: np.random.Generator, fixed_permutation: IntArray | None = None
              ) -> list[IntArray]:
        """The batches of one epoch, as a list of index arrays.

        Parameters
        ----------
        rng : numpy.random.Generator
        fixed_permutation : (N,) int array, optional
            The permutation reused by ``"shuffle_once"`` (see :meth:`first_permutation`).
        """
        N, B, steps = self.N, self.B, self.steps_per_epoch
        if self.scheme == "replacement":
            sizes = self._sizes()
            return [rng.integers(0, N, size=s) for s in sizes]
        if self.scheme == "iid":
            return [rng.permutation(N)[:s] for s in self._sizes()]
        if self.scheme == "reshuffle":
            perm = rng.permutation(N)
        else:
            if fixed_permutation is None:
                raise ValueError("fixed_permutation is required for scheme='shuffle_once'")
            perm = np.asarray(fixed_permutation)
        return [perm[k * B:(k + 1) * B] for k in range(steps)]

    def first_permutation(self, rng: np.random.Generator) -> IntArray | None:
        """The permutation of ``"shuffle_once"`` (drawn once, before the first epoch)."""
        return rng.permutation(self.N) if self.scheme == "shuffle_once" else None

    def _sizes(self) -> list[int]:
        full = [self.B] * (self.N // self.B)
        if not self.drop_last and self.N % self.B:
            full.append(self.N % self.B)
        return full


def draw_batches(rng: np.random.Generator, *, N: int, B: int, num_steps: int,
                 scheme: str = "replacement") -> IntArray:
    """``num_steps`` full batches as a (num_steps, B) array, epochs concatenated as needed.

    References
    ----------
    Kühn & Rosenow, arXiv:2306.05300 (spec part D).
    """
    num_steps = check_positive_int(num_steps, "num_steps", minimum=0)
    sampler = BatchSampler(N, B, scheme, drop_last=True)
    fixed = sampler.first_permutation(rng)
    out: list[IntArray] = []
    while len(out) < num_steps:
        out.extend(sampler.epoch(rng, fixed))
    return np.asarray(out[:num_steps], dtype=np.int64).reshape(num_steps, B)


__all__ = ["SCHEMES", "BatchSampler", "draw_batches"]
