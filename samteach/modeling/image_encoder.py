"""SAM's image encoder: an MAE-pretrained plain ViT adapted to 1024 px (SAM App. A, ViTDet).

The image becomes a grid of patch tokens; most blocks attend inside local windows, a few
attend globally; every attention adds a *decomposed relative position bias*; a small conv
"neck" maps the result to the decoder's width. It runs once per image, and its output (the
image embedding) then serves any number of prompts.

Shapes: B images, H/W grid height/width in patches, N = H*W tokens, C channels,
nh heads, c = C / nh channels per head, S window side, nW windows per image.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock


class ImageEncoderViT(nn.Module):
    """ViT-B/L/H image encoder (Fig. 4, left): (B, 3, img, img) -> (B, out_chans, H, W)."""

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        rel_pos_zero_init: bool = True,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
        high_res_stem: bool = False,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed: nn.Parameter | None = None
        if use_abs_pos:
            # Channels-last (1, H, W, C), like the tokens it is added to.
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                use_rel_pos=use_rel_pos,
                rel_pos_zero_init=rel_pos_zero_init,
                window_size=0 if i in global_attn_indexes else window_size,
                input_size=(grid, grid),
            )
            for i in range(depth)
        )
        # The neck: 1x1 conv to the decoder width, then a 3x3 conv, each followed by LayerNorm.
        # Sequential positions 0..3 are part of the checkpoint keys (neck.0.weight, ...).
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        # Optional (off in Meta's models): fine conv features for the mask decoder's upscaling,
        # SAM 2's high-resolution path. Call it on the same input: high_res_stem(x).
        self.high_res_stem = None
        if high_res_stem:
            with torch.random.fork_rng(devices=[]):  # drawn aside: no other initial weight
                self.high_res_stem = HighResStem(patch_size, in_chans, out_chans)  # changes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, img, img) normalised, padded image -> (B, out_chans, H, W) embedding."""
        x = self.patch_embed(x)  # (B, H, W, C)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)  # (B, H, W, C)
        return self.neck(x.permute(0, 3, 1, 2))  # (B, out_chans, H, W)


