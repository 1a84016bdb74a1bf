"""The multi-task head trained on frozen image embeddings (torch).

One shared hidden layer feeds a softmax per hierarchy level, a softmax per
attribute and a sigmoid layer for the multi-label tags. Inputs are standardised
with the training mean/std, stored as buffers so a saved head is self-contained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class HeadConfig:
    """Shape of a :class:`MultiTaskHead`.

    Attributes:
        in_dim: embedding size.
        tasks: softmax tasks, ``name -> number of classes`` (levels, then attributes).
        n_tags: units of the multi-label tag layer (0: none).
        hidden: shared hidden layer width (0: linear heads).
        dropout: dropout on the input and hidden layer.
    """

    in_dim: int
    tasks: dict[str, int] = field(default_factory=dict)
    n_tags: int = 0
    hidden: int = 1024
    dropout: float = 0.3

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


class MultiTaskHead(nn.Module):
    """Shared trunk plus one output layer per task (see the module docstring)."""

    mean: torch.Tensor  # buffers: the training set's input statistics
    std: torch.Tensor
    trunk: nn.Module

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.in_dim))
        self.register_buffer("std", torch.ones(config.in_dim))
        if config.hidden:
            self.trunk = nn.Sequential(
                nn.Dropout(config.dropout / 2),
                nn.Linear(config.in_dim, config.hidden),
                nn.LayerNorm(config.hidden),
                nn.GELU(),
                nn.Dropout(config.dropout),
            )
            width = config.hidden
        else:
            self.trunk = nn.Dropout(config.dropout / 2)
            width = config.in_dim
        self.heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in config.tasks.items()})
        self.tags = nn.Linear(width, config.n_tags) if config.n_tags else None

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training-set statistics used to standardise inputs."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-6))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task name, plus ``"__tags__"`` for the tag layer."""
        h = self.trunk((x - self.mean) / self.std)
        out = {name: layer(h) for name, layer in self.heads.items()}
        if self.tags is not None:
            out["__tags__"] = self.tags(h)
        return out
