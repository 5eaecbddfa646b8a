"""Checks of lab 03 (two-way attention): downsampled attention, the two-way block, hypernetworks.

Expected values come from samteach's modules (``Attention``, ``TwoWayAttentionBlock``,
``hypernetwork_masks``); the mistakes are the same computations with one thing done wrong.
A mistake may be made in several ways (a scale of sqrt(C) or of sqrt(C/r), say): its lambda
returns whichever way comes nearest to the student's answer.
"""

from collections.abc import Callable

import torch
from torch import nn

from ..modeling.mask_decoder import MLP, hypernetwork_masks
from ..modeling.transformer import Attention, TwoWayAttentionBlock
from ._core import Context, exercise, nearest, seeded_randn

__all__ = ["check_downsampled_attention", "check_hypernetwork_masks", "check_two_way_block"]


def _seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """A module with seeded weights (LayerNorms perturbed too), leaving the global RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = make()
        for sub in module.modules():
            if isinstance(sub, nn.LayerNorm):
                sub.weight.data += 0.3 * torch.randn_like(sub.weight)
                sub.bias.data += 0.3 * torch.randn_like(sub.bias)
    return module.eval()


# ---------------------------------------------------------------------- downsampled attention


def _attend(layer: Attention, q, k, v, heads: int | None = None, scale: float | None = None,
            softmax_dim: int = -1, split_by_reshape: bool = False,
            merge_by_reshape: bool = False, project_out: bool = True) -> torch.Tensor:
    """``layer``'s attention with a chosen head count, scale, softmax axis or head reshuffling
    (for mistakes; the defaults compute it right)."""
    heads = heads or layer.num_heads
    B, n, _ = q.shape
    q, k, v = layer.q_proj(q), layer.k_proj(k), layer.v_proj(v)  # (B, n, C/r)
    if split_by_reshape:  # (B, n, C/r) read straight as (B, h, n, c): tokens and heads mixed
        q, k, v = (x.reshape(B, heads, x.shape[1], -1) for x in (q, k, v))
    else:
        q, k, v = (x.unflatten(-1, (heads, -1)).transpose(1, 2) for x in (q, k, v))  # (B,h,n,c)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    out = (q @ k.transpose(-2, -1) * scale).softmax(softmax_dim) @ v  # (B, h, n, c)
    out = out.reshape(B, n, -1) if merge_by_reshape else out.transpose(1, 2).flatten(2)
    return layer.out_proj(out) if project_out else out  # (B, n, C)


@exercise(
    "downsampled_attention", lab="03_two_way_attention", points=2,
    what="downsampled_attention(layer, q, k, v)",
    reference=("samteach.modeling.transformer.Attention.forward",
               "samteach.fast.decoder.FastAttention.forward"),
    mistakes={
        "softmax_axis": "the softmax runs over the queries (dim=-2); each query's weights over "
        "the keys must sum to 1: take the softmax over the last axis (dim=-1) of the "
        "(B, h, n, m) logits",
        "scale_full_width": "the logits are divided by the square root of the full width (C or "
        "C/r); divide by sqrt(c), the channels of ONE head: c = (C / downsample_rate) / num_heads",
        "no_scale": "the logits q k^T are not scaled: divide them by sqrt(c), c the channels per "
        "head, so that the softmax does not saturate",
        "heads_not_separated": "all heads are computed as one: split the projected (B, n, C/r) "
        "into (B, h, n, c) (unflatten the last axis into (h, c), then transpose) before q k^T, "
        "and merge the heads back to (B, n, C/r) before out_proj",
        "heads_reshaped": "the heads are split or merged with a plain reshape between "
        "(B, n, C/r) and (B, h, n, c), which mixes tokens and heads: split with "
        "x.unflatten(-1, (h, c)).transpose(1, 2) -> (B, h, n, c), merge with "
        "out.transpose(1, 2).flatten(2) -> (B, n, C/r)",
        "head_width_full": "the heads have C / num_heads channels, as if the projections kept the "
        "full width: after q_proj the width is C / downsample_rate (layer.internal_dim), so each "
        "of the num_heads heads has c = internal_dim / num_heads channels",
        "scale_by_c": "the logits are divided by c, the channels per head: the scale is "
        "1 / sqrt(c) -- q . k sums c products, so its spread grows like sqrt(c)",
        "no_out_proj": "the output projection is missing: the heads' merged output "
        "(B, n, C/r) goes through layer.out_proj back to the width C, which the residual and "
        "the next layer expect",
    },
)
def check_downsampled_attention(ctx: Context) -> int:
    cases = [("token->image as in tiny: C=64, 4 heads, downsample 2; 2 images, 7 tokens x 20 "
              "pixels", 64, 4, 2, 2, 7, 20),
             ("self-attention, no downsampling: C=12, 3 heads; 5 tokens", 12, 3, 1, 1, 5, 5),
             ("image->token: C=16, 2 heads, downsample 4; 12 pixels x 3 tokens", 16, 2, 4, 1, 12,
              3)]
    with torch.no_grad():
        for i, (case, C, h, r, B, n, m) in enumerate(cases):
            layer = _seeded(lambda C=C, h=h, r=r: Attention(C, h, downsample_rate=r), seed=i)
            q = seeded_randn(B, n, C, seed=10 * i)
            k, v = seeded_randn(B, m, C, seed=10 * i + 1), seeded_randn(B, m, C, seed=10 * i + 2)
            got = ctx.call(layer, q, k, v, case=case)
            c, width = layer.internal_dim // h, layer.internal_dim
            a = (layer, q, k, v)
            mistakes = {
                "softmax_axis": lambda a=a: _attend(*a, softmax_dim=-2),
                "scale_full_width": lambda a=a, got=got, C=C, width=width: nearest(got, *[
                    lambda: _attend(*a, scale=width**-0.5), lambda: _attend(*a, scale=C**-0.5)]),
                "no_scale": lambda a=a: _attend(*a, scale=1.0),
                "scale_by_c": lambda a=a, c=c: _attend(*a, scale=1 / c),
                "no_out_proj": lambda a=a: _attend(*a, project_out=False),
                "heads_not_separated": lambda a=a, got=got, c=c: nearest(got, *[
                    lambda: _attend(*a, heads=1), lambda: _attend(*a, heads=1, scale=c**-0.5)]),
                "heads_reshaped": lambda a=a, got=got: nearest(got, *[
                    lambda: _attend(*a, merge_by_reshape=True),
                    lambda: _attend(*a, split_by_reshape=True, merge_by_reshape=True),
                    lambda: _attend(*a, split_by_reshape=True)]),
            }
            if r > 1 and width % (C // h) == 0:  # heads of C/h channels: h/r of them
                mistakes["head_width_full"] = lambda a=a, heads=width // (C // h): _attend(
                    *a, heads=heads)
            ctx.expect(got, layer(q, k, v), case, mistakes=mistakes)
    return len(cases)


# ---------------------------------------------------------------------------- two-way block


def _block(block: TwoWayAttentionBlock, queries, keys, query_pe, key_pe, *,
           first_residual: bool = False, ignore_skip: bool = False, self_residual: bool = True,
           self_pe: bool = True, pe_values: tuple[str, ...] = (), step4: str = "fresh",
           step4_pe: tuple[str, ...] = ("q", "k"), step4_updates: str = "image",
           norm_late: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """The block's forward with one thing done wrong (the defaults do it right).

    ``norm_late``: the step ("t2i", "mlp" or "i2t") whose norm is applied to the update before
    the residual, x + norm(f(x)), instead of norm(x + f(x)).
    """

    def add_norm(x, update, norm, step):
        return x + norm(update) if norm_late == step else norm(x + update)

    if block.skip_first_layer_pe and not ignore_skip:
        attended = block.self_attn(queries, queries, queries)
        queries = queries + attended if first_residual else attended
    else:
        q = queries + query_pe if self_pe else queries
        attended = block.self_attn(q, q, q if "self" in pe_values else queries)
        queries = queries + attended if self_residual else attended
    queries = block.norm1(queries)
    q, k = queries + query_pe, keys + key_pe
    stale = q  # step 2's queries, before the token->image update and the MLP
    queries = add_norm(queries, block.cross_attn_token_to_image(
        q, k, k if "t2i" in pe_values else keys), block.norm2, "t2i")
    before_mlp = queries + query_pe
    queries = add_norm(queries, block.mlp(queries), block.norm3, "mlp")
    q = {"fresh": queries + query_pe, "stale": stale, "before_mlp": before_mlp}[step4]
    if "q" not in step4_pe:
        q = queries
    if "k" not in step4_pe:
        k = keys
    if step4_updates == "tokens":  # step 4 written as another token update: the image stays
        return block.norm4(queries + block.cross_attn_image_to_token(q, k, keys)), keys
    keys = add_norm(keys, block.cross_attn_image_to_token(
        k, q, q if "i2t" in pe_values else queries), block.norm4, "i2t")
    return queries, keys


def _block_mistakes(args: tuple, got: torch.Tensor, part: int) -> dict:
    """The block's mistakes as seen on output ``part`` (0 queries, 1 keys)."""

    def ways(*variants: dict) -> Callable[[], torch.Tensor]:
        return lambda: nearest(got, *[lambda v=v: _block(*args, **v)[part] for v in variants])

    if args[0].skip_first_layer_pe:  # layer 0
        layer_mistakes = {
            "first_layer_residual": ways({"first_residual": True}),
            "first_layer_pe": ways({"ignore_skip": True},
                                   {"ignore_skip": True, "self_residual": False}),
        }
    else:
        layer_mistakes = {"no_self_residual": ways({"self_residual": False},
                                                   {"self_residual": False, "self_pe": False})}
    return {
        **layer_mistakes,
        "pe_on_values": ways(*({"pe_values": p} for p in (
            ("t2i",), ("i2t",), ("self",), ("t2i", "i2t"), ("self", "t2i", "i2t")))),
        "stale_queries": ways({"step4": "stale"}, {"step4": "before_mlp"}),
        "image_step_no_pe": ways({"step4_pe": ("k",)}, {"step4_pe": ("q",)}, {"step4_pe": ()}),
        "image_step_updates_tokens": ways({"step4_updates": "tokens"}),
        "norm_before_residual": ways(*({"norm_late": step} for step in ("t2i", "mlp", "i2t"))),
    }


