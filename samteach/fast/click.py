"""The mask decoder's math, rearranged for the interactive click: a few prompts on a cached image.

``modeling/`` holds the decoder as the paper draws it. This module computes the *same* function
for inference, rearranged in ways that pay off when the prompt has few tokens
(T ~ 7) and the image many (N = 4096 for the released models). ``SamPredictor`` runs it for
one image when the model is fast (the default); tests/test_fast_click.py holds it equal to the
readable decoder (fp32, 1e-4) and the predictor equal to Meta's.

1. **Per image, once.** In the first two-way layer the image side is still the image embedding
   plus the no-mask dense prompt, the same for every click without a mask prompt. Its three
   projections (keys and values of token->image attention, queries of image->token attention)
   are made at ``set_image`` and kept, as the embedding is.
2. **Re-association, per click.** Projecting all N image tokens (N x C x D multiply-adds) to
   meet T tokens is the expensive way round. For token->image attention, per head,

       q . (W_k x_n + b_k) = (q W_k) . x_n + q . b_k        A (X W_v^T + b_v) = (A X) W_v^T + b_v

   The query is pulled back into the image's C channels (``q W_k``: T x C) and meets the
   image tokens x_n there; q . b_k adds the same number to a whole row of scores and cancels
   in the softmax; and since each row of the attention A sums to 1, the values can be mixed
   before they are projected. For image->token attention the T keys are pulled back instead
   (``k W_q``), whose bias term b_q . k does *not* cancel (the softmax runs over the T keys)
   and is added; the output projection is applied to the T values before they are mixed
   (``v W_o``), not to the N mixed rows. Per head that costs N x C x T multiply-adds instead
   of N x C x c, and for all heads N x C x hT instead of N x C x D: fewer while hT < D (one
   click on SAM: 56 against 128).

3. **Sub-pixel order.** The upscaling convs and the hypernetwork classifiers work pixel by
   pixel, so their rows stay in the order the transposed convs produce them, and only the
   final masks are moved into place, by one gather (``_upscaled_masks``). Only the masks the
   call returns are computed (the three multimask ones, or the single one), and only their
   tokens' rows of the last attention.
4. **The products against the image** (N rows: the scores, the mixes, the upscaling convs
   with their GELU fused) go through :func:`gemm.linear`, on oneDNN where PyTorch has it.

``upscale_to_original`` brings the low-res logits to the image's
size in one bilinear resize instead of two (what a user sees as "the masks"); the two ways
differ on a few pixels along mask borders (tests measure the share).

Shapes: K prompts on one image, T prompt tokens, N = H*W image tokens, C channels, h heads,
c = D/h channels per head (D the attention's internal width).
"""

import functools
import math

import torch
import torch.nn.functional as F

from ..modeling.mask_decoder import MaskDecoder, hypernetwork_weights
from ..modeling.transformer import Attention, TwoWayAttentionBlock
from . import gemm
from .decoder import subpixel_linear

__all__ = ["ImageCache", "cache_image", "predict_masks", "upscale_to_original"]


class ImageCache:
    """What ``cache_image`` keeps for one image: the layer-0 image side and its projections,
    and the high-res path's projected maps in the rows' sub-pixel order (or None)."""

    def __init__(self, keys: torch.Tensor, keys_pe: torch.Tensor, key_pe: torch.Tensor,
                 t2i_k: torch.Tensor, t2i_v: torch.Tensor, i2t_q: torch.Tensor,
                 fine: list[torch.Tensor] | None) -> None:
        self.keys, self.keys_pe, self.key_pe = keys, keys_pe, key_pe  # (1, N, C) each
        self.t2i_k, self.t2i_v = t2i_k, t2i_v  # (N, D) each
        self.i2t_q = i2t_q  # (h, c, N): per head, channels before pixels
        self.fine = fine  # [(1, N*4, C/4), (1, N*16, C/8)]


