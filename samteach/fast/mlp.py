"""``modeling.common``'s feed-forward layer with its products on oneDNN (see ``gemm``)."""

import torch

from ..modeling.common import MLPBlock
from . import gemm


class FastMLPBlock(MLPBlock):
    """``MLPBlock``: Linear -> GELU -> Linear, the GELU fused into the first product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        if not gemm.is_exact_gelu(self.act):
            return super().forward(x)
        hidden = gemm.linear(x, self.lin1.weight, self.lin1.bias, gelu=True)
        return gemm.linear(hidden, self.lin2.weight, self.lin2.bias)
