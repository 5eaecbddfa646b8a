"""Checks of lab 04 (interactive training): the noisy box, the corrective click, one turn of the
multi-round loop, the focal loss and SAM's loss with its minimum over the multimask outputs.

The click exercises are random by nature; their checks are behavioural (where do clicks land,
with which label, how often) over many draws of a seeded generator, and compare exactly with
samteach only where the student's code draws through the library's sampler.
"""

import torch
import torch.nn.functional as F

from ..training import losses, next_round_prompts
from ..training.samplers import append_clicks, jitter_boxes, mask_to_box, sample_error_clicks
from ._core import Context, exercise, seeded_generator

__all__ = ["check_error_click", "check_focal_loss", "check_next_round", "check_noisy_box",
           "check_sam_loss"]


def _rect(size: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
    """(H, W) bool, True on columns x0..x1 and rows y0..y1 (inclusive)."""
    mask = torch.zeros(size, dtype=torch.bool)
    mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


# ------------------------------------------------------------------------------ noisy box


@exercise(
    "noisy_box", lab="04_interactive_training", points=2, what="noisy_box(masks, noise)",
    reference=("samteach.training.samplers.jitter_boxes",),
    mistakes={
        "noise_image_scale": "the noise is scaled by the image size: SAM's std is 10% of the "
        "*box* side -- 0.1 * (x1 - x0) for x0 and x1, 0.1 * (y1 - y0) for y0 and y1 -- so a "
        "small object gets a small jitter",
        "no_max_noise": "a big box moves too far: each coordinate moves at most 20 pixels "
        "(SAM App. A) -- clamp the shift to [-20, 20] before adding it",
        "xy_swapped": "x and y are swapped: a box is (x0, y0, x1, y1), x the column index "
        "(masks.any(dim=1) says which columns hold the object), y the row index",
        "no_image_clip": "the box leaves the image: clip x to [0, W - 1] and y to [0, H - 1] "
        "after adding the noise",
        "no_tenth": "the shift is the side times the noise: the noise's standard deviation is "
        "10% of the box side, shift = 0.1 * side * noise (then at most 20 px)",
        "exclusive_corners": "x1 and y1 are one past the object (as in a slice): the box's "
        "corners are the first and LAST pixel the object covers, inclusive -- a one-pixel "
        "object has x0 == x1",
    },
)
def check_noisy_box(ctx: Context) -> int:
    objects = [_rect((40, 60), 5, 8, 30, 20),  # a wide rectangle
               _rect((40, 60), 40, 3, 44, 33),  # a tall thin one
               _rect((40, 60), 20, 10, 20, 10) | _rect((40, 60), 23, 25, 27, 28)]  # two blobs
    cases = [
        ("3 objects in a 40x60 image", torch.stack(objects),
         torch.tensor([[1.2, -0.7, 0.4, 1.5], [-1.1, 0.3, 0.9, -0.4], [0.6, 1.8, -0.5, 0.8]])),
        ("a 240x300 object in a 260x320 image: shifts above 20 px",
         _rect((260, 320), 10, 12, 309, 251)[None], torch.tensor([[1.3, -0.2, -2.0, 0.5]])),
        ("objects touching the image border", torch.stack(
            [_rect((50, 36), 0, 30, 20, 49), _rect((50, 36), 15, 0, 35, 10)]),
         torch.tensor([[-1.5, 0.4, 0.7, 2.0], [0.5, -2.2, 1.6, 0.3]])),
        ("a single pixel: no side, no noise", _rect((9, 7), 3, 5, 3, 5)[None],
         torch.tensor([[1.0, -1.0, 2.0, -2.0]])),
    ]
    for case, masks, noise in cases:
        H, W = masks.shape[-2:]
        box = mask_to_box(masks)
        swapped = box[:, [1, 0, 3, 2]]
        image_side = torch.tensor([W, H, W, H], dtype=torch.float32)
        got = ctx.call(masks.clone(), noise.clone(), case=case)
        expected = jitter_boxes(box, noise, (H, W))
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and any(
                torch.allclose(got.detach().float(), xy, atol=1e-4) for xy in (
                    jitter_boxes(swapped, noise, (H, W)), expected[:, [1, 0, 3, 2]],
                    jitter_boxes(swapped, noise, (W, H))[:, [1, 0, 3, 2]])) \
                and not torch.allclose(got.detach().float(), expected, atol=1e-4):
            ctx.fail("xy_swapped", case)
        ctx.expect(got, expected, case, name="the box", atol=1e-4, mistakes={
            "noise_image_scale": lambda b=box, n=noise, s=image_side, hw=(H, W): (
                b + (0.1 * s * n).clamp(-20, 20)).clamp(min=0).minimum(s - 1),
            "no_max_noise": lambda b=box, n=noise, hw=(H, W): jitter_boxes(
                b, n, hw, max_noise=float("inf")),
            "no_image_clip": lambda b=box, n=noise: b + (
                0.1 * (b[:, 2:] - b[:, :2]).repeat(1, 2) * n).clamp(-20, 20),
            "no_tenth": lambda b=box, n=noise, hw=(H, W): _shifted(b, n, hw, std=1.0),
            "exclusive_corners": lambda b=box, n=noise, hw=(H, W): _shifted(
                b + torch.tensor([0.0, 0.0, 1.0, 1.0]), n, hw),
        })
    return len(cases)


def _shifted(box: torch.Tensor, noise: torch.Tensor, hw: tuple[int, int],
             std: float = 0.1) -> torch.Tensor:
    """The noisy box as the lab writes it (clipped, the pairs not reordered), for mistakes."""
    H, W = hw
    side = (box[:, 2:] - box[:, :2]).repeat(1, 2)
    last = torch.tensor([W - 1, H - 1, W - 1, H - 1], dtype=torch.float32)
    return (box + (std * side * noise).clamp(-20, 20)).clamp(min=0).minimum(last)


# ----------------------------------------------------------------------------- error click


@exercise(
    "error_click", lab="04_interactive_training", points=3,
    what="error_click(pred, gt, generator)",
    reference=("samteach.training.samplers.sample_error_clicks",),
    mistakes={
        "labels_swapped": "the labels of the error regions are swapped: a missed object pixel "
        "(FN = gt & ~pred) needs a *foreground* click, label 1; spill (FP = ~gt & pred) a "
        "*background* click, label 0",
        "fn_only": "clicks come only from the missed pixels (FN): spill (FP = ~gt & pred) is an "
        "error too -- sample from the whole error region FN | FP, where FP pixels earn "
        "background clicks (label 0)",
        "xy_swapped": "the click's coordinates are swapped: return (x, y) = (column, row); a "
        "flat index i of an (H, W) mask is row i // W, column i % W",
        "region_coin_flip": "FN and FP are chosen with equal odds, whatever their sizes: draw "
        "one pixel uniformly from the union FN | FP, so each region is clicked in proportion "
        "to its area",
        "ignores_generator": "two calls with generators of the same seed gave different clicks: "
        "draw all randomness from `generator` (e.g. torch.multinomial(..., "
        "generator=generator)), so a training run can be repeated exactly",
        "no_padding": "where the prediction is perfect there is nothing to correct: return the "
        "padding click, point (0, 0) with label -1 (the prompt encoder gives it no position)",
    },
)
def check_error_click(ctx: Context) -> int:
    # An 8x11 mask (not square, so swapped x/y show): 3 missed pixels (a thin line) and 16
    # spilled ones (a 4x4 block, whose inner pixels lie deeper than its rim).
    H, W = 8, 11
    gt = _rect((H, W), 1, 1, 5, 4)  # 5 x 4 = 20 pixels
    pred = gt.clone()
    pred[4, 2:5] = False  # FN: 3 pixels
    pred |= _rect((H, W), 6, 3, 9, 6)  # FP: 16 pixels
    fn, fp = gt & ~pred, ~gt & pred
    n = 8000
    case = "8x11 masks, 3 missed (FN) and 16 spilled (FP) pixels, 8000 draws"
    many = pred.expand(n, H, W), gt.expand(n, H, W)
    points, labels = _clicks(ctx, *many, seeded_generator(0), case)
    if not _same_clicks((points, labels), _clicks(ctx, *many, seeded_generator(0), case)):
        ctx.fail("ignores_generator", case)
    _where_clicks_land(ctx, points, labels, fn, fp, case)
    share_fn = (labels == 1).float().mean().item()  # expected 3 / 19 = 0.158 (std 0.004)
    if share_fn > 0.95:
        ctx.fail("fn_only", case)
    if abs(share_fn - 0.5) < 0.05:
        ctx.fail("region_coin_flip", case)
    if abs(share_fn - 3 / 19) > 0.03:
        ctx.fail(f"{100 * share_fn:.0f}% of the clicks are foreground, but FN is 3 of the 19 "
                 "error pixels (16%): draw one pixel uniformly over FN | FP", case)
    hits = torch.zeros(H, W)
    hits.index_put_((points[:, 1].long(), points[:, 0].long()), torch.ones(n), accumulate=True)
    per_pixel = hits[fn | fp]  # 19 counts, about 421 each (std 20)
    if per_pixel.min() < 0.75 * n / 19 or per_pixel.max() > 1.25 * n / 19:
        ctx.fail("some error pixels are clicked far more often than others: every pixel of "
                 "FN | FP must be equally likely (uniform, not weighted by depth)", case)

    case = "prediction covers the object and more (FP only): background clicks"
    points, labels = _clicks(ctx, (gt | fp).expand(50, H, W), gt.expand(50, H, W),
                             seeded_generator(1), case)
    if (labels == -1).all():  # nothing drawn: only FN counted as an error
        ctx.fail("fn_only", case)
    _where_clicks_land(ctx, points, labels, torch.zeros_like(fp), fp, case)

    case = "empty prediction (as before the first click): foreground clicks"
    points, labels = _clicks(ctx, torch.zeros(50, H, W, dtype=torch.bool), gt.expand(50, H, W),
                             seeded_generator(2), case)
    _where_clicks_land(ctx, points, labels, gt, torch.zeros_like(gt), case)

    case = "a batch of 3: perfect, missed, spilled (perfect -> padding)"
    batch_gt = torch.stack([gt, gt, _rect((H, W), 7, 0, 10, 7)])
    batch_pred = torch.stack([gt, gt & ~fn, _rect((H, W), 6, 0, 10, 7)])
    points, labels = _clicks(ctx, batch_pred, batch_gt, seeded_generator(3), case)
    if labels[0] != -1 or points[0].abs().sum() != 0:
        ctx.fail("no_padding", case)
    _where_clicks_land(ctx, points[1:], labels[1:], (batch_gt & ~batch_pred)[1:],
                       (~batch_gt & batch_pred)[1:], case)
    if labels[1] != 1 or labels[2] != 0:
        ctx.fail("labels_swapped", case)
    return 4


def _clicks(ctx: Context, pred, gt, generator, case: str):
    got = ctx.call(pred.clone(), gt.clone(), generator, case=case)
    if not (isinstance(got, tuple) and len(got) == 2 and all(
            isinstance(t, torch.Tensor) for t in got)):
        ctx.fail("return two tensors: points (B, 2) float (x, y) and labels (B,) int64", case)
    points, labels = got
    B = len(gt)
    if tuple(points.shape) != (B, 2) or tuple(labels.shape) != (B,):
        ctx.fail(f"points must be (B, 2) = ({B}, 2) and labels (B,) = ({B},); got "
                 f"{tuple(points.shape)} and {tuple(labels.shape)}", case)
    if labels.dtype != torch.int64:
        ctx.fail(f"labels must be int64 (the prompt encoder's label dtype); got {labels.dtype}",
                 case)
    if not points.dtype.is_floating_point:
        ctx.fail(f"points must be float pixel coordinates; got {points.dtype}", case)
    if not ((labels >= -1) & (labels <= 1)).all():
        ctx.fail("labels must be 1 (foreground), 0 (background) or -1 (padding)", case)
    return points.detach().cpu(), labels.cpu()


def _same_clicks(a, b) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _where_clicks_land(ctx: Context, points, labels, fn, fp, case: str) -> None:
    """Every click on an error pixel (no padding while there are errors), label 1 iff FN."""
    fn, fp = (m.expand(len(points), *m.shape[-2:]) if m.dim() == 2 else m for m in (fn, fp))
    H, W = fn.shape[-2:]
    if (labels == -1).any():
        ctx.fail("a padding click (-1) although the prediction has errors: pad only where "
                 "pred == gt everywhere", case)
    if not _on_errors(points, fn | fp, H, W):
        if _on_errors(points.flip(1), fn | fp, H, W):
            ctx.fail("xy_swapped", case)
        ctx.fail("clicks land outside the error region FN | FP (or are not whole pixel "
                 "coordinates): sample one pixel where pred and gt disagree", case)
    rows = torch.arange(len(points))
    x, y = points[:, 0].long(), points[:, 1].long()
    on_fn = fn[rows, y, x]
    if torch.equal(labels, on_fn.long()):
        return
    if torch.equal(labels, (~on_fn).long()):
        ctx.fail("labels_swapped", case)
    ctx.fail("some labels are wrong: 1 where the click is on a missed pixel (FN), 0 on spill "
             "(FP)", case)


def _on_errors(points: torch.Tensor, error: torch.Tensor, H: int, W: int) -> bool:
    x, y = points[:, 0], points[:, 1]
    if not (torch.equal(x, x.round()) and torch.equal(y, y.round())):
        return False
    if not ((x >= 0) & (x < W) & (y >= 0) & (y < H)).all():
        return False
    return bool(error[torch.arange(len(points)), y.long(), x.long()].all())


# ------------------------------------------------------------------------------ next round


@exercise(
    "next_round", lab="04_interactive_training", points=3,
    what="next_round(points, labels, low_res, iou_pred, gt, generator)",
    reference=("samteach.training.step.next_round_prompts",),
    mistakes={
        "argmin": "the mask fed back is the one with the *lowest* predicted IoU: SAM feeds back "
        "the output it trusts most, iou_pred.argmax(dim=1)",
        "always_first": "the mask fed back is always output 0: pick, per prompt, the output "
        "with the highest predicted IoU (iou_pred.argmax(dim=1))",
        "thresholded": "the fed-back mask is thresholded: SAM feeds back the *unthresholded* "
        "low-res logits, so the next round also sees how sure the model was at each pixel",
        "not_detached": "the fed-back logits still carry gradient: .detach() them, so no "
        "gradient flows from one round into the previous one (SAM App. A treats the previous "
        "mask as a given prompt)",
        "nearest_upsampling": "the click was drawn on a mask upsampled with 'nearest': the user "
        "sees (and the loss scores) the logits upsampled bilinearly (align_corners=False), "
        "then thresholded at 0 -- draw the click where THAT mask is wrong",
        "threshold_half": "the upsampled logits were thresholded at 0.5: they are logits, not "
        "probabilities; a mask is logits > 0 (probability > 0.5)",
    },
)
def check_next_round(ctx: Context) -> int:
    cases = [("3 prompts, 3 multimask outputs, 16x20 logits for a 64x80 image", 3, 3, (16, 20)),
             ("2 prompts, a single-mask round (M = 1)", 2, 1, (16, 16)),
             ("4 prompts, 3 outputs, already 2 clicks each", 4, 3, (12, 12))]
    for i, (case, P, M, (h, w)) in enumerate(cases):
        g = seeded_generator(10 + i)
        low_res = 4 * torch.randn(P, M, h, w, generator=g)
        if M > 1:  # make the three outputs differ clearly: output m is shifted by m - 1
            low_res = low_res + torch.arange(M).view(1, M, 1, 1) - 1.0
        iou_pred = torch.rand(P, M, generator=g)
        H, W = 4 * h, 4 * w
        gt = F.interpolate(torch.randn(P, 1, h // 2, w // 2, generator=g), size=(H, W),
                           mode="bilinear", align_corners=False)[:, 0] > 0
        N = 2 if i < 2 else 4
        points = torch.randint(0, min(H, W), (P, N, 2), generator=g).float()
        labels = torch.randint(0, 2, (P, N), generator=g)
        labels[:, 1] = -1 if i == 0 else labels[:, 1]
        leaf = low_res.clone().requires_grad_(True)
        got = ctx.call(points.clone(), labels.clone(), leaf, iou_pred.clone(), gt.clone(),
                       seeded_generator(100 + i), case=case)
        if not (isinstance(got, tuple) and len(got) == 3):
            ctx.fail("return three things: points (P, N + 1, 2), labels (P, N + 1) and the "
                     "mask_input (P, 1, h, w)", case)
        new_points, new_labels, mask_input = got
        exp_points, exp_labels, exp_mask = next_round_prompts(points, labels, low_res, iou_pred,
                                                              gt, seeded_generator(100 + i))
        if isinstance(mask_input, torch.Tensor) and mask_input.requires_grad:
            ctx.fail("not_detached", case)
        if isinstance(mask_input, torch.Tensor) and (
                mask_input.dtype == torch.bool or mask_input.unique().numel() <= 2):
            ctx.fail("thresholded", case)
        rows = torch.arange(P)
        ctx.expect(mask_input, exp_mask, case, name="mask_input", mistakes={
            "argmin": lambda r=rows, x=low_res, s=iou_pred: x[r, s.argmin(1)][:, None],
            "always_first": lambda x=low_res: x[:, :1],
        })
        args = (points, labels, exp_mask, gt, 100 + i)
        ctx.expect(new_points, exp_points, case, name="the points (the new click: sample it "
                   "with sample_error_clicks(pred, gt, generator) on the fed-back mask upsampled "
                   "to gt's size (bilinear, align_corners=False) and thresholded at 0)",
                   mistakes={"nearest_upsampling": lambda a=args: _clicked(*a, mode="nearest"),
                             "threshold_half": lambda a=args: _clicked(*a, threshold=0.5)})
        ctx.expect(new_labels, exp_labels, case, name="the labels")
    return len(cases)


def _clicked(points, labels, mask_input, gt, seed: int, mode: str = "bilinear",
             threshold: float = 0.0) -> torch.Tensor:
    """The next round's points when the click is drawn on ``mask_input`` upsampled with
    ``mode`` and thresholded at ``threshold`` (for naming a mistake)."""
    size = gt.shape[-2:]
    up = F.interpolate(mask_input, size=size, mode=mode) if mode == "nearest" else \
        F.interpolate(mask_input, size=size, mode=mode, align_corners=False)
    click, label = sample_error_clicks(up[:, 0] > threshold, gt, seeded_generator(seed))
    return append_clicks(points, labels, click, label)[0]


# ------------------------------------------------------------------------------ focal loss


@exercise(
    "focal_loss", lab="04_interactive_training", points=2, what="focal_loss(logits, targets)",
    reference=("samteach.training.losses.focal_loss",),
    mistakes={
        "no_gamma": "this is (alpha-weighted) cross-entropy: multiply it by (1 - p_t) ** gamma, "
        "so pixels the model already gets right (p_t near 1) count little",
        "no_alpha": "the class weight is missing: multiply by alpha_t = alpha on object pixels "
        "and 1 - alpha on background pixels (alpha = 0.25)",
        "alpha_swapped": "alpha weighs the wrong class: alpha_t = alpha * t + (1 - alpha) * "
        "(1 - t), i.e. 0.25 on object pixels (t = 1) and 0.75 on background",
        "sum_pixels": "the loss is summed over pixels: average it over the H x W pixels "
        "(.mean over the last two dims), so its size does not grow with the mask's",
        "gamma_on_p": "the modulating factor uses p, the probability of the OBJECT: it must use "
        "p_t, the probability given to the right answer (p on object pixels, 1 - p on "
        "background), (1 - p_t) ** gamma",
        "mean_all": "the loss was averaged over everything into one number: return one value per "
        "mask, shape (...), the mean over its H x W pixels only (the caller picks and weighs "
        "masks)",
    },
)
def check_focal_loss(ctx: Context) -> int:
    g = seeded_generator(4)
    cases = [("2 prompts x 3 masks of 6x7, bool targets", 3 * torch.randn(2, 3, 6, 7, generator=g),
              torch.rand(2, 3, 6, 7, generator=g) > 0.6),
             ("4 masks of 5x5, soft targets (share of each pixel covered)",
              3 * torch.randn(4, 5, 5, generator=g), torch.rand(4, 5, 5, generator=g).round(
                  decimals=1)),
             ("one 1x8 mask, confident and right / wrong", torch.tensor(
                 [[[6.0, -6.0, 0.5, -0.5, 3.0, -3.0, 0.0, 9.0]]]),
              torch.tensor([[[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]]]))]
    for case, logits, targets in cases:
        got = ctx.call(logits.clone(), targets.clone(), case=case)
        ctx.expect(got, losses.focal_loss(logits, targets), case, name="the focal loss",
                   mistakes={
                       "no_gamma": lambda x=logits, t=targets: losses.focal_loss(x, t, gamma=0.0),
                       "no_alpha": lambda x=logits, t=targets: losses.focal_loss(x, t, alpha=-1),
                       "alpha_swapped": lambda x=logits, t=targets: losses.focal_loss(
                           x, t, alpha=0.75),
                       "sum_pixels": lambda x=logits, t=targets: losses.focal_loss(x, t) * (
                           x.shape[-1] * x.shape[-2]),
                       "gamma_on_p": lambda x=logits, t=targets: _focal_on_p(x, t),
                       "mean_all": lambda x=logits, t=targets: losses.focal_loss(x, t).mean(),
                   })
    return len(cases)


def _focal_on_p(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The focal loss with (1 - p) ** gamma, p the object's probability, for every pixel."""
    t = targets.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    return (alpha_t * (1 - torch.sigmoid(logits)) ** 2 * ce).flatten(-2).mean(-1)


# -------------------------------------------------------------------------------- sam loss


@exercise(
    "sam_loss", lab="04_interactive_training", points=3,
    what="sam_loss(logits, iou_pred, targets)",
    reference=("samteach.training.losses.sam_loss",),  # focal and dice are the lab's tools
    mistakes={
        "mean_over_masks": "the mask loss is averaged over the M outputs: SAM trains only the "
        "best one -- per prompt, the minimum over outputs of 20 * focal + dice -- so the three "
        "outputs can specialise (whole, part, subpart) instead of blurring together",
        "weights_swapped": "the weights are swapped: SAM's mask loss is 20 * focal + 1 * dice",
        "iou_only_best": "the IoU head is trained on the best output only: its MSE runs over "
        "all M outputs, so it learns to rank them (it is what picks the mask at inference)",
        "iou_target_not_detached": "your IoU target carries gradient: it is a soft IoU of "
        "probabilities and is not detached, so the IoU head's error also pushes the masks "
        "towards whatever IoU the head guessed. SAM's target is the IoU of the thresholded "
        "mask (logits > 0; losses.mask_iou), a plain number with no gradient",
        "iou_target_soft": "the IoU target is a soft IoU of sigmoid probabilities: SAM regresses "
        "the IoU of the thresholded mask, logits > 0 against targets > 0.5 (losses.mask_iou)",
        "no_focal_weight": "the focal term lost its weight: SAM's mask loss is 20 * focal + "
        "dice (the focal loss is small per pixel; the 20:1 ratio is the paper's)",
        "iou_l1": "the IoU head's loss is an L1 loss: SAM uses the mean-square error between "
        "the predicted and the actual IoU, F.mse_loss",
    },
)
def check_sam_loss(ctx: Context) -> int:
    g = seeded_generator(5)
    cases = []
    logits = 2 * torch.randn(4, 3, 8, 8, generator=g)
    targets = torch.rand(4, 8, 8, generator=g) > 0.5
    logits[:, 1] += 3 * (targets.float() - 0.5)  # output 1 is the best for most prompts
    logits[2] = logits[2, [2, 0, 1]]  # prompt 2: output 2 is its best
    cases.append(("4 prompts x 3 masks of 8x8, bool targets", logits, torch.rand(
        4, 3, generator=g), targets))
    soft = F.avg_pool2d(torch.rand(3, 1, 12, 16, generator=g).gt(0.5).float(), 2)[:, 0]
    cases.append(("3 prompts x 3 masks of 6x8, soft low-res targets",
                  2 * torch.randn(3, 3, 6, 8, generator=g) + 2 * soft[:, None] - 1,
                  torch.rand(3, 3, generator=g), soft))
    cases.append(("2 prompts, single-mask output (M = 1)", 2 * torch.randn(2, 1, 5, 7, generator=g),
                  torch.rand(2, 1, generator=g), torch.rand(2, 5, 7, generator=g) > 0.3))
    for case, logits, iou_pred, targets in cases:
        x, s = logits.clone().requires_grad_(True), iou_pred.clone().requires_grad_(True)
        got = ctx.call(x, s, targets.clone(), case=case)
        if not isinstance(got, torch.Tensor) or got.dim() != 0:
            ctx.fail("return the loss as a scalar tensor (0-dim), ready for .backward()", case)
        expected = losses.sam_loss(logits, iou_pred, targets)["loss"]
        if not torch.allclose(got.detach(), expected, atol=1e-5, rtol=1e-4):
            soft_value = _soft_iou_variant(logits, iou_pred, targets, detach=True)
            if torch.allclose(got.detach(), soft_value, atol=1e-5, rtol=1e-4):
                leak = _grads(_soft_iou_variant(x, s, targets, detach=False), x, s)[0]
                if got.requires_grad and torch.allclose(_grads(got, x, s)[0], leak, atol=1e-6):
                    ctx.fail("iou_target_not_detached", case)
                ctx.fail("iou_target_soft", case)
        ctx.expect(got, expected, case, name="the loss", mistakes={
            "mean_over_masks": lambda x=logits, s=iou_pred, t=targets: _variant(
                x, s, t, reduce="mean"),
            "weights_swapped": lambda x=logits, s=iou_pred, t=targets: losses.sam_loss(
                x, s, t, focal_weight=1.0, dice_weight=20.0)["loss"],
            "iou_only_best": lambda x=logits, s=iou_pred, t=targets: _variant(
                x, s, t, iou_on="best"),
            "no_focal_weight": lambda x=logits, s=iou_pred, t=targets: losses.sam_loss(
                x, s, t, focal_weight=1.0)["loss"],
            "iou_l1": lambda x=logits, s=iou_pred, t=targets: _variant(x, s, t, iou_loss="l1"),
        })
        if not got.requires_grad:
            ctx.fail("the loss carries no gradient: build it from the logits and iou_pred "
                     "with torch operations (no .item(), no numpy)", case)
        want = _grads(losses.sam_loss(x, s, targets)["loss"], x, s)
        have = _grads(got, x, s)
        if not all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(have, want,
                                                                                 strict=True)):
            ctx.fail("the loss has the right value but the wrong gradient: only the best mask "
                     "of each prompt may get gradient from the mask loss (gather it with the "
                     "index of the minimum), and the IoU target must be a constant", case)
    return len(cases)


def _per_mask(logits, targets):
    targets = targets[:, None].expand_as(logits)
    return 20 * losses.focal_loss(logits, targets) + losses.dice_loss(logits, targets)  # (P, M)


def _variant(logits, iou_pred, targets, reduce: str = "min", iou_on: str = "all",
             iou_loss: str = "mse"):
    """SAM's loss with one piece done another way (for naming a mistake)."""
    per_mask = _per_mask(logits, targets)
    best = per_mask.argmin(dim=1)
    rows = torch.arange(len(best))
    mask_term = per_mask.mean() if reduce == "mean" else per_mask[rows, best].mean()
    actual = losses.mask_iou(logits, targets[:, None].expand_as(logits))
    if iou_on == "best":
        return mask_term + F.mse_loss(iou_pred[rows, best], actual[rows, best])
    regress = F.l1_loss if iou_loss == "l1" else F.mse_loss
    return mask_term + regress(iou_pred, actual)


def _soft_iou_variant(logits, iou_pred, targets, detach: bool):
    per_mask = _per_mask(logits, targets)
    mask_term = per_mask.gather(1, per_mask.detach().argmin(1)[:, None]).mean()
    p, t = torch.sigmoid(logits), targets[:, None].float()
    soft = (p * t).sum((-2, -1)) / (p + t - p * t).sum((-2, -1)).clamp(min=1e-6)
    return mask_term + F.mse_loss(iou_pred, soft.detach() if detach else soft)


def _grads(loss: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
    return tuple(torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs,
                                                                          strict=True))
