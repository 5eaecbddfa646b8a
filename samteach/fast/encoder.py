"""The image encoder's attention with a fused kernel: the same numbers as ``modeling``'s.

Its two products (``qkv``, ``proj``) go through ``gemm.linear`` (oneDNN, where PyTorch has it).

``modeling.image_encoder.Attention`` writes softmax(q k^T / sqrt(c) + bias) v out and stores
one (N, N) matrix per head: 4096 x 4096 floats per head in a global block at 1024 px. Here
``F.scaled_dot_product_attention`` computes it without storing the softmax, and the decomposed
relative position bias, which the kernel takes as an additive mask, is built for one chunk of
query rows at a time, so the whole (B, nh, N, N) bias never exists either.

Shapes as in ``modeling.image_encoder``: B images, nh heads, H/W grid, N = H*W, c per head.
"""

import torch
import torch.nn.functional as F

from ..modeling.image_encoder import Attention, combine_rel_pos, rel_pos_terms, relative_table
from . import gemm

# At most this many bias floats at once: 4M floats (16 MB) keeps each chunk cache-sized, which
# measured fastest on a 2-core CPU.
BIAS_CHUNK_ELEMENTS = 1 << 22


class FastAttention(Attention):
    """``modeling.image_encoder.Attention`` through the fused kernel, bias in row chunks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        B, H, W, C = x.shape
        q, k, v = self.project(x)  # each (B, nh, N, c)
        if self.use_rel_pos:
            x = self._chunked(q, k, v, (H, W))
        else:
            x = F.scaled_dot_product_attention(q, k, v)  # (B, nh, N, c)
        x = x.transpose(1, 2).reshape(B, H, W, C)
        return gemm.linear(x, self.proj.weight, self.proj.bias)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, H, W, C) -> queries, keys, values, each (B, nh, N, c)."""
        B, H, W, _ = x.shape
        qkv = gemm.linear(x, self.qkv.weight, self.qkv.bias)
        qkv = qkv.reshape(B, H * W, 3, self.num_heads, -1)  # (B, N, 3, nh, c)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def _chunked(self, q, k, v, hw: tuple[int, int]) -> torch.Tensor:
        H, W = hw
        B, nh = q.shape[:2]
        q_grid = q.unflatten(2, (H, W))  # (B, nh, H, W, c), unscaled, as in ViTDet
        bias_h, bias_w = rel_pos_terms(q_grid, relative_table(self.rel_pos_h, H),
                                       relative_table(self.rel_pos_w, W))  # small
        rows = max(1, BIAS_CHUNK_ELEMENTS // (B * nh * W * H * W))  # grid rows per chunk
        chunks = []
        for top in range(0, H, rows):
            bottom = min(top + rows, H)
            bias = combine_rel_pos(bias_h[:, :, top:bottom], bias_w[:, :, top:bottom])
            q_rows = q[:, :, top * W : bottom * W]  # (B, nh, rows*W, c)
            chunks.append(F.scaled_dot_product_attention(q_rows, k, v, attn_mask=bias))
        return torch.cat(chunks, dim=2)  # (B, nh, N, c)
