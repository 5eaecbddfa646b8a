"""Checks of lab 02 (positional encoding): Fourier features, point/box tokens, the mask encoder."""

import copy
import itertools
import math

import torch
from torch import nn

from ..modeling.prompt_encoder import PromptEncoder, fourier_features
from ..utils.transforms import ResizeLongestSide
from ._core import Context, exercise, nearest, seeded_generator

__all__ = ["check_build_mask_downscaling", "check_embed_points", "check_fourier_features"]

LAB = "02_positional_encoding"




# --------------------------------------------------------------------- 1. Fourier features


@exercise(
    "fourier_features", lab=LAB, points=2, what="fourier_features(coords, gaussian_matrix)",
    reference=("samteach.modeling.prompt_encoder.fourier_features",),
    mistakes={
        # pi (2p - 1) = 2 pi (p - 0.5): these two mistakes give the same numbers; say both
        "pi_or_half_centring": "one of two mistakes that give the same numbers: the factor is "
        "pi instead of 2*pi, OR the positions were centred as p - 0.5 instead of 2p - 1 "
        "(pi (2p - 1) = 2 pi (p - 0.5)). The angles are 2*pi * (2p - 1) @ G",
        "no_centring": "the positions are not centred: map p in [0, 1] to 2p - 1 in [-1, 1] "
        "before multiplying by G, so the middle of the image is the origin (SAM's pe_layer "
        "does this, and its trained weights expect it)",
        "xy_swapped": "x and y are swapped: coords[..., 0] is x and multiplies the first row of "
        "G, coords[..., 1] is y and the second row; (2 * coords - 1) @ G as it comes, no flip",
        "no_two_pi": "the factor 2*pi is missing: the angles are 2*pi * (2p - 1) @ G, so an "
        "entry g of G means g whole periods per unit of distance (Tancik et al.'s "
        "[sin(2 pi B v), cos(2 pi B v)])",
        "cos_first": "the two halves are in the wrong order: SAM puts the F sines first, then "
        "the F cosines -- torch.cat([sin, cos], dim=-1); the decoder's weights were trained "
        "on that channel order",
        "interleaved": "sines and cosines are interleaved (sin_1, cos_1, sin_2, ...): "
        "concatenate the two blocks instead, all F sines then all F cosines, "
        "torch.cat([sin, cos], dim=-1)",
    },
)
def check_fourier_features(ctx: Context) -> int:
    corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    few = torch.rand(5, 2, generator=seeded_generator(1))
    batch = torch.rand(2, 3, 4, 2, generator=seeded_generator(2))
    cases = [("5 random positions, F=4", few, 4, 1.0),
             ("a (2, 3, 4) batch of positions, F=6", batch, 6, 1.0),
             ("the 4 corners and the centre, F=3, G scaled by 10", corners, 3, 10.0)]
    for case, coords, F, scale in cases:
        G = scale * torch.randn(2, F, generator=seeded_generator(F))
        expected = fourier_features(coords, G)
        sin, cos = expected[..., :F], expected[..., F:]
        got = ctx.call(coords.clone(), G.clone(), case=case)
        ctx.expect(got, expected, case, mistakes={
            "pi_or_half_centring": lambda c=coords, G=G: fourier_features((c + 0.5) / 2, G),
            "no_centring": lambda c=coords, G=G: fourier_features((c + 1) / 2, G),
            "xy_swapped": lambda c=coords, G=G: fourier_features(c.flip(-1), G),
            "no_two_pi": lambda c=coords, G=G: fourier_features(c, G / (2 * math.pi)),
            "cos_first": lambda s=sin, c=cos: torch.cat([c, s], dim=-1),
            "interleaved": lambda s=sin, c=cos: torch.stack([s, c], dim=-1).flatten(-2),
        }, name="the feature tensor")
    return len(cases)


# ---------------------------------------------------------------- 2. point and box tokens