class HighResStem(nn.Module):
    """Image features finer than a patch, for the mask decoder's upscaling (SAM 2's high-res path).

    SAM's decoder upscales the patch-stride embedding 4x with transposed convs alone, so a
    boundary inside a patch is guessed from the patch's token. SAM 2 adds the image encoder's
    stride-4 and stride-8 maps into that upscaling (16-px patches). A plain ViT has no such
    maps, so this stem computes them from the pixels with two small convs: at the strides of
    the two upscaling steps, patch/4 and patch/2 (2 and 4 for the tiny model's 8-px patches).
    The decoder projects and adds them (``MaskDecoder.conv_s0``, ``conv_s1``).
    """

    def __init__(self, patch_size: int, in_chans: int, out_chans: int) -> None:
        super().__init__()
        if patch_size % 4:
            raise ValueError(f"the high-res stem needs a patch_size divisible by 4; got "
                             f"{patch_size}")
        stride = patch_size // 4
        # Kernel 2s-1 with padding s-1: each output pixel sees its s x s cell and a border.
        self.s0 = nn.Sequential(
            nn.Conv2d(in_chans, out_chans // 4, 2 * stride - 1, stride, padding=stride - 1),
            LayerNorm2d(out_chans // 4),
            nn.GELU(),
        )
        self.s1 = nn.Sequential(
            nn.Conv2d(out_chans // 4, out_chans // 2, kernel_size=3, stride=2, padding=1),
            LayerNorm2d(out_chans // 2),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, img, img) -> [(B, C/4, 4H, 4W), (B, C/2, 2H, 2W)], H/W the patch grid."""
        s0 = self.s0(x)
        return [s0, self.s1(s0)]


class PatchEmbed(nn.Module):
    """Cut the image into non-overlapping patches and project each to C channels.

    A conv with kernel = stride = patch size *is* "flatten every patch, then one shared
    Linear layer" (lab 01 proves it); the conv form is just faster.
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, img, img) -> (B, H, W, C): channels-last, ready for LayerNorm and Linear."""
        return self.proj(x).permute(0, 2, 3, 1)


class Block(nn.Module):
    """A pre-norm transformer block whose attention is windowed (window_size > 0) or global."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        use_rel_pos: bool = False,
        rel_pos_zero_init: bool = True,
        window_size: int = 0,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # SAM's build uses eps=1e-6 throughout
        attn_size = (window_size, window_size) if window_size > 0 else input_size
        self.attn = Attention(dim, num_heads, qkv_bias, use_rel_pos, rel_pos_zero_init,
                              input_size=attn_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            H, W = x.shape[1], x.shape[2]
            x, padded_hw = window_partition(x, self.window_size)  # (B*nW, S, S, C)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded_hw, (H, W))  # (B, H, W, C)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Attention(nn.Module):
    """Multi-head self-attention over a grid of tokens, with decomposed relative position bias.

    softmax(q k^T / sqrt(c) + bias) v, one (N, N) matrix per head, written out. (``samteach.fast``
    computes the same with a fused kernel that never stores the matrix.)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        use_rel_pos: bool = False,
        rel_pos_zero_init: bool = True,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if input_size is None:
                raise ValueError("input_size (H, W) is required when use_rel_pos=True")
            # One learned c-vector per relative offset -(H-1)..(H-1) along y, and along x.
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))
            if not rel_pos_zero_init:
                nn.init.trunc_normal_(self.rel_pos_h, std=0.02)
                nn.init.trunc_normal_(self.rel_pos_w, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        B, H, W, C = x.shape
        q, k, v = self.project(x)  # each (B, nh, N, c)
        if self.use_rel_pos:
            attn = attention_logits(q, k, self.rel_pos_h, self.rel_pos_w, (H, W))
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, nh, N, N)
        attn = attn.softmax(dim=-1)  # each query's weights over all keys sum to 1
        x = attn @ v  # (B, nh, N, c)
        x = x.transpose(1, 2).reshape(B, H, W, C)  # heads side by side again
        return self.proj(x)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, H, W, C) -> queries, keys, values, each (B, nh, N, c)."""
        B, H, W, _ = x.shape
        qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1)  # (B, N, 3, nh, c)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, N, c)
        return q, k, v


def attention_logits(
    q: torch.Tensor, k: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
    hw: tuple[int, int],
) -> torch.Tensor:
    """The attention logits: q k^T / sqrt(c) + relative position bias.

    Args:
        q, k: (B, nh, N, c) queries and keys of an (H, W) grid, N = H * W, row-major.
        rel_pos_h, rel_pos_w: (2H-1, c) and (2W-1, c) learned vectors, one per offset.
        hw: the grid (H, W).

    Returns:
        (B, nh, N, N): row = query, column = key; softmax over the last axis gives the weights.
    """
    H, W = hw
    logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, nh, N, N)
    q_grid = q.unflatten(2, (H, W))  # (B, nh, H, W, c), unscaled, as in ViTDet
    bias = rel_pos_terms(q_grid, relative_table(rel_pos_h, H), relative_table(rel_pos_w, W))
    return logits + combine_rel_pos(*bias)


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, 3, img_h, img_w) -> (B, H, W, 3*p*p): every patch flattened channel-major (c, i, j).

    That is the order of a ``Conv2d`` weight (C, 3, p, p) flattened, so
    ``patchify(x, p) @ proj.weight.flatten(1).T + proj.bias`` equals ``PatchEmbed(x)``.
    """
    B, C, h, w = x.shape
    p = patch_size
    x = x.reshape(B, C, h // p, p, w // p, p)  # (B, c, H, i, W, j)
    return x.permute(0, 2, 4, 1, 3, 5).flatten(3)  # (B, H, W, c*i*j)


def relative_table(rel_pos: torch.Tensor, size: int) -> torch.Tensor:
    """(2*size-1, c) vectors, one per offset -> (size, size, c), where [i, j] is offset i - j."""
    offsets = torch.arange(size, device=rel_pos.device)
    index = offsets[:, None] - offsets[None, :] + (size - 1)  # (size, size) in 0..2*size-2
    return rel_pos[index]


def rel_pos_terms(q: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor):
    """The two halves of ViTDet's decomposed relative position bias.

    bias[(y, x), (y', x')] = q_(y,x) . R_h[y - y'] + q_(y,x) . R_w[x - x']. A full 2-D table
    would need one vector per (dy, dx); splitting it into a vertical and a horizontal part
    needs only (2H-1) + (2W-1) vectors, and each part is a small matmul.

    Args:
        q: (B, nh, H, W, c) queries on their grid.
        rel_h: (H, H, c) vertical table, [y, y'] = R_h[y - y'].
        rel_w: (W, W, c) horizontal table.

    Returns:
        bias_h (B, nh, H, W, H): one value per query and key *row*;
        bias_w (B, nh, H, W, W): one value per query and key *column*.
    """
    bias_h = torch.einsum("bnywc,ykc->bnywk", q, rel_h)
    bias_w = torch.einsum("bnywc,wkc->bnywk", q, rel_w)
    return bias_h, bias_w


def combine_rel_pos(bias_h: torch.Tensor, bias_w: torch.Tensor) -> torch.Tensor:
    """(B, nh, h, W, H) + (B, nh, h, W, W) -> (B, nh, h*W, H*W): row = query, column = key."""
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # (B, nh, h, W, H, W)
    return bias.flatten(-2).flatten(2, 3)


def window_partition(x: torch.Tensor, window_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad (B, H, W, C) to multiples of S and cut it into (B*nW, S, S, C) windows.

    The padding tokens are zeros that every window's attention sees as keys, as in SAM.
    Returns the windows and the padded (Hp, Wp).
    """
    B, H, W, C = x.shape
    S = window_size
    pad_h, pad_w = (S - H % S) % S, (S - W % S) % S
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # pads the last three dims from the end
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // S, S, Wp // S, S, C)  # (B, Hp/S, S, Wp/S, S, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, S, S, C)  # (B*nW, S, S, C)
    return windows, (Hp, Wp)


def window_unpartition(
    windows: torch.Tensor, window_size: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B*nW, S, S, C) -> (B, H, W, C), padding removed."""
    S = window_size
    (Hp, Wp), (H, W) = padded_hw, hw
    B = windows.shape[0] // ((Hp // S) * (Wp // S))
    x = windows.view(B, Hp // S, Wp // S, S, S, -1)  # (B, Hp/S, Wp/S, S, S, C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)  # (B, Hp, Wp, C)
    return x[:, :H, :W] if (Hp, Wp) != (H, W) else x
