"""The two-way transformer inside SAM's mask decoder (Fig. 14; App. A "Lightweight mask decoder").

Prompt tokens and image tokens update *each other*: every block runs token self-attention,
token->image cross-attention, an MLP on the tokens, and image->token cross-attention.

Shapes: B images, K prompts per image, T prompt tokens, N = H*W image tokens, C channels,
h heads, c channels per head. Inside the decoder, tensors are (B, K, tokens, C): the image
side starts as (B, 1, N, C) -- one copy per image, shared by its K prompts -- and becomes
(B, K, N, C) at the first image->token attention, where each prompt writes into its own copy.
"""

import math

import torch
import torch.nn.functional as F
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
        attention: str = "sdpa",
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
                attention=attention,
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate, attention=attention
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run prompts against images.

        Args:
            image_embedding: (B, C, H, W) -- one map per image, shared by that image's prompts.
            image_pe: (1, C, H, W) positional encoding of the grid.
            point_embedding: (B*K, T, C) prompt tokens, image-major (image 0's K prompts first).

        Returns:
            queries (B*K, T, C) and keys (B*K, N, C), the updated tokens of both sides.
        """
        B = image_embedding.shape[0]
        K = point_embedding.shape[0] // B
        # Maps become token sequences; contiguous once here, so later ops stream through memory.
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous().unsqueeze(1)  # (B,1,N,C)
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous().unsqueeze(1)  # (1, 1, N, C)
        queries = point_embedding.unflatten(0, (B, K))  # (B, K, T, C)
        query_pe = queries  # the original prompt tokens serve as the tokens' "position"

        for layer in self.layers:
            queries, keys = layer(queries, keys, query_pe, key_pe)

        q, k = queries + query_pe, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        keys = keys.expand(B, K, -1, -1)  # (B, K, N, C); already so unless depth == 0
        return queries.flatten(0, 1), keys.flatten(0, 1)


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
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads, attention=attention)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate, attention=attention
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate, attention=attention
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, K, T, C), keys (B, 1 or K, N, C) -> the same, keys now (B, K, N, C)."""
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

    Inputs are (B, K, n, C) -- or (B, n, C), as in the original code. The prompt axis K
    broadcasts: keys shared by all K prompts of an image may have K = 1 (then the K prompts'
    queries are stacked into one longer query sequence, since attention treats queries
    independently), and so may shared queries (then they are expanded).

    ``attention="explicit"`` computes softmax(q k^T / sqrt(c)) v step by step;
    ``"sdpa"`` calls the fused ``F.scaled_dot_product_attention``. Same numbers.
    """

    def __init__(
        self, embedding_dim: int, num_heads: int, downsample_rate: int = 1,
        attention: str = "sdpa",
    ) -> None:
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
        self.attention = attention

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        M, n, _ = x.shape
        return x.view(M, n, self.num_heads, -1).transpose(1, 2)  # (M, h, n, c)

    @staticmethod
    def _recombine_heads(x: torch.Tensor) -> torch.Tensor:
        M, h, n, c = x.shape
        return x.transpose(1, 2).reshape(M, n, h * c)  # (M, n, h*c)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, Kq, n, C), k and v (B, Kk, m, C) -> (B, max(Kq, Kk), n, C)."""
        if q.dim() == 3:  # (B, n, C): one prompt per batch row
            return self.forward(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        q, k, v = self.q_proj(q), self.k_proj(k), self.v_proj(v)
        B, Kq, n, _ = q.shape
        Kk = k.shape[1]
        if Kk == 1 and Kq > 1:
            q = q.reshape(B, 1, Kq * n, -1)  # K prompts' queries as one sequence: (B, 1, K*n, ·)
        elif Kq == 1 and Kk > 1:
            q = q.expand(B, Kk, n, -1)  # shared queries (image tokens) meet per-prompt keys
        q, k, v = (self._separate_heads(x.flatten(0, 1)) for x in (q, k, v))  # (M, h, ·, c)

        if self.attention == "explicit":
            attn = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (M, h, n, m)
            out = attn.softmax(dim=-1) @ v  # (M, h, n, c)
        else:
            out = F.scaled_dot_product_attention(q, k, v)

        out = self._recombine_heads(out).view(B, max(Kq, Kk), n, -1)  # (B, K, n, h*c)
        return self.out_proj(out)

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The attention matrix of each head, softmax(q k^T / sqrt(c)), for plots and checks.

        q (B, n, C), k (B, m, C) -> (B, h, n, m): row i says how query i spreads its attention
        over the m keys (each row sums to 1). ``forward`` mixes the values with exactly these.
        """
        q = self._separate_heads(self.q_proj(q))  # (B, h, n, c)
        k = self._separate_heads(self.k_proj(k))  # (B, h, m, c)
        return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
