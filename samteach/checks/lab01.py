"""Checks of lab 01 (patch embedding): patchify, window_partition, attention with rel-pos bias."""

import torch
import torch.nn.functional as F

from ..modeling.image_encoder import attention_logits, patchify, window_partition
from ._core import Context, exercise, seeded_randn

__all__ = ["check_attention", "check_patchify", "check_window_partition"]


@exercise(
    "patchify", lab="01_patch_embedding", points=2, what="patchify(images, patch_size)",
    reference=("samteach.modeling.image_encoder.patchify",),
    mistakes={
        "channels_last_order": "each patch is flattened in the order (i, j, c); flatten it "
        "channel-major (c, i, j), the order of the Conv2d weight (C_out, 3, p, p) you will "
        "multiply it with -- permute to (B, H, W, c, i, j) before flattening",
        "grid_transposed": "the patch grid comes out transposed: out[b, y, x] must be the patch "
        "in patch-row y and patch-column x (rows first, as the image tensor stores them)",
        "pixels_transposed": "inside each patch the pixels are in (c, j, i) order: keep rows "
        "before columns, (c, i, j)",
        "reshape_without_permute": "the patches were cut by a reshape alone: reshaping "
        "(B, c, H, i, W, j) straight to (B, H, W, c*p*p) reads memory in the wrong order and "
        "mixes pixels of different patches; permute to (B, H, W, c, i, j) before the last "
        "reshape",
        "unfold_not_transposed": "F.unfold gives (B, c*p*p, H*W), one COLUMN per patch: "
        "transpose it to (B, H*W, c*p*p) before reshaping to (B, H, W, c*p*p)",
    },
)
def check_patchify(ctx: Context) -> int:
    cases = [("2 RGB images 16x16, patch 4", (2, 3, 16, 16), 4),
             ("one 12x20 image, patch 4 (not square)", (1, 3, 12, 20), 4),
             ("patch 1: every pixel its own patch", (1, 3, 3, 5), 1)]
    for case, shape, p in cases:
        x = seeded_randn(*shape, seed=len(case))
        B, C, h, w = shape
        six = x.reshape(B, C, h // p, p, w // p, p)  # (B, c, H, i, W, j)
        ctx.expect(ctx.call(x, p, case=case), patchify(x, p), case, mistakes={
            "channels_last_order": lambda six=six: six.permute(0, 2, 4, 3, 5, 1).flatten(3),
            "grid_transposed": lambda six=six: six.permute(0, 4, 2, 1, 3, 5).flatten(3),
            "pixels_transposed": lambda six=six: six.permute(0, 2, 4, 1, 5, 3).flatten(3),
            "reshape_without_permute": lambda x=x, grid=(B, h // p, w // p): x.reshape(
                *grid, -1),
            "unfold_not_transposed": lambda x=x, p=p, grid=(B, h // p, w // p): F.unfold(
                x, p, stride=p).reshape(*grid, -1),
        })
    return len(cases)


@exercise(
    "window_partition", lab="01_patch_embedding", points=2,
    what="window_partition(x, window_size)",
    reference=("samteach.modeling.image_encoder.window_partition",),
    mistakes={
        "no_permute": "the windows are strips, not squares: reshaping (B, Hp, Wp, C) straight to "
        "(-1, S, S, C) cuts along rows; view it as (B, Hp/S, S, Wp/S, S, C) and permute to "
        "(B, Hp/S, Wp/S, S, S, C) first",
        "pad_front": "the padding is at the top/left; SAM pads at the bottom and right, "
        "F.pad(x, (0, 0, 0, pad_w, 0, pad_h)), so token (0, 0) stays the image's corner",
        "pad_full_window": "a grid that is already a multiple of S got a whole extra window of "
        "padding: use pad = (S - H % S) % S, which is 0 then",
        "windows_column_major": "the windows come out column by column: order them row-major, "
        "window (row, column) of the grid at index row * (Wp / S) + column -- permute to "
        "(B, Hp/S, Wp/S, S, S, C), rows of windows first",
        "returns_unpadded_size": "the second thing returned must be the PADDED size (Hp, Wp): "
        "window_unpartition needs it to undo the padding; (H, W) is what it crops back to",
    },
)
def check_window_partition(ctx: Context) -> int:
    cases = [("8x8 grid, S=4 (no padding needed)", (2, 8, 8, 3), 4),
             ("7x10 grid, S=4 (pad to 8x12)", (1, 7, 10, 2), 4),
             ("5x5 grid, S=5 (one window)", (1, 5, 5, 2), 5)]
    for case, shape, S in cases:
        x = seeded_randn(*shape, seed=len(case))
        got = ctx.call(x, S, case=case)
        if not (isinstance(got, tuple) and len(got) == 2):
            ctx.fail("return two things: the windows (B*nW, S, S, C) and the padded (Hp, Wp)",
                     case)
        windows, padded = got
        expected, expected_hw = window_partition(x, S)
        ctx.expect(windows, expected, case, mistakes=_partition_mistakes(x, S), name="windows")
        if tuple(int(v) for v in padded) != expected_hw:
            if tuple(int(v) for v in padded) == shape[1:3]:
                ctx.fail("returns_unpadded_size", case)
            ctx.fail(f"the padded size should be {expected_hw}, got {tuple(padded)}", case)
    return len(cases)


def _partition_mistakes(x: torch.Tensor, S: int) -> dict:
    B, H, W, C = x.shape

    def padded(top_left: bool = False, always: bool = False) -> torch.Tensor:
        ph = S - H % S if always else (S - H % S) % S
        pw = S - W % S if always else (S - W % S) % S
        pad = (0, 0, pw, 0, ph, 0) if top_left else (0, 0, 0, pw, 0, ph)
        return F.pad(x, pad)

    def cut(xp: torch.Tensor, order: tuple[int, ...] = (0, 1, 3, 2, 4, 5)) -> torch.Tensor:
        Hp, Wp = xp.shape[1:3]
        xp = xp.reshape(B, Hp // S, S, Wp // S, S, C)
        return xp.permute(*order).reshape(-1, S, S, C)

    return {
        "no_permute": lambda: padded().reshape(-1, S, S, C),
        "pad_front": lambda: cut(padded(top_left=True)),
        "pad_full_window": lambda: cut(padded(always=True)),
        "windows_column_major": lambda: cut(padded(), order=(0, 3, 1, 2, 4, 5)),
    }


@exercise(
    "attention", lab="01_patch_embedding", points=3,
    what="attention(q, k, v, rel_pos_h, rel_pos_w, hw)",
    reference=("samteach.modeling.image_encoder.attention_logits",
               "samteach.modeling.image_encoder.Attention.forward",
               "samteach.fast.encoder.FastAttention.forward"),
    mistakes={
        "softmax_axis": "the softmax runs over the queries (dim=-2); each query's weights over "
        "the keys must sum to 1: softmax over the last axis (dim=-1)",
        "no_scale": "the logits q k^T are not scaled: divide by sqrt(c), the channels per head, "
        "so the softmax does not saturate as c grows",
        "offset_sign": "the relative offsets have the wrong sign: entry [i, j] of the table "
        "must be rel_pos[i - j + (size - 1)] (query minus key), not j - i",
        "axes_swapped": "the vertical and horizontal tables are swapped: rel_pos_h gives the bias "
        "between query *rows* y and key rows y', rel_pos_w between columns x and x'",
        "no_rel_pos": "the relative position bias is missing: add q . R_h[y - y'] + "
        "q . R_w[x - x'] to the logits before the softmax",
        "scale_by_c": "the logits are divided by c, the channels per head: the scale is "
        "1 / sqrt(c) (dot products of c unit-variance terms have variance c, so their std is "
        "sqrt(c)), c**-0.5",
        "no_offset": "the table indices lack the offset: rel_pos has 2*size - 1 rows with offset "
        "0 in the MIDDLE, so entry [i, j] is rel_pos[i - j + (size - 1)]; without the "
        "+ (size - 1), negative offsets wrap around to the end of the table",
        "bias_from_scaled_query": "the relative-position bias was built from the SCALED "
        "queries: ViTDet (and SAM) scale only q k^T by 1 / sqrt(c) and compute q . R with the "
        "unscaled q",
    },
)
def check_attention(ctx: Context) -> int:
    cases = [("one 4x4 window, 2 heads", 2, 4, 4), ("a 3x5 grid, 1 head", 1, 3, 5),
             ("2 windows of 2x2, 3 heads", 3, 2, 2)]
    for i, (case, nh, H, W) in enumerate(cases):
        c, N = 8, H * W
        B = 2 if "2 windows" in case else 1
        q, k, v = (seeded_randn(B, nh, N, c, seed=10 * i + j) for j in range(3))
        rh = seeded_randn(2 * H - 1, c, seed=10 * i + 3)
        rw = seeded_randn(2 * W - 1, c, seed=10 * i + 4)
        logits = attention_logits(q, k, rh, rw, (H, W))
        qk = q @ k.transpose(-2, -1)
        mistakes = {
            "softmax_axis": lambda logits=logits, v=v: logits.softmax(-2) @ v,
            "no_scale": lambda logits=logits, qk=qk, v=v, c=c: (
                logits + qk * (1 - c**-0.5)).softmax(-1) @ v,
            "offset_sign": lambda q=q, k=k, v=v, rh=rh, rw=rw, hw=(H, W): attention_logits(
                q, k, rh.flip(0), rw.flip(0), hw).softmax(-1) @ v,
            "no_rel_pos": lambda qk=qk, v=v, c=c: (qk * c**-0.5).softmax(-1) @ v,
            "scale_by_c": lambda logits=logits, qk=qk, v=v, c=c: (
                logits - qk * c**-0.5 + qk / c).softmax(-1) @ v,
            # i - j without the offset: negative indices count from the end, i.e. the table
            # rolled by size - 1
            "no_offset": lambda q=q, k=k, v=v, rh=rh, rw=rw, hw=(H, W): attention_logits(
                q, k, rh.roll(hw[0] - 1, 0), rw.roll(hw[1] - 1, 0), hw).softmax(-1) @ v,
            "bias_from_scaled_query": lambda logits=logits, qk=qk, v=v, c=c: (
                qk * c**-0.5 + (logits - qk * c**-0.5) * c**-0.5).softmax(-1) @ v,
        }
        if H == W:  # swapping the tables only runs when they have the same length
            mistakes["axes_swapped"] = lambda q=q, k=k, v=v, rh=rh, rw=rw, hw=(H, W): (
                attention_logits(q, k, rw, rh, hw).softmax(-1) @ v)
        got = ctx.call(q, k, v, rh, rw, (H, W), case=case)
        ctx.expect(got, logits.softmax(-1) @ v, case, mistakes=mistakes)
    return len(cases)