def _encoder(seed: int, text_dim: int = 0) -> PromptEncoder:
    """A small prompt encoder for a 128x128 input (with text prompts of width ``text_dim``, if
    any: lab 07), every weight drawn from a seeded generator."""
    encoder = PromptEncoder(embed_dim=16, image_embedding_size=(8, 8),
                            input_image_size=(128, 128), mask_in_chans=4, text_dim=text_dim)
    g = seeded_generator(seed)
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(encoder.buffers()):
            p.copy_(torch.randn(p.shape, generator=g))
    return encoder.eval()


def _tokens(encoder: PromptEncoder, coords, labels, boxes, size, resize: bool = True):
    """samteach's tokens for prompts in the original image (resize=False: already resized)."""
    transform = ResizeLongestSide(max(encoder.input_image_size))
    if resize:
        coords = None if coords is None else transform.apply_coords_torch(coords, size)
        boxes = None if boxes is None else transform.apply_boxes_torch(boxes, size)
    points = None if coords is None else (coords, labels)
    with torch.no_grad():
        return encoder(points, boxes, None)[0]


def _point_mistakes(encoder: PromptEncoder, coords, labels, boxes, size, got) -> dict:
    """Key -> what that mistake returns, built from samteach's encoder on altered inputs."""
    S_h, S_w = encoder.input_image_size
    transform = ResizeLongestSide(max(S_h, S_w))
    h, w = transform.get_preprocess_shape(*size, max(S_h, S_w))
    resized = None if coords is None else transform.apply_coords_torch(coords, size)
    rboxes = None if boxes is None else transform.apply_boxes_torch(boxes, size)
    B = len(coords if coords is not None else boxes)
    table = encoder._label_embeddings().detach()  # (5, C): row label + 1
    # The label of every token, in order: points (+ the pad), then the two box corners.
    kinds = []
    if coords is not None:
        kinds.append(labels.long())
        if boxes is None:
            kinds.append(torch.full((B, 1), -1))
    if boxes is not None:
        kinds.append(torch.tensor([[2, 3]]).expand(B, 2))
    kinds = torch.cat(kinds, dim=1)  # (B, T)
    reference = _tokens(encoder, coords, labels, boxes, size)

    def shifted(fn):  # the encoder fed positions moved by fn(xy in the resized frame)
        c = None if resized is None else fn(resized)
        b = None if rboxes is None else fn(rboxes.reshape(B, 2, 2)).reshape(B, 4)
        return _tokens(encoder, c, labels, b, size, resize=False)

    def wrong_frame(frame_w: float, frame_h: float, points, boxes_) -> torch.Tensor:
        # (p + 0.5) / (frame_w, frame_h) lands where the padded frame has p' + 0.5.
        scale = torch.tensor([S_w / frame_w, S_h / frame_h])
        c = None if points is None else (points + 0.5) * scale - 0.5
        b = None if boxes_ is None else ((boxes_.reshape(B, 2, 2) + 0.5) * scale - 0.5)
        return _tokens(encoder, c, labels, None if b is None else b.reshape(B, 4), size,
                       resize=False)

    def pad_keeps_position(pad_at: float) -> torch.Tensor:
        xy = []
        if resized is not None:
            xy.append(resized + 0.5)
            if boxes is None:
                xy.append(torch.full((B, 1, 2), pad_at))  # the pad point, at 0 or 0 + 0.5
        if rboxes is not None:
            xy.append(rboxes.reshape(B, 2, 2) + 0.5)
        with torch.no_grad():
            pe = encoder.pe_layer.forward_with_coords(torch.cat(xy, dim=1), (S_h, S_w))
        return reference + pe * (kinds == -1).unsqueeze(-1)

    def relabel(new_kinds: torch.Tensor) -> torch.Tensor:
        return reference - table[kinds + 1] + table[new_kinds + 1]

    def corner_labels() -> torch.Tensor:
        variants = []
        for corners in ([3, 2], [1, 2], [1, 1], [0, 1]):  # swapped, off by one, "clicks"
            new = kinds.clone()
            new[:, -2:] = torch.tensor(corners)
            variants.append(relabel(new))
        return nearest(got, *variants)

    def pad_rule() -> torch.Tensor:
        pad = table[0].expand(B, 1, -1)  # a pad token: no position, the "not a point" vector
        n = 0 if coords is None else coords.shape[1]
        if boxes is None:  # no pad where SAM adds one
            return reference[:, :-1]
        return nearest(got, torch.cat([reference[:, :n], pad, reference[:, n:]], dim=1),
                        torch.cat([reference, pad], dim=1))

    def pad_label_zero() -> torch.Tensor:
        if coords is None or boxes is not None:  # no pad token to get wrong
            return reference
        n = coords.shape[1]
        new = kinds.clone()
        new[:, n] = 0
        with torch.no_grad():  # the pad point (0, 0) at its pixel centre, as a real click
            pe = encoder.pe_layer.forward_with_coords(torch.full((B, 1, 2), 0.5), (S_h, S_w))
        wrong = relabel(new).clone()
        wrong[:, n] += pe[:, 0]
        return wrong

    def flip(xy: torch.Tensor) -> torch.Tensor:
        return xy.flip(-1)

    return {
        "xy_swapped": lambda: shifted(flip),
        "no_pixel_centre": lambda: shifted(lambda xy: xy - 0.5),
        "not_padded_frame": lambda: nearest(
            got, wrong_frame(w, h, resized, rboxes),
            wrong_frame(size[1], size[0], coords, boxes)),

        "pad_keeps_position": lambda: nearest(got, pad_keeps_position(0.0),
                                               pad_keeps_position(0.5)),
        "label_offset": lambda: relabel(kinds - 1),
        "box_corner_labels": corner_labels,
        "boxes_not_resized": lambda: _tokens(encoder, resized, labels, boxes, size,
                                             resize=False),
        "no_resize": lambda: _tokens(encoder, coords, labels, boxes, size, resize=False),
        "pad_label_zero": pad_label_zero,
        "pad_rule": pad_rule,
    }


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clone()


