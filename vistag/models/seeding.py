"""Seeded randomness that stays inside the block that asked for it.

Training seeds torch's CPU generator so a run is reproducible; a library call must not
change the caller's random state, so the generator is forked and restored around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's default CPU generator for the block; restore the caller's state after it.

    Weight initialisation, ``torch.randperm`` without a generator and dropout inside the block
    draw the same numbers as after ``torch.manual_seed(seed)``; the CUDA generators are not
    touched (the heads and the projection train on CPU).

    Examples:
        >>> with seeded(0):
        ...     a = torch.rand(2)
        >>> with seeded(0):
        ...     b = torch.rand(2)
        >>> bool((a == b).all())
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
