"""The mask decoder for many prompts per image: the same numbers as ``modeling``'s, less work.

``modeling.mask_decoder`` follows Meta's code: every prompt gets its own copy of its image's
embedding, and the upscaling runs as the ``nn.Sequential`` of convs it is. For K prompts on one
image (training samples several per image; the automatic generator asks 64 at a time) this
module computes the same function three ways cheaper:

1. **One image copy for K prompts.** The image side enters the transformer as (B, 1, N, C),
   shared by the image's K prompts; the attention broadcasts over that axis (K prompts' queries
   against one image become one longer query sequence), and only the first image->token
   attention, where each prompt writes into the image, makes K copies. Likewise the dense
   prompt is added once per image when no prompt brings a mask.
2. **A fused attention kernel** (``F.scaled_dot_product_attention``).
3. **The upscaling channels-last**, its 2x2 transposed convs as one matmul per pixel
   (:func:`conv_transpose_2x2`), several times faster on a CPU than the conv kernel.

The blocks themselves (``TwoWayAttentionBlock.forward``) are the readable code: they only add,
normalise and call their attentions, so they run unchanged on (B, K, ·, C) tensors.

Shapes: B images, K prompts per image, T tokens, N = H*W image tokens, C channels, h heads,
c channels per head, M masks.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.mask_decoder import MaskDecoder, hypernetwork_weights
from ..modeling.transformer import Attention, TwoWayTransformer
from . import gemm


class FastAttention(Attention):
    """``modeling.transformer.Attention`` on (B, K, n, C) inputs, broadcasting over K.

    Keys shared by an image's K prompts may have K = 1: then the K prompts' queries are stacked
    into one longer query sequence (attention treats queries independently), and shared queries
    (the image tokens) meeting per-prompt keys are expanded. (B, n, C) inputs work too.
    """

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, Kq, n, C), k and v (B, Kk, m, C) -> (B, max(Kq, Kk), n, C)."""
        if q.dim() == 3:  # (B, n, C): one prompt per batch row
            return self.forward(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        q, k, v = self.q_proj(q), self.k_proj(k), self.v_proj(v)
        B, Kq, n, _ = q.shape
        Kk = k.shape[1]
        if Kk == 1 and Kq > 1:
            q = q.reshape(B, 1, Kq * n, -1)  # K prompts' queries as one sequence: (B, 1, K*n, D)
        elif Kq == 1 and Kk > 1:
            q = q.expand(B, Kk, n, -1)  # shared queries (image tokens) meet per-prompt keys
        q, k, v = (self._separate_heads(x.flatten(0, 1)) for x in (q, k, v))  # (B*K, h, ·, c)
        out = F.scaled_dot_product_attention(q, k, v)  # (B*K, h, ·, c)
        out = self._recombine_heads(out).view(B, max(Kq, Kk), n, -1)  # (B, K, n, D)
        return self.out_proj(out)


class FastTwoWayTransformer(TwoWayTransformer):
    """``TwoWayTransformer`` with one image copy per image, not per prompt."""

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embedding (B, C, H, W) one map per image, image_pe (1, C, H, W), point_embedding
        (B*K, T, C) image-major -> queries (B*K, T, C), keys (B*K, N, C)."""
        B = image_embedding.shape[0]
        K = point_embedding.shape[0] // B
        # Contiguous once here, so later ops stream through memory.
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous().unsqueeze(1)  # (B,1,N,C)
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous().unsqueeze(1)  # (1, 1, N, C)
        queries = point_embedding.unflatten(0, (B, K))  # (B, K, T, C)
        query_pe = queries

        for layer in self.layers:
            queries, keys = layer(queries, keys, query_pe, key_pe)  # keys (B, K, N, C) after

        q, k = queries + query_pe, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        keys = keys.expand(B, K, -1, -1)  # (B, K, N, C); already so unless depth == 0
        return queries.flatten(0, 1), keys.flatten(0, 1)


class FastMaskDecoder(MaskDecoder):
    """``MaskDecoder`` with the image shared by its prompts and the upscaling channels-last."""

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All 1 + M masks (B*K, 1+M, 4H, 4W) and IoU predictions (B*K, 1+M)."""
        BK = sparse_prompt_embeddings.shape[0]
        tokens = self.tokens(sparse_prompt_embeddings)  # (B*K, T, C)
        src = add_dense_prompt(image_embeddings, dense_prompt_embeddings)  # (B or B*K, C, H, W)
        _, C, H, W = src.shape
        hs, src = self.transformer(src, image_pe, tokens)  # (B*K, T, C), (B*K, N, C)
        fine = None
        if high_res_features is not None:  # projected once per image, channels-last
            feat_s0, feat_s1 = high_res_features
            fine = [self.conv_s0(feat_s0).permute(0, 2, 3, 1),  # (B, 4H, 4W, C/8)
                    self.conv_s1(feat_s1).permute(0, 2, 3, 1)]  # (B, 2H, 2W, C/4)
        upscaled = upscale(self.output_upscaling, src.view(BK, H, W, C), fine)
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]  # (B*K, 1+M, C)
        hyper_in = hypernetwork_weights(mask_tokens_out,
                                        self.output_hypernetworks_mlps)  # (B*K, 1+M, C/8)
        masks = upscaled.flatten(1, 2) @ hyper_in.transpose(1, 2)  # (B*K, 4H*4W, 1+M)
        masks = masks.transpose(1, 2).unflatten(2, (4 * H, 4 * W))  # (B*K, 1+M, 4H, 4W)
        return masks, self.iou_prediction_head(hs[:, 0])