@torch.no_grad()
def cache_image(decoder: MaskDecoder, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                no_mask_dense: torch.Tensor,
                high_res_features: list[torch.Tensor] | None = None) -> ImageCache:
    """The per-image work of a click: (1, C, H, W) maps -> ImageCache. The layer-0 part serves
    clicks without a mask prompt; ``high_res_features`` (the image encoder's
    ``high_res_stem`` maps, where the model has the path) are projected here once."""
    keys = (image_embedding + no_mask_dense).flatten(2).transpose(1, 2).contiguous()  # (1,N,C)
    key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # (1, N, C)
    keys_pe = keys + key_pe
    layer = decoder.transformer.layers[0]
    t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
    fine = None
    if high_res_features is not None:
        feat_s0, feat_s1 = high_res_features
        fine = [_subpixel_order(decoder.conv_s1(feat_s1), 1),
                _subpixel_order(decoder.conv_s0(feat_s0), 2)]
    h = i2t.num_heads
    i2t_q = i2t.q_proj(keys_pe[0]).view(-1, h, i2t.internal_dim // h).permute(1, 2, 0)
    return ImageCache(keys, keys_pe, key_pe, t2i.k_proj(keys_pe[0]), t2i.v_proj(keys[0]),
                      i2t_q.contiguous(), fine)


@torch.no_grad()
def predict_masks(
    decoder: MaskDecoder,
    cache: ImageCache,
    image_embedding: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor | None,
    multimask_output: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decoder.predict_masks`` for K prompts on one image: all 1 + M masks and IoUs, or with
    ``multimask_output`` given, only the ones ``decoder.select_outputs`` would keep.

    Args:
        cache: ``cache_image`` of this image (with its high-res maps, where the model has them).
        image_embedding: (1, C, H, W), used only when the prompts bring masks.
        sparse: (K, T, C) prompt tokens.
        dense: (K or 1, C, H, W) dense prompts embedded from masks, or None when no prompt
            brings a mask (then the dense prompt is the cached no-mask embedding).

    Returns:
        masks (K, 1+M, 4H, 4W) logits and iou_pred (K, 1+M); (K, M or 1, ...) with
        ``multimask_output``.
    """
    K = sparse.shape[0]
    _, C, H, W = image_embedding.shape
    queries = decoder.tokens(sparse)  # (K, T, C)
    query_pe = queries
    shared = dense is None  # no mask prompt: the cache applies
    if shared:
        keys, keys_pe = cache.keys, cache.keys_pe
    else:  # each prompt brings its own mask: its own image side from layer 0 on
        keys = (image_embedding + dense).flatten(2).transpose(1, 2)  # (K or 1, N, C)
        keys_pe = keys + cache.key_pe
    for i, layer in enumerate(decoder.transformer.layers):
        cached = shared and i == 0
        queries, keys = _two_way_block(layer, queries, keys, keys_pe, query_pe, cache, cached)
        keys_pe = keys + cache.key_pe
    # Only the rows of the tokens read afterwards are computed in the last attention: the IoU
    # token and the mask tokens whose masks are returned (not the prompt tokens).
    masks_kept = range(decoder.num_mask_tokens)
    if multimask_output is not None:
        masks_kept = range(1, decoder.num_mask_tokens) if multimask_output else range(1)
    rows = [0, *(1 + m for m in masks_kept)]
    queries, query_pe = queries[:, rows], query_pe[:, rows]
    final = decoder.transformer.final_attn_token_to_image
    out = _token_to_image(final, queries + query_pe, keys_pe, keys)
    queries = decoder.transformer.norm_final_attn(queries + out)

    mlps = decoder.output_hypernetworks_mlps
    hyper = hypernetwork_weights(queries[:, 1:], [mlps[m] for m in masks_kept])  # (K, kept, C/8)
    masks = _upscaled_masks(decoder, keys.expand(K, -1, -1), hyper, H, W, cache.fine)
    iou_pred = decoder.iou_prediction_head(queries[:, 0])  # (K, 1+M)
    return masks, iou_pred[:, list(masks_kept)]


def _upscaled_masks(decoder: MaskDecoder, x: torch.Tensor, hyper: torch.Tensor, H: int, W: int,
                    fine: list[torch.Tensor] | None) -> torch.Tensor:
    """``output_upscaling`` and the hypernetwork classifiers, pixel by pixel in sub-pixel order.

    Each 2x2 transposed conv is a Linear layer per pixel whose 4 outputs are the pixel's 2x2
    sub-pixels (see ``conv_transpose_2x2``), and everything after it, up to the masks, works
    on one pixel at a time. So the rows are left in the order (token, i, j, i', j') and only
    the (1+M) masks, a few channels, are moved to their image positions at the end, instead of
    the 64- and 32-channel maps after each conv: x (K, N, C), hyper (K, 1+M, C/8), ``fine``
    the cached high-res maps -> (K, 1+M, 4H, 4W).
    """
    conv1, norm, act1, conv2, act2 = decoder.output_upscaling
    K = x.shape[0]
    y = subpixel_linear(x, conv1).view(K, -1, conv1.weight.shape[1])  # (K, N*4, C/4): (n, i, j)
    if fine is not None:
        y = y + fine[0]
    y = act1(F.layer_norm(y, y.shape[-1:], norm.weight, norm.bias, norm.eps))
    if fine is None and gemm.is_exact_gelu(act2):  # the GELU fused into the product
        y = subpixel_linear(y, conv2, gelu=True).view(K, -1, conv2.weight.shape[1])
    else:
        y = subpixel_linear(y, conv2).view(K, -1, conv2.weight.shape[1])  # (K, N*16, C/8)
        if fine is not None:  # rows (n, i, j, i', j')
            y = y + fine[1]
        y = act2(y)
    if K == 1:
        masks = gemm.linear(hyper[0], y[0]).unsqueeze(0)  # (1, 1+M, N*16)
    else:
        masks = hyper @ y.transpose(1, 2)  # (K, 1+M, N*16): rows (n, i, j, i', j')
    # pixel (4y + 2i + i', 4x + 2j + j') <- row (y, x, i, j, i', j'): one gather (a permuted
    # copy with inner runs of two numbers is several times slower)
    flat = masks.flatten(0, 1)  # (K * (1+M), N*16)
    flat = flat.gather(1, _image_order(H, W, masks.device).expand(flat.shape[0], -1))
    return flat.view(K, -1, 4 * H, 4 * W)


@functools.lru_cache(maxsize=8)
def _image_order(H: int, W: int, device: torch.device) -> torch.Tensor:
    """For each pixel of a (4H, 4W) map in raster order, its row in the sub-pixel order."""
    rows = torch.arange(H * W * 16, device=device).view(H, W, 2, 2, 2, 2)
    return rows.permute(0, 2, 4, 1, 3, 5).flatten()  # (y, i, i', x, j, j')


def _subpixel_order(fine: torch.Tensor, levels: int) -> torch.Tensor:
    """A per-image map (1, C', 2^l H, 2^l W) in the rows' sub-pixel order: (1, N*4^l, C')."""
    B, C, h, w = fine.shape
    H, W = h >> levels, w >> levels
    if levels == 1:  # pixel (2y + i, 2x + j) -> row (y, x, i, j)
        fine = fine.view(B, C, H, 2, W, 2).permute(0, 2, 4, 3, 5, 1)
    else:  # pixel (4y + 2i + i', 4x + 2j + j') -> row (y, x, i, j, i', j')
        fine = fine.view(B, C, H, 2, 2, W, 2, 2).permute(0, 2, 5, 3, 6, 4, 7, 1)
    return fine.reshape(B, -1, C)


def _two_way_block(block: TwoWayAttentionBlock, queries, keys, keys_pe, query_pe,
                   cache: ImageCache, cached: bool):
    """``TwoWayAttentionBlock.forward`` with the attentions re-associated (or cached)."""
    queries = block.token_self_attention(queries, query_pe)
    kv = (cache.t2i_k, cache.t2i_v) if cached else None
    out = _token_to_image(block.cross_attn_token_to_image, queries + query_pe, keys_pe, keys, kv)
    queries = block.norm2(queries + out)
    queries = block.norm3(queries + block.mlp(queries))
    q_img = cache.i2t_q if cached else None
    summed = _image_to_token(block.cross_attn_image_to_token, keys, keys_pe,
                             queries + query_pe, queries, q_img)  # keys + attention, one matmul
    return queries, block.norm4(summed)


def _heads(attn: Attention) -> tuple[int, int]:
    return attn.num_heads, attn.internal_dim // attn.num_heads


def _token_to_image(attn: Attention, q_in, k_in, v_in, projected=None) -> torch.Tensor:
    """Attention of T prompt tokens over N image tokens: q_in (K, T, C), k_in and v_in
    (1 or K, N, C); ``projected`` = the image side's keys and values (N, D), if cached."""
    h, c = _heads(attn)
    K, T, C = q_in.shape
    q = attn.q_proj(q_in).view(K, T, h, c).transpose(1, 2)  # (K, h, T, c)
    if projected is not None:
        k, v = (x.view(-1, h, c).transpose(0, 1) for x in projected)  # (h, N, c)
        weights = (q @ k.transpose(1, 2) / math.sqrt(c)).softmax(dim=-1)  # (K, h, T, N)
        out = weights @ v  # (K, h, T, c)
    else:
        # q W_k: each head's query in the image's C channels; the bias q . b_k cancels.
        q_c = torch.einsum("khtc,hcC->khtC", q / math.sqrt(c), attn.k_proj.weight.view(h, c, C))
        scores = _times_image(q_c.flatten(1, 2), k_in)  # (K, h*T, N)
        mixed = _times_image(scores.softmax(dim=-1), v_in.transpose(1, 2))  # (K, h*T, C): A X
        out = torch.einsum("khtC,hcC->khtc", mixed.view(K, h, T, C),
                           attn.v_proj.weight.view(h, c, C))
        out = out + attn.v_proj.bias.view(h, 1, c)
    return attn.out_proj(out.transpose(1, 2).reshape(K, T, h * c))


def _image_to_token(attn: Attention, residual, q_in, k_in, v_in,
                    projected_q=None) -> torch.Tensor:
    """``residual`` (1 or K, N, C) + the attention of N image tokens over T prompt tokens: q_in
    (1 or K, N, C), k_in and v_in (K, T, C); ``projected_q`` = the image side's queries
    (h, c, N), if cached."""
    h, c = _heads(attn)
    K, T, C = k_in.shape
    k = attn.k_proj(k_in).view(K, T, h, c).transpose(1, 2)  # (K, h, T, c)
    v = attn.v_proj(v_in).view(K, T, h, c).transpose(1, 2)  # (K, h, T, c)
    k = k / math.sqrt(c)  # the softmax's scale, on the T keys rather than the N x T scores
    if projected_q is not None:
        scores = k @ projected_q  # (K, h, T, c) @ (h, c, N) -> (K, h, T, N)
    else:
        # k W_q: each head's keys in the image's C channels; the bias b_q . k varies with the
        # key, so it stays.
        k_c = torch.einsum("khtc,hcC->khtC", k, attn.q_proj.weight.view(h, c, C))
        bias = torch.einsum("khtc,hc->kht", k, attn.q_proj.bias.view(h, c))  # (K, h, T)
        scores = _times_image(k_c.flatten(1, 2), q_in)  # (K, h*T, N)
        scores = scores.add_(bias.reshape(K, h * T, 1)).view(K, h, T, -1)
    # The softmax runs over the T tokens of each head: axis 2 here, with the N pixels innermost
    # (PyTorch's kernel is slow for a short last axis, fast for a short inner one).
    weights = scores.softmax(dim=2).flatten(1, 2)  # (K, h*T, N)
    # v W_o: the output projection on the T values before mixing, not on the N mixed rows; its
    # bias rides along: every pixel's weights sum to 1 in each head, h in all.
    v_out = torch.einsum("khtc,Chc->khtC", v, attn.out_proj.weight.view(C, h, c))
    v_out = v_out.reshape(K, h * T, C) + attn.out_proj.bias / h
    if K == 1 and residual.shape[0] == 1:  # residual + A^T V_out, in one product
        return gemm.linear(weights[0].T, v_out[0].T, residual=residual[0]).unsqueeze(0)
    return torch.baddbmm(residual, weights.transpose(1, 2), v_out)  # residual + (K, N, C)


def _times_image(a: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """a (K, m, C) times the image side (1 or K, n, C) transposed -> (K, m, n): one product
    against a shared image (on oneDNN where it can, see ``gemm``), a batched one otherwise."""
    if image.shape[0] == 1:
        return gemm.linear(a, image[0])
    return a @ image.transpose(1, 2)


def upscale_to_original(low_res: torch.Tensor, input_size: tuple[int, int],
                        original_size: tuple[int, int], img_size: int) -> torch.Tensor:
    """Low-res logits (..., h, w) -> (..., H, W) in one bilinear resize of the image's part.

    ``Sam.postprocess_masks`` resizes twice (to the padded square, crop, to the image). Here
    each output pixel samples the low-res map once, at the position the two steps map it to:
    the image's part of the low-res map, input_size * h / img_size cells (not a whole number
    in general), is stretched over the H x W pixels. The logits differ slightly (one
    interpolation instead of two), and so the masks on a few border pixels.
    """
    h, w = low_res.shape[-2:]
    extent = (input_size[0] * h / img_size, input_size[1] * w / img_size)  # in low-res cells
    # whole cells that cover the extent; contiguous, or the resize writes a strided output
    cropped = low_res[..., : math.ceil(extent[0]), : math.ceil(extent[1])].contiguous()
    scale = (original_size[0] / extent[0], original_size[1] / extent[1])
    out = F.interpolate(cropped, scale_factor=scale, mode="bilinear", align_corners=False,
                        recompute_scale_factor=False)  # samples at (y + 0.5) / scale - 0.5
    return out[..., : original_size[0], : original_size[1]]
