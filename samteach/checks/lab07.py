"""Checks of lab 07 (text prompts): CLIP's loss, the paper's object crop, the text token.

Expected values come from samteach (``contrastive_loss``, ``object_crop``, ``PromptEncoder``
with ``text_dim``); the mistakes are the same computations with one thing done wrong.
"""

import torch
import torch.nn.functional as F

from ..modeling.prompt_encoder import PromptEncoder
from ..text.contrastive import contrastive_loss
from ..text.crops import object_crop, sample_square
from ..utils.masks import mask_to_box
from ._core import Context, exercise, nearest, seeded_generator
from .lab02 import _encoder

__all__ = ["check_clip_loss", "check_embed_text_prompt", "check_paper_crop"]

LAB = "07_text_prompts"


# ----------------------------------------------------------------------- 1. CLIP's loss


def _loss(images, texts, log_scale, normalise=True, scale="exp", directions=("rows", "cols"),
          halve=True) -> torch.Tensor:
    """CLIP's loss with one thing changed (the defaults compute it right)."""
    if normalise:
        images, texts = F.normalize(images, dim=-1), F.normalize(texts, dim=-1)
    logits = images @ texts.T
    factor = {"exp": log_scale.exp(), "raw": log_scale, "divide": 1 / log_scale.exp(),
              "none": torch.tensor(1.0)}[scale]
    logits = logits * factor
    answers = torch.arange(len(logits))
    parts = {"rows": F.cross_entropy(logits, answers), "cols": F.cross_entropy(logits.T, answers)}
    total = sum(parts[d] for d in directions)
    return total / len(directions) if halve else total


@exercise(
    "clip_loss", lab=LAB, points=2, what="clip_loss(image_embeddings, text_embeddings, log_scale)",
    reference=("samteach.text.contrastive.contrastive_loss",),
    mistakes={
        "not_normalised": "the embeddings are not normalised: CLIP compares directions, so "
        "divide each row by its norm (F.normalize(x, dim=-1)) before the (B, B) dot products -- "
        "the similarities are then cosines in [-1, 1]",
        "one_direction": "only one direction is trained: CLIP's loss is symmetric, the mean of "
        "the cross-entropy over the rows (each image picks its caption) and over the columns "
        "(each caption picks its image): (CE(logits, i) + CE(logits.T, i)) / 2",
        "scale_not_exponentiated": "the similarities are multiplied by log_scale itself: the "
        "learnable parameter is the LOG of the scale (so the scale stays positive); multiply "
        "by log_scale.exp()",
        "scale_divides": "the similarities are divided by exp(log_scale): exp(log_scale) = 1 / "
        "temperature, so multiply (CLIP starts at 1 / 0.07, about 14.3)",
        "no_scale": "the similarities are not scaled: cosines in [-1, 1] make a nearly flat "
        "softmax; multiply them by exp(log_scale) (1 / temperature)",
        "not_halved": "the two cross-entropies are added, not averaged: divide their sum by 2",
        "detached": "the loss is cut from the graph (.item(), float(), .detach() or a new "
        "tensor): return the torch scalar itself, so that loss.backward() reaches the "
        "embeddings and the temperature",
    },
)
def check_clip_loss(ctx: Context) -> int:
    cases = [("5 pairs of 8-d embeddings, the CLIP start scale 1/0.07", 5, 8, 2.6593),
             ("7 pairs of 16-d embeddings of norm ~3, scale e^1", 7, 16, 1.0),
             ("3 pairs, 4-d, scale e^0.5", 3, 4, 0.5)]
    for case, B, D, t in cases:
        _clip_loss_case(ctx, case, B, D, t)
    return len(cases)


def _clip_loss_case(ctx: Context, case: str, B: int, D: int, t: float) -> None:
    g = seeded_generator(B * 100 + D)
    images = 3 * torch.randn(B, D, generator=g)
    texts = images + 2 * torch.randn(B, D, generator=g)  # pairs that roughly agree
    log_scale = torch.tensor(t, requires_grad=True)
    got = ctx.call(images.clone().requires_grad_(), texts.clone().requires_grad_(), log_scale,
                   case=case)
    with torch.no_grad():
        expected = contrastive_loss(images, texts, log_scale)

        def loss(**change):
            return lambda: _loss(images, texts, log_scale, **change)

        ctx.expect(got.detach() if isinstance(got, torch.Tensor) else got, expected, case,
                   mistakes={
            "not_normalised": lambda: nearest(
                got, _loss(images, texts, log_scale, normalise=False),
                _loss(images, F.normalize(texts, dim=-1), log_scale, normalise=False),
                _loss(F.normalize(images, dim=-1), texts, log_scale, normalise=False)),
            "one_direction": lambda: nearest(got, loss(directions=("rows",))(),
                                             loss(directions=("cols",))()),
            "scale_not_exponentiated": loss(scale="raw"),
            "scale_divides": loss(scale="divide"),
            "no_scale": loss(scale="none"),
            "not_halved": loss(halve=False),
        }, name="the loss")
    if got.dim() != 0:
        ctx.fail(f"the loss must be a scalar (0-d tensor); got shape {tuple(got.shape)}", case)
    if not got.requires_grad:
        ctx.fail("detached", case)


