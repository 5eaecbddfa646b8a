"""The two-way transformer inside SAM's mask decoder (Fig. 14; App. A "Lightweight mask decoder").

Prompt tokens and image tokens update *each other*: every block runs token self-attention,
token->image cross-attention, an MLP on the tokens, and image->token cross-attention.

Shapes: B prompts (each with its own copy of its image's embedding, as in Meta's code),
T prompt tokens, N = H*W image tokens, C channels, h heads, c channels per head.

This is the readable form. ``samteach.fast`` runs the same blocks on (B, K, ·, C) tensors, K
prompts sharing one image's copy until they write into it, with a fused attention kernel.
"""

import math

import torch
from torch import nn

from .common import MLPBlock


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks, then a last token->image attention."""

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        activation: type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                activation=activation,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run prompts against their images.

        Args:
            image_embedding: (B, C, H, W), one map per prompt (the decoder repeats an image's
                map for each of its prompts and adds the prompt's dense embedding).
            image_pe: (1 or B, C, H, W) positional encoding of the grid.
            point_embedding: (B, T, C) the tokens of each prompt.

        Returns:
            queries (B, T, C) and keys (B, N, C), the updated tokens of both sides.
        """
        keys = image_embedding.flatten(2).transpose(1, 2)  # (B, N, C): the map as a sequence
        key_pe = image_pe.flatten(2).transpose(1, 2)  # (1 or B, N, C)
        queries = point_embedding  # (B, T, C)
        query_pe = point_embedding  # the original prompt tokens serve as the tokens' "position"

        for layer in self.layers:
            queries, keys = layer(queries, keys, query_pe, key_pe)

        # A last token->image attention (App. A), so the tokens read the final image side.
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class TwoWayAttentionBlock(nn.Module):
    """One two-way block: the four steps of SAM Fig. 14, each with a residual and a LayerNorm."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        activation: type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, T, C), keys (B, N, C) -> the same, both updated. (The code only adds,
        normalises and calls its attentions, so ``samteach.fast`` runs it unchanged on
        (B, K, ·, C) tensors whose attentions broadcast over the K prompts.)"""
        # (1) Self-attention among the prompt tokens.
        queries = self.token_self_attention(queries, query_pe)

        # (2) Tokens attend to the image: each token gathers the pixels relevant to it.
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))

        # (3) An MLP updates each token on its own.
        queries = self.norm3(queries + self.mlp(queries))

        # (4) The image attends to the tokens: every pixel reads the prompts, so the image
        # embedding becomes prompt-aware. Keys did not change since (2), so k is still valid.
        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys

    def token_self_attention(self, queries: torch.Tensor, query_pe: torch.Tensor) -> torch.Tensor:
        """Step (1), the prompt tokens attend to each other, with its residual and norm1. In
        layer 0 the tokens still *are* their positional encodings, so SAM adds no PE and no
        residual there (App. A)."""
        if self.skip_first_layer_pe:
            return self.norm1(self.self_attn(queries, queries, queries))
        q = queries + query_pe
        return self.norm1(queries + self.self_attn(q, q, queries))


class Attention(nn.Module):
    """Multi-head attention whose projections may shrink the width by ``downsample_rate``.

    softmax(q k^T / sqrt(c)) v in each of h heads, written out step by step; the projections
    map C channels to D = C / downsample_rate (the cross-attentions run at half width: the image
    side has thousands of tokens, App. A).
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide embedding_dim / "
                             f"downsample_rate ({self.internal_dim})")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, n, _ = x.shape
        return x.view(B, n, self.num_heads, -1).transpose(1, 2)  # (B, h, n, c)

    @staticmethod
    def _recombine_heads(x: torch.Tensor) -> torch.Tensor:
        B, h, n, c = x.shape
        return x.transpose(1, 2).reshape(B, n, h * c)  # (B, n, D)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, n, C), k and v (B, m, C) -> (B, n, C)."""
        weights = self.attention_weights(q, k)  # (B, h, n, m)
        v = self._separate_heads(self.v_proj(v))  # (B, h, m, c)
        out = weights @ v  # (B, h, n, c): each query's mix of the values
        return self.out_proj(self._recombine_heads(out))  # (B, n, C)

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The attention matrix of each head, softmax(q k^T / sqrt(c)).

        q (B, n, C), k (B, m, C) -> (B, h, n, m): row i says how query i spreads its attention
        over the m keys (each row sums to 1). Labs plot it.
        """
        q = self._separate_heads(self.q_proj(q))  # (B, h, n, c)
        k = self._separate_heads(self.k_proj(k))  # (B, h, m, c)
        logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, h, n, m)
        return logits.softmax(dim=-1)