@exercise(
    "embed_points", lab=LAB, points=3,
    what="embed_points(prompt_encoder, coords, labels, boxes, original_size)",
    reference=("samteach.modeling.prompt_encoder.PromptEncoder.forward",
               "samteach.modeling.prompt_encoder.PromptEncoder._embed_points",
               "samteach.modeling.prompt_encoder.PromptEncoder._embed_boxes"),
    mistakes={
        "xy_swapped": "x and y are swapped: a point is (x, y) = (column, row), and the Fourier "
        "features take it in that order; divide x by the padded width and y by the padded "
        "height, and never flip the last axis",
        "no_pixel_centre": "the +0.5 pixel-centre shift is missing: pixel (x, y) covers "
        "[x, x+1) x [y, y+1), so encode its centre (x + 0.5, y + 0.5) -- the point the dense "
        "PE of its cell is computed at -- after resizing, before normalising",
        "not_padded_frame": "the coordinates are normalised by the image's own size (its resized "
        "h x w, or the original H x W): divide by the PADDED input size, "
        "prompt_encoder.input_image_size (e.g. 1024 x 1024), the frame of get_dense_pe(), or "
        "the point and the pixel under it get different encodings",
        "no_resize": "the points were not resized: coordinates come in the original image's "
        "pixels; scale them into the model's frame first with "
        "ResizeLongestSide(S).apply_coords_torch(coords, original_size) (and apply_boxes_torch "
        "for boxes), S = the padded input side",
        "pad_keeps_position": "a 'not a point' token (label -1, including the pad token) still "
        "carries a positional encoding: zero the encoding where label == -1 so the token is the "
        "learned not_a_point_embed alone",
        "label_offset": "the label embeddings are off by one: label -1 must pick "
        "not_a_point_embed and label k >= 0 point_embeddings[k]; in one (5, C) table "
        "[not_a_point, point_0, ..., point_3] the row is label + 1",
        "box_corner_labels": "the box corners have the wrong label embeddings: the top-left "
        "corner (x0, y0) is a token labelled 2 (point_embeddings[2]) and the bottom-right "
        "corner (x1, y1) a token labelled 3 (point_embeddings[3])",
        "pad_rule": "the pad token follows SAM's rule: append exactly one (label -1) token after "
        "the points when there is NO box, and none when there is a box",
        "boxes_not_resized": "the clicks were resized into the model's frame but the boxes were "
        "not: boxes come in the original image's pixels too -- "
        "ResizeLongestSide(S).apply_boxes_torch(boxes, original_size)",
        "pad_label_zero": "the pad token was labelled 0, a background click at (0, 0): it is "
        "'not a point', label -1, so it gets not_a_point_embed and no positional encoding",
    },
)
def check_embed_points(ctx: Context) -> int:
    g = seeded_generator(7)

    def pixels(B: int, n: int, size: tuple[int, int]) -> torch.Tensor:
        xy = torch.rand(B, n, 2, generator=g) * torch.tensor([size[1], size[0]])
        return xy.floor()  # integer pixels, as clicks arrive

    # Original sizes whose resize is exact (same scale on both axes), none of them square.
    cases = [
        ("one foreground click on a 48x64 image", (48, 64), pixels(1, 1, (48, 64)),
         torch.tensor([[1]]), None),
        ("2 prompts of 3 points (labels 1/0/-1) on a 100x50 image", (100, 50),
         pixels(2, 3, (100, 50)), torch.tensor([[1, 0, -1], [0, 1, 1]]), None),
        ("2 boxes alone on a 60x80 image", (60, 80), None, None,
         torch.tensor([[5.0, 8.0, 40.0, 50.0], [30.0, 2.0, 79.0, 33.0]])),
        ("a background click and a box on a 200x150 image", (200, 150),
         pixels(1, 1, (200, 150)), torch.tensor([[0]]), torch.tensor([[20.0, 30.0, 140.0, 190.0]])),
    ]
    for i, (case, size, coords, labels, boxes) in enumerate(cases):
        encoder = _encoder(seed=i)
        got = ctx.call(encoder, _clone(coords), _clone(labels), _clone(boxes), size, case=case)
        expected = _tokens(encoder, coords, labels, boxes, size)
        if isinstance(got, torch.Tensor):
            got = got.detach()
            mistakes = _point_mistakes(encoder, coords, labels, boxes, size, got)
        else:
            mistakes = {}
        ctx.expect(got, expected, case, mistakes=mistakes, name="the token tensor")
    return len(cases)


