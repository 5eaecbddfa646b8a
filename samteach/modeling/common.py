"""Small layers shared by SAM's parts.

Shapes: B batch, N tokens, C channels, H/W height/width.
"""

import torch
from torch import nn


class MLPBlock(nn.Module):
    """The transformer feed-forward layer: Linear -> activation -> Linear."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        return self.lin2(self.act(self.lin1(x)))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a (B, C, H, W) feature map.

    ``nn.LayerNorm`` normalises the *last* axis; conv features keep channels on axis 1, so we
    normalise each pixel's C-vector: the ConvNeXt-style LayerNorm SAM uses in its neck,
    mask encoder and upscaling path.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        mean = x.mean(1, keepdim=True)  # (B, 1, H, W)
        var = (x - mean).pow(2).mean(1, keepdim=True)  # biased variance, as in nn.LayerNorm
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]