@exercise(
    "two_way_block", lab="03_two_way_attention", points=3,
    what="two_way_block(block, queries, keys, query_pe, key_pe)",
    reference=("samteach.modeling.transformer.TwoWayAttentionBlock.forward",
               "samteach.modeling.transformer.TwoWayAttentionBlock.token_self_attention"),
    mistakes={
        "first_layer_residual": "layer 0 (block.skip_first_layer_pe is True) adds a residual to "
        "its self-attention: there the tokens ARE their positional encodings, so SAM replaces "
        "them, queries = self_attn(queries, queries, queries), with no residual and no PE "
        "(App. A)",
        "first_layer_pe": "block.skip_first_layer_pe is ignored: when it is True (layer 0) the "
        "self-attention gets no PE and no residual, queries = self_attn(queries, queries, "
        "queries); only the other layers add query_pe and the residual",
        "no_self_residual": "a layer with skip_first_layer_pe False lost its self-attention "
        "residual: only layer 0 skips it; later layers do queries = queries + self_attn(q, q, "
        "queries) with q = queries + query_pe",
        "pe_on_values": "a positional encoding was added to the values: PE goes into the queries "
        "and keys of an attention (where to look), never into its values (what is read) -- pass "
        "the plain queries / keys as the third argument",
        "stale_queries": "the image->token attention (step 4) uses stale tokens: it must read the "
        "tokens as they are AFTER the MLP of step 3 -- recompute q = queries + query_pe right "
        "before it",
        "image_step_no_pe": "the image->token attention (step 4) lacks positional encodings: its "
        "queries are the image tokens with key_pe, its keys the prompt tokens with query_pe: "
        "cross_attn_image_to_token(keys + key_pe, queries + query_pe, queries)",
        "image_step_updates_tokens": "step 4 updated the tokens again instead of the image: in "
        "the image->token attention the IMAGE tokens are the queries and get the residual and "
        "norm4, keys = norm4(keys + cross_attn_image_to_token(keys + key_pe, queries + "
        "query_pe, queries)); the tokens were already updated in steps 2 and 3",
        "norm_before_residual": "a layer norm sits before the residual, x + norm(f(x)): SAM's "
        "two-way blocks are post-norm, x = norm(x + f(x)), in every step (norm1..norm4)",
    },
)
def check_two_way_block(ctx: Context) -> int:
    C = 16
    cases = [("layer 0 (skip_first_layer_pe=True): 2 prompts of 5 tokens, 4x6 grid", True, 2, 5,
              24),
             ("layer 0: 1 prompt of 4 tokens, 3x4 grid", True, 1, 4, 12),
             ("layer 1 (skip_first_layer_pe=False): 3 prompts of 4 tokens, 3x4 grid", False, 3,
              4, 12),
             ("layer 1: 2 prompts of 3 tokens, 3x5 grid", False, 2, 3, 15)]
    with torch.no_grad():
        for i, (case, skip, B, T, N) in enumerate(cases):
            block = _seeded(lambda skip=skip: TwoWayAttentionBlock(
                C, num_heads=2, mlp_dim=32, attention_downsample_rate=2,
                skip_first_layer_pe=skip), seed=i)
            queries = seeded_randn(B, T, C, seed=10 * i)
            # In layer 0 the tokens are their own PE (TwoWayTransformer passes them as both).
            query_pe = queries if skip else seeded_randn(B, T, C, seed=10 * i + 1)
            keys = seeded_randn(B, N, C, seed=10 * i + 2)
            key_pe = seeded_randn(1, N, C, seed=10 * i + 3)
            got = ctx.call(block, queries, keys, query_pe, key_pe, case=case)
            if not (isinstance(got, tuple) and len(got) == 2):
                ctx.fail("return two things: the updated queries (B, T, C) and keys (B, N, C)",
                         case)
            args = (block, queries, keys, query_pe, key_pe)
            expected = block(*args[1:])
            for part, name in enumerate(("queries", "keys")):
                ctx.expect(got[part], expected[part], case, name=f"the returned {name}",
                           mistakes=_block_mistakes(args, got[part], part))
    return len(cases)