# ------------------------------------------------------------------- 2. the paper's crop


def _crop(image, mask, size, draws, grow, zero_outside, *, swap_draws=False, grow_off=False,
          side="longer", centre_offset=0.0, inclusive=True, zero="outside",
          flipped_coin=False, half_factor=0.5) -> torch.Tensor:
    """The paper's crop from fixed draws, with one thing changed (defaults: right)."""
    u_grow, u_zero = (draws[1], draws[0]) if swap_draws else (draws[0], draws[1])
    low, high = grow
    factor = 1.0 if grow_off else low + (high - low) * float(u_grow)
    x0, y0, x1, y1 = (float(v) for v in mask_to_box(mask))
    extra = 1.0 if inclusive else 0.0
    cx, cy = (x0 + x1 + extra) / 2 + centre_offset, (y0 + y1 + extra) / 2 + centre_offset
    sides = (x1 - x0 + extra, y1 - y0 + extra)
    half = factor * (max(sides) if side == "longer" else min(sides)) * half_factor
    pixels = image.float()
    coin = float(u_zero) >= zero_outside if flipped_coin else float(u_zero) < zero_outside
    if coin:
        pixels = pixels * (mask if zero == "outside" else ~mask)
    return sample_square(pixels, (cx, cy), half, size)


@exercise(
    "paper_crop", lab=LAB, points=3,
    what="paper_crop(image, mask, size, generator, grow, zero_outside)",
    reference=("samteach.text.crops.object_crop",),
    mistakes={
        "draws_swapped": "the two random numbers are used the other way round: draw "
        "torch.rand(2, generator=generator) once; the FIRST sets the growth factor, the SECOND "
        "decides the zero-out (so the same generator gives everyone the same crop)",
        "no_grow": "the box is not grown: the square's side is the box's longer side times a "
        "factor drawn uniformly in grow = (low, high): low + (high - low) * u",
        "shorter_side": "the square follows the box's SHORTER side: use the longer one, so "
        "the whole object fits in the square before it is grown",
        "centre_pixel_index": "the centre is off by half a pixel: in pixel EDGES, a box from "
        "pixel x0 to pixel x1 spans [x0, x1 + 1], so its centre is (x0 + x1 + 1) / 2",
        "box_exclusive": "the box's width is x1 - x0: with x1 the last pixel INSIDE the mask "
        "(mask_to_box), the object is x1 - x0 + 1 pixels wide, and its centre (x0 + x1 + 1) / 2",
        "zero_inside": "the object itself is zeroed: keep the pixels INSIDE the mask and zero "
        "those outside (pixels * mask)",
        "coin_flipped": "the zero-out happens with probability 1 - zero_outside: zero the "
        "outside when the second draw is BELOW zero_outside (u < p happens with probability p)",
        "half_is_side": "the square is twice too large: sample_square takes the HALF side, "
        "factor * longer_side / 2",
    },
)
def check_paper_crop(ctx: Context) -> int:
    H, W = 48, 64
    g = seeded_generator(7)
    image = torch.randint(1, 256, (3, H, W), generator=g).float()
    tall = torch.zeros(H, W, dtype=torch.bool)
    tall[10:30, 40:44] = True  # 20 high, 4 wide
    corner = torch.zeros(H, W, dtype=torch.bool)
    corner[0:6, 0:9] = True
    corner[2, 9] = True  # not a rectangle
    blob = torch.zeros(H, W, dtype=torch.bool)
    blob[20:33, 5:30] = True
    blob[20:25, 5:12] = False
    cases = []
    for seed in range(4):  # the draws differ: grown or not, zeroed or not
        cases.append((f"a tall thin object, seed {seed}", tall, 12, seed, (1.0, 2.0), 0.5))
    cases += [("an object in the corner (padding), grow (1.5, 3)", corner, 10, 11, (1.5, 3.0),
               0.5),
              ("an L-shaped object, always zeroed outside", blob, 16, 12, (1.0, 2.0), 1.0),
              ("an L-shaped object, never zeroed", blob, 16, 13, (1.0, 1.5), 0.0)]
    for case, mask, size, seed, grow, p in cases:
        _paper_crop_case(ctx, case, image, mask, size, seed, grow, p)
    return len(cases)