def upscale(output_upscaling: nn.Sequential, x: torch.Tensor,
            fine: list[torch.Tensor] | None = None) -> torch.Tensor:
    """``output_upscaling`` on a channels-last map: (P, H, W, C) -> (P, 4H, 4W, C/8).

    The same numbers as ``output_upscaling(x.permute(0, 3, 1, 2))`` (two transposed convs,
    LayerNorm2d, GELUs). With the high-res path (SAM 2), ``fine`` = [(B, 4H, 4W, C/8),
    (B, 2H, 2W, C/4)] projected image features, each added after its transposed conv (P = B*K
    prompts, image-major).
    """
    conv1, norm, act1, conv2, act2 = output_upscaling
    x = conv_transpose_2x2(x, conv1)  # (P, 2H, 2W, C/4)
    if fine is not None:
        x = add_per_image(x, fine[1])
    x = act1(F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps))
    x = conv_transpose_2x2(x, conv2)  # (P, 4H, 4W, C/8)
    if fine is not None:
        x = add_per_image(x, fine[0])
    return act2(x)


def conv_transpose_2x2(x: torch.Tensor, conv: nn.ConvTranspose2d) -> torch.Tensor:
    """``conv`` (kernel 2, stride 2) on a channels-last (B, H, W, C) map -> (B, 2H, 2W, C').

    Each input pixel paints its own 2x2 block of output pixels and the blocks never overlap,
    so this transposed conv is one Linear layer C -> 2*2*C' per pixel, followed by moving the
    2x2 sub-pixels into the grid. As a plain matmul it runs several times faster on a CPU.
    """
    B, H, W, _ = x.shape
    y = subpixel_linear(x, conv)  # (B, H, W, 2*2*C')
    y = y.unflatten(-1, (2, 2, -1)).permute(0, 1, 3, 2, 4, 5)  # (B, H, i, W, j, C')
    return y.reshape(B, 2 * H, 2 * W, -1)  # output pixel (2y + i, 2x + j)


def subpixel_linear(x: torch.Tensor, conv: nn.ConvTranspose2d, gelu: bool = False) -> torch.Tensor:
    """``conv`` (kernel 2, stride 2) as a Linear layer per pixel: (..., C) -> (..., 2*2*C'),
    the pixel's 2x2 sub-pixels (i, j) side by side, each with its C' channels (then a GELU,
    fused into the product, if ``gelu``)."""
    weight = conv.weight.permute(0, 2, 3, 1).flatten(1)  # (C, 2*2*C'): [c, (i, j, c')]
    return gemm.linear(x, weight.T, conv.bias.repeat(4), gelu=gelu)


def add_per_image(x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(B*K, ...) per-prompt maps + (B, ...) per-image maps, image-major: prompt p gets image
    p // K's map."""
    B = features.shape[0]
    return (x.unflatten(0, (B, -1)) + features[:, None]).flatten(0, 1)


def add_dense_prompt(image_embeddings: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """Image embeddings (B, C, H, W) + dense prompts (B*K, C, H, W) -> (B or B*K, C, H, W).

    When every prompt has the same dense embedding (no mask prompt: ``PromptEncoder`` returns
    one map expanded, with batch stride 0), the sum is made once per image, not K times.
    """
    B = image_embeddings.shape[0]
    if dense.shape[0] == 1 or dense.stride(0) == 0:
        return image_embeddings + dense[:1]  # (B, C, H, W)
    K = dense.shape[0] // B
    summed = image_embeddings.unsqueeze(1) + dense.unflatten(0, (B, K))  # (B, K, C, H, W)
    return summed.flatten(0, 1)