# ------------------------------------------------------------------------------ hypernetworks


@exercise(
    "hypernetwork_masks", lab="03_two_way_attention", points=2,
    what="hypernetwork_masks(hs, upscaled, hypernetworks)",
    reference=("samteach.modeling.mask_decoder.hypernetwork_masks",
               "samteach.modeling.mask_decoder.hypernetwork_weights"),
    mistakes={
        "off_by_one": "the IoU token was taken as a mask token: token 0 of hs is the IoU token, "
        "the M mask tokens are hs[:, 1 : 1 + M]",
        "shared_mlp": "one MLP serves every mask token: mask token i has its own hypernetwork, "
        "hypernetworks[i]; zip the tokens with the MLPs",
        "hw_transposed": "the mask comes out with height and width swapped: the logits of pixel "
        "(y, x) must sit at [b, i, y, x]; flatten upscaled's (4H, 4W) in that order and unflatten "
        "back to (4H, 4W)",
        "reshape_not_permute": "upscaled (B, C', 4H, 4W) was reshaped straight to "
        "(B, 4H*4W, C'), which mixes channels and pixels: use upscaled.flatten(2), (B, C', 4H*4W), "
        "and multiply (B, M, C') @ (B, C', 4H*4W) -- or permute the channels last first",
        "last_tokens": "the last M tokens were taken as the mask tokens: those are the prompt "
        "tokens; the decoder puts the IoU token first and the M mask tokens right after it, "
        "hs[:, 1 : 1 + M]",
        "sigmoid": "a sigmoid was applied: the decoder returns mask LOGITS (the predictor "
        "thresholds them at 0, the loss takes logits); return the dot products as they are",
    },
)
def check_hypernetwork_masks(ctx: Context) -> int:
    C = 32
    cases = [("2 prompts, 1 IoU + 4 mask + 3 prompt tokens, 4x6 grid -> 16x24 pixels", 2, 4, 3,
              16, 24),
             ("1 prompt, 2 prompt tokens, a square 32x32 map", 1, 4, 2, 32, 32),
             ("3 prompts and only 3 mask tokens (2 multimask outputs), 12x8 pixels", 3, 3, 2, 12,
              8)]
    with torch.no_grad():
        for i, (case, B, M, P, h, w) in enumerate(cases):
            mlps = _seeded(lambda M=M: nn.ModuleList(MLP(C, C, C // 8, 3) for _ in range(M)), i)
            hs = seeded_randn(B, 1 + M + P, C, seed=10 * i)
            upscaled = seeded_randn(B, C // 8, h, w, seed=10 * i + 1)
            got = ctx.call(hs, upscaled, mlps, case=case)
            tokens = hs[:, 1 : 1 + M]  # (B, M, C): the mask tokens
            expected = hypernetwork_masks(tokens, upscaled, mlps)
            mistakes = {
                "off_by_one": lambda hs=hs, u=upscaled, mlps=mlps, M=M: hypernetwork_masks(
                    hs[:, :M], u, mlps),
                "shared_mlp": lambda got=got, t=tokens, u=upscaled, mlps=mlps, M=M: nearest(got, *[
                    lambda: hypernetwork_masks(t, u, [mlps[0]] * M),
                    lambda: hypernetwork_masks(t, u, [mlps[-1]] * M)]),
                "hw_transposed": lambda got=got, e=expected, h=h, w=w: nearest(got, *[
                    lambda: e.flatten(2).unflatten(2, (w, h)), lambda: e.transpose(-2, -1)]),
                "reshape_not_permute": lambda t=tokens, u=upscaled, mlps=mlps, B=B, h=h, w=w:
                    hypernetwork_masks(t, u.reshape(B, h, w, -1).permute(0, 3, 1, 2), mlps),
                "last_tokens": lambda hs=hs, u=upscaled, mlps=mlps, M=M: hypernetwork_masks(
                    hs[:, -M:], u, mlps),
                "sigmoid": lambda e=expected: e.sigmoid(),
            }
            ctx.expect(got, expected, case, mistakes=mistakes, name="the mask logits")
    return len(cases)