def _paper_crop_case(ctx: Context, case: str, image, mask, size, seed, grow, p) -> None:
    got = ctx.call(image.clone(), mask.clone(), size, seeded_generator(seed), grow, p, case=case)
    expected = object_crop(image, mask, size, seeded_generator(seed), grow, p)
    draws = torch.rand(2, generator=seeded_generator(seed))

    def wrong(**tweak):
        return lambda: _crop(image, mask, size, draws, grow, p, **tweak)

    ctx.expect(got, expected, case, atol=1e-3, mistakes={
        "draws_swapped": wrong(swap_draws=True),
        "no_grow": wrong(grow_off=True),
        "shorter_side": wrong(side="shorter"),
        "centre_pixel_index": lambda: nearest(got, wrong(centre_offset=-0.5)(),
                                              wrong(centre_offset=0.5)()),
        "box_exclusive": wrong(inclusive=False),
        "zero_inside": wrong(zero="inside"),
        "coin_flipped": wrong(flipped_coin=True),
        "half_is_side": wrong(half_factor=1.0),
    }, name="the crop")


# --------------------------------------------------------------------- 3. the text token


@exercise(
    "embed_text_prompt", lab=LAB, points=2,
    what="embed_text_prompt(prompt_encoder, points, boxes, text)",
    reference=("samteach.modeling.prompt_encoder.PromptEncoder.embed_text",),
    mistakes={
        "not_normalised": "the CLIP embedding is projected as it comes: normalise it first "
        "(F.normalize(text, dim=-1)); CLIP's embeddings are compared as directions, and an "
        "image embedding in training and a text embedding at inference have different norms",
        "no_type_embedding": "the token has no type: add prompt_encoder.text_embed.weight, "
        "the learned vector that tells the decoder 'this token is text', as each point label "
        "has its own",
        "text_first": "the text token comes first: append it AFTER SAM's point and box tokens "
        "(torch.cat([sparse, token[:, None]], dim=1)), where samteach's prompt encoder puts it",
        "no_pad_alone": "text alone has no padding token: SAM pads prompts that have no box; "
        "text alone must be [pad, text], the tokens the model was trained with -- ask the "
        "prompt encoder for zero points, (B, 0, 2) coordinates and (B, 0) labels, and it "
        "returns the pad",
        "pad_with_box": "a pad token came with a box: SAM pads only prompts WITHOUT a box; let "
        "the prompt encoder decide (call it with the points and boxes, no pad argument)",
    },
)
def check_embed_text_prompt(ctx: Context) -> int:
    encoder = _encoder(3, text_dim=8)  # lab 02's, with text prompts
    g = seeded_generator(4)
    B = 2
    text = 3 * torch.randn(B, 8, generator=g)
    clicks = (torch.rand(B, 2, 2, generator=g) * 127, torch.tensor([[1, 0], [1, 1]]))
    box = torch.tensor([[10.0, 20.0, 70.0, 90.0], [30.0, 5.0, 100.0, 60.0]])
    cases = [("text alone", None, None), ("text and two clicks", clicks, None),
             ("text and a box", None, box), ("text, two clicks and a box", clicks, box)]
    with torch.no_grad():
        tokens = {"right": encoder.embed_text(text),  # (B, C) each
                  "raw": encoder.text_projection(text) + encoder.text_embed.weight,
                  "bare": encoder.text_projection(F.normalize(text, dim=-1))}
    for case, points, boxes in cases:
        _text_prompt_case(ctx, case, encoder, points, boxes, text, tokens)
    return len(cases)


def _text_prompt_case(ctx: Context, case: str, encoder: PromptEncoder, points, boxes, text,
                      tokens: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        expected, _ = encoder(points, boxes, None, text=text)
    rest = expected[:, :-1]  # SAM's tokens, the pad included where it belongs
    got = ctx.call(encoder, points, boxes, text.clone(), case=case)
    pad = encoder._label_embeddings().detach()[0].expand(len(text), 1, -1)
    alone, boxed = points is None and boxes is None, boxes is not None

    def with_token(token: torch.Tensor, others: torch.Tensor = rest) -> torch.Tensor:
        return torch.cat([others, token[:, None]], dim=1)

    def padded_box() -> torch.Tensor:  # a pad anywhere among SAM's tokens
        return nearest(got, *(with_token(tokens["right"],
                                         torch.cat([rest[:, :n], pad, rest[:, n:]], dim=1))
                              for n in range(rest.shape[1] + 1)))

    never = expected + 1  # a mistake this case cannot show
    ctx.expect(got, expected, case, mistakes={
        "not_normalised": lambda: with_token(tokens["raw"]),
        "no_type_embedding": lambda: with_token(tokens["bare"]),
        "text_first": lambda: torch.cat([tokens["right"][:, None], rest], dim=1),
        "no_pad_alone": lambda: with_token(tokens["right"], rest[:, :0]) if alone else never,
        "pad_with_box": padded_box if boxed else lambda: never,
    }, name="the sparse tokens")