# ------------------------------------------------------------------- 3. the mask encoder


def _reference_downscaling(mask_in_chans: int, embed_dim: int, seed: int) -> nn.Sequential:
    encoder = PromptEncoder(embed_dim=embed_dim, image_embedding_size=(4, 4),
                            input_image_size=(64, 64), mask_in_chans=mask_in_chans)
    net = encoder.mask_downscaling
    g = seeded_generator(seed)
    with torch.no_grad():  # random LayerNorm affines too, so a missing one shows
        for name, p in net.named_parameters():
            if isinstance(net[int(name.split(".")[0])], nn.Conv2d):
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if "weight" in name else 0))
    return net.eval()


def _diagnose_structure(ctx: Context, net: nn.Module, reference: nn.Sequential, case: str) -> None:
    mask_in_chans = reference[3].out_channels
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    layers = list(net.children())
    if any(isinstance(a, nn.GELU) and "Norm" in type(b).__name__
           for a, b in itertools.pairwise(layers)):
        ctx.fail("norm_after_gelu", case)
    if len(convs) == 2 and convs[-1].out_channels == mask_in_chans:
        ctx.fail("no_final_conv", case)
    if any(4 in tuple(c.stride) or 4 in tuple(c.kernel_size) for c in convs):
        ctx.fail("one_stride4_conv", case)
    if any(isinstance(m, nn.LayerNorm) for m in net.modules()):
        ctx.fail("torch_layernorm", case)
    if sum("Norm" in type(m).__name__ for m in net.modules()) < 2:
        ctx.fail("no_layernorm", case)
    if convs and convs[0].out_channels == mask_in_chans != mask_in_chans // 4:
        ctx.fail("channels", case)
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    sam = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if mine != sam:
        missing = sorted(set(sam) - set(mine))
        extra = sorted(set(mine) - set(sam))
        shapes = [f"{k}: {mine[k]} instead of {sam[k]}" for k in sorted(set(mine) & set(sam))
                  if mine[k] != sam[k]]
        ctx.fail("its weights must sit where SAM's checkpoints put them: nn.Sequential "
                 "positions 0 (conv), 1 (LayerNorm2d), 2 (GELU), 3 (conv), 4 (LayerNorm2d), "
                 "5 (GELU), 6 (1x1 conv)"
                 + (f"; missing {missing}" if missing else "")
                 + (f"; unexpected {extra}" if extra else "")
                 + (f"; {', '.join(shapes)}" if shapes else ""), case)


@exercise(
    "build_mask_downscaling", lab=LAB, points=2,
    what="build_mask_downscaling(mask_in_chans, embed_dim)",
    reference=("samteach.modeling.prompt_encoder.PromptEncoder.__init__",),
    mistakes={
        "relu": "the activations are ReLUs: SAM separates the layers with GELU (App. A), "
        "nn.GELU(), and the released weights were trained with it",
        "no_layernorm": "a LayerNorm2d is missing: each stride-2 conv is followed by "
        "LayerNorm2d(its output channels) and then GELU (positions 1 and 4 of the Sequential)",
        "one_stride4_conv": "the 4x downscaling is one stride-4 conv: SAM uses two 2x2, "
        "stride-2 convs (1 -> mask_in_chans // 4 -> mask_in_chans channels), each followed by "
        "LayerNorm2d and GELU, then a 1x1 conv to embed_dim",
        "torch_layernorm": "nn.LayerNorm normalises the LAST axis, the width of a (B, C, H, W) "
        "map: use LayerNorm2d (imported in the first cell), which normalises each pixel's "
        "C channels",
        "channels": "the first conv should output mask_in_chans // 4 channels (4 for SAM) and "
        "the second mask_in_chans (16); the final 1x1 conv maps them to embed_dim",
        "no_final_conv": "the last layer is missing: after the second LayerNorm2d and GELU a "
        "1x1 conv maps the mask_in_chans channels to embed_dim, the width of the image "
        "embedding the dense prompt is added to (position 6 of the Sequential)",
        "norm_after_gelu": "LayerNorm2d and GELU are in the wrong order: each stride-2 conv is "
        "followed by LayerNorm2d THEN GELU (conv, norm, activation, as in the image encoder's "
        "neck)",
    },
)
def check_build_mask_downscaling(ctx: Context) -> int:
    cases = [("mask_in_chans 16, embed_dim 32, 2 masks of 32x48", 16, 32, (2, 1, 32, 48)),
             ("mask_in_chans 8, embed_dim 12, one 16x16 mask", 8, 12, (1, 1, 16, 16))]
    for i, (case, mask_in_chans, embed_dim, shape) in enumerate(cases):
        net = ctx.call(mask_in_chans, embed_dim, case=case)
        if not isinstance(net, nn.Module):
            ctx.fail(f"return an nn.Sequential (an nn.Module); got {type(net).__name__}", case)
        reference = _reference_downscaling(mask_in_chans, embed_dim, seed=i)
        _diagnose_structure(ctx, net, reference, case)
        net.load_state_dict(reference.state_dict())  # SAM's weights in the student's layers
        net.eval()
        # Logits, as the decoder makes them.
        masks = 4 * torch.randn(shape, generator=seeded_generator(10 + i))

        def with_relu(positions: tuple[int, ...], reference=reference, masks=masks):
            relu = copy.deepcopy(reference)
            for k in positions:
                relu[k] = nn.ReLU()
            return relu(masks)

        with torch.no_grad():
            got = ctx.run(net, masks.clone(), case=case)
            expected = reference(masks)
            ctx.expect(got, expected, case, mistakes={"relu": lambda got=got: nearest(
                got, with_relu((2, 5)), with_relu((2,)), with_relu((5,)))},
                       name="the dense embedding")
    return len(cases)
