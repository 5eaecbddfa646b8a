"""The prompt samplers of SAM's interactive training (SAM paper App. A, "Training algorithm").

SAM learns to answer prompts the way an annotator gives them. Per mask, training draws

1. a first prompt: a foreground point or a noisy box, with equal probability
   (:func:`sample_first_prompts`, built from :func:`sample_points` and :func:`sample_boxes`);
2. then, round after round, one corrective click uniform over the error region of the last
   prediction: a missed pixel gives a foreground click, spill a background one
   (:func:`sample_error_clicks`, appended with :func:`append_clicks`).

Shapes: B masks (the batch), H/W mask height and width, P = H * W pixels, N point tokens per
prompt. Masks are bool (B, H, W) tensors (numpy bool arrays are accepted and converted).

Conventions, as the prompt encoder reads them:

* points are pixel (x, y) coordinates as float: x the column index, y the row index;
* labels are int64: 1 foreground, 0 background, -1 padding ("not a point"), 2 box top-left
  corner, 3 box bottom-right corner (the ONNX export's convention);
* boxes are x0, y0, x1, y1 with x1, y1 the last column and row inside the mask (inclusive, as
  Meta's ``batched_mask_to_box``).

Sample in the frame the prompt encoder sees (masks resized and padded like the image).

Randomness comes only from ``generator``, a ``torch.Generator`` that must live on the masks'
device (``torch.Generator(device=masks.device).manual_seed(0)``); ``None`` uses torch's default
generator of that device. Every operation runs on the masks' device, batched over B.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..utils.arguments import (
    shape_text,
    validate_choice,
    validate_mask_batch,
    validate_number,
)
from ..utils.masks import distance_transform, mask_to_box

__all__ = [
    "FIRST_POINT_MODES",
    "POINT_MODES",
    "FirstPrompts",
    "append_clicks",
    "distance_transform",
    "jitter_boxes",
    "mask_to_box",
    "sample_boxes",
    "sample_error_clicks",
    "sample_first_prompts",
    "sample_points",
]

POINT_MODES = ("uniform", "center")
# The first click of a training prompt: either rule, or "both" -- each prompt tosses a coin.
# Training on both teaches the model the annotator's click (anywhere on the object) and the
# evaluation's (the object's centre, SAM §7.1).
FIRST_POINT_MODES = (*POINT_MODES, "both")
# Work on at most this many pixels at once (4 masks of 1024x1024): the samplers' cumulative
# sums then need a few hundred MB at most, whatever B is.
_CHUNK_PIXELS = 1 << 22
# "center" weights are distances in fixed point (1/65536 px): integer cumulative sums are exact,
# so a pixel of weight 0 can never be drawn, on any device (float cumsums may round).
_DISTANCE_SCALE = 1 << 16


# ------------------------------------------------------------------------------------- points


def sample_points(
    masks: torch.Tensor | np.ndarray,
    generator: torch.Generator | None = None,
    mode: str = "uniform",
) -> torch.Tensor:
    """One foreground point per mask: (B, H, W) bool -> (B, 2) float pixel (x, y).

    Args:
        masks: (B, H, W) bool, every mask with at least one pixel.
        generator: the source of randomness, on the masks' device (None: torch's default).
        mode: "uniform" -- every pixel of the mask equally likely (SAM App. A: points are
            sampled uniformly from the ground-truth mask); "center" -- each pixel weighted by
            its distance to the mask's boundary (:func:`distance_transform`), so clicks land
            near the middle as a person's would, and seldom on thin slivers.

    Returns:
        (B, 2) float32 pixel coordinates (x, y) of a pixel inside each mask.
    """
    masks = validate_mask_batch(masks, "masks")
    validate_choice(mode, "mode", POINT_MODES)
    _check_generator(generator, masks.device)
    return _sample_points(masks, generator, mode)


def _sample_points(masks: torch.Tensor, generator: torch.Generator | None, mode: str):
    if mode == "center":
        def weight_of(chunk: torch.Tensor) -> torch.Tensor:
            return (distance_transform(chunk) * _DISTANCE_SCALE).round_().long()
    else:
        def weight_of(chunk: torch.Tensor) -> torch.Tensor:
            return chunk.long()
    index, _ = _draw_pixels(masks, weight_of, generator)
    return _to_xy(index, masks.shape[-1])


def _draw_pixels(
    masks: torch.Tensor,
    weight_of: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pixel per mask with probability proportional to its integer weight.

    Inverse-transform sampling: draw u uniform in [0, total weight) and take the first pixel
    whose cumulative weight exceeds u, so pixel i is hit for exactly w_i of the total values.

    Args:
        masks: (B, H, W), cut into chunks and handed to ``weight_of``.
        weight_of: (b, H, W) chunk -> (b, H, W) int64 weights >= 0.
        generator: the source of randomness.

    Returns:
        (B,) int64 flat pixel index y * W + x (0 where every weight is 0), and (B,) bool: had
        the mask any weight at all?
    """
    B, H, W = masks.shape
    # One draw per mask, before chunking, so the result does not depend on the chunk size.
    # Taken modulo the total its bias is total / 2^62: below 1e-3 even for "center" weights of a
    # 4096 x 4096 mask, and invisible beside sampling noise.
    draws = torch.randint(0, 1 << 62, (B, 1), generator=generator, device=masks.device)
    index = torch.zeros(B, dtype=torch.long, device=masks.device)
    found = torch.zeros(B, dtype=torch.bool, device=masks.device)
    for start, chunk in _chunks(masks):
        stop = start + len(chunk)
        cdf = weight_of(chunk).reshape(len(chunk), H * W).cumsum(dim=1)  # (b, P)
        total = cdf[:, -1:]  # (b, 1)
        u = draws[start:stop] % total.clamp(min=1)  # (b, 1) uniform in 0 .. total - 1
        index[start:stop] = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=H * W - 1)
        found[start:stop] = total.squeeze(1) > 0
    return torch.where(found, index, 0), found


def _to_xy(index: torch.Tensor, width: int) -> torch.Tensor:
    """(B,) flat pixel index y * W + x -> (B, 2) float32 (x, y)."""
    return torch.stack([index % width, index // width], dim=1).to(torch.float32)


# -------------------------------------------------------------------------------------- boxes


def sample_boxes(
    masks: torch.Tensor | np.ndarray,
    generator: torch.Generator | None = None,
    noise_std: float = 0.1,
    max_noise: float = 20.0,
) -> torch.Tensor:
    """A noisy box around each mask, as an annotator would drag it: (B, H, W) -> (B, 4).

    SAM App. A: the ground-truth box, each coordinate shifted by random noise whose standard
    deviation is 10% of the box side, by at most 20 pixels.

    Args:
        masks: (B, H, W) bool, every mask with at least one pixel.
        generator: the source of randomness, on the masks' device (None: torch's default).
        noise_std: the noise's standard deviation as a share of the box side: the width
            (x1 - x0) for x0 and x1, the height (y1 - y0) for y0 and y1.
        max_noise: each coordinate moves at most this many pixels.

    Returns:
        (B, 4) float32 boxes x0, y0, x1, y1 inside the image, x0 <= x1 and y0 <= y1.
    """
    masks = validate_mask_batch(masks, "masks")
    _check_noise(noise_std, max_noise)
    _check_generator(generator, masks.device)
    return _sample_boxes(masks, generator, noise_std, max_noise)


def _sample_boxes(
    masks: torch.Tensor, generator: torch.Generator | None, noise_std: float, max_noise: float
) -> torch.Tensor:
    B, H, W = masks.shape
    noise = torch.randn(B, 4, generator=generator, device=masks.device)  # (B, 4) N(0, 1)
    return _jitter_boxes(mask_to_box(masks).float(), noise, (H, W), noise_std, max_noise)


def jitter_boxes(
    boxes: torch.Tensor,
    noise: torch.Tensor,
    image_size: tuple[int, int],
    noise_std: float = 0.1,
    max_noise: float = 20.0,
) -> torch.Tensor:
    """Shift box coordinates by given standard-normal noise, as :func:`sample_boxes` does.

    The deterministic half of :func:`sample_boxes` (which draws ``noise`` itself): coordinate
    i moves by ``noise_std * side * noise[:, i]`` pixels, at most ``max_noise``, where the side
    is the box's width (x1 - x0) for x0 and x1 and its height (y1 - y0) for y0 and y1; the
    result is clipped to the image and each pair ordered so that x0 <= x1 and y0 <= y1.

    Args:
        boxes: (B, 4) x0, y0, x1, y1 (ints or floats), e.g. from :func:`mask_to_box`.
        noise: (B, 4) float standard-normal draws, one per coordinate.
        image_size: (H, W) of the image the boxes live in.
        noise_std: the noise's standard deviation as a share of the box side.
        max_noise: each coordinate moves at most this many pixels.

    Returns:
        (B, 4) float32 boxes inside the image.
    """
    if not isinstance(boxes, torch.Tensor) or boxes.dtype == torch.bool:
        raise TypeError(f"boxes must be a torch.Tensor of numbers, shape (B, 4); got "
                        f"{getattr(boxes, 'dtype', type(boxes).__name__)}")
    if not isinstance(noise, torch.Tensor) or not noise.dtype.is_floating_point:
        raise TypeError(f"noise must be a float torch.Tensor of shape (B, 4); got "
                        f"{getattr(noise, 'dtype', type(noise).__name__)}")
    if boxes.dim() != 2 or boxes.shape[1] != 4 or noise.shape != boxes.shape:
        raise ValueError(f"boxes and noise must both be (B, 4); got {shape_text(boxes.shape)} and "
                         f"{shape_text(noise.shape)}")
    _check_noise(noise_std, max_noise)
    H, W = (int(v) for v in image_size)
    return _jitter_boxes(boxes.float(), noise.float(), (H, W), noise_std, max_noise)


def _jitter_boxes(
    box: torch.Tensor, noise: torch.Tensor, image_size: tuple[int, int], noise_std: float,
    max_noise: float,
) -> torch.Tensor:
    H, W = image_size
    side = (box[:, 2:] - box[:, :2]).repeat(1, 2)  # (B, 4): width, height, width, height
    shift = noise * (noise_std * side)  # (B, 4) pixels
    noisy = box + shift.clamp(-max_noise, max_noise)  # SAM App. A: at most 20 px
    last = torch.tensor([W - 1, H - 1, W - 1, H - 1], device=box.device, dtype=torch.float32)
    noisy = noisy.clamp(min=0).minimum(last)  # inside the image
    # Noise could push x0 past x1 only if the two shifts differed by more than the side (a > 7
    # sigma event at 10%); sorting each pair keeps such a box valid and leaves all others as
    # drawn. (Clamping to the image never reorders, it is monotone.)
    top_left = torch.minimum(noisy[:, :2], noisy[:, 2:])
    bottom_right = torch.maximum(noisy[:, :2], noisy[:, 2:])
    return torch.cat([top_left, bottom_right], dim=1)  # (B, 4)


# ------------------------------------------------------------------------------ error clicks


def sample_error_clicks(
    pred: torch.Tensor | np.ndarray,
    gt: torch.Tensor | np.ndarray,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per mask, uniform over where the prediction is wrong (SAM App. A).

    The error region is FN | FP: FN = gt & ~pred, pixels the prediction missed, earn a
    foreground click (label 1); FP = ~gt & pred, spill, a background click (label 0). One draw
    over the union picks FN or FP in proportion to their areas.

    Args:
        pred: (B, H, W) bool predicted masks (threshold the logits: ``logits > 0``).
        gt: (B, H, W) bool ground-truth masks.
        generator: the source of randomness, on the masks' device (None: torch's default).

    Returns:
        points (B, 2) float32 pixel (x, y) and labels (B,) int64. Where pred equals gt there is
        nothing to correct: the point is (0, 0) with label -1, a padding token, so the batch
        keeps its shape and the prompt encoder ignores the click.
    """
    gt = validate_mask_batch(gt, "gt", nonempty=False)
    pred = validate_mask_batch(pred, "pred", nonempty=False,
                               hint=" -- threshold logits: logits > 0")
    if pred.shape != gt.shape or pred.device != gt.device:
        raise ValueError(f"pred must have the shape and device of gt, {shape_text(gt.shape)} on "
                         f"{gt.device}; got {shape_text(pred.shape)} on {pred.device}")
    _check_generator(generator, gt.device)
    error = pred ^ gt  # (B, H, W): FN | FP
    index, has_error = _draw_pixels(error, lambda chunk: chunk.long(), generator)
    # An error pixel inside the ground truth was missed (FN); outside it, it is spill (FP).
    missed = gt.flatten(1).gather(1, index[:, None]).squeeze(1)  # (B,)
    labels = torch.where(has_error, missed.long(), -1)
    points = torch.where(has_error[:, None], _to_xy(index, gt.shape[-1]), 0.0)
    return points, labels


# ----------------------------------------------------------------------------- first prompts


@dataclass(frozen=True, eq=False)
class FirstPrompts:
    """The first prompt of every mask, each spelled out as exactly two point tokens.

    A point prompt is [click (label 1), padding (0, 0) (label -1)], a box prompt is [top-left
    corner (label 2), bottom-right corner (label 3)] -- exactly the tokens SAM sees at inference
    for a lone click (which the prompt encoder pads) and for a box. With the same token count,
    point and box prompts share one decoder batch. Pass ``pad=False`` so the encoder adds no
    second padding token::

        sparse, dense = prompt_encoder(points=(first.points, first.labels), boxes=None,
                                       masks=None, pad=False)  # sparse: (B, 2, C)

    Attributes:
        points: (B, 2, 2) float32 pixel (x, y) of the two tokens.
        labels: (B, 2) int64 token labels.
        is_box: (B,) bool, True where the prompt is a box.
    """

    points: torch.Tensor
    labels: torch.Tensor
    is_box: torch.Tensor

    def __len__(self) -> int:
        return len(self.is_box)


def sample_first_prompts(
    masks: torch.Tensor | np.ndarray,
    generator: torch.Generator | None = None,
    p_box: float = 0.5,
    point_mode: str = "uniform",
    noise_std: float = 0.1,
    max_noise: float = 20.0,
) -> FirstPrompts:
    """SAM's first prompt per mask: a noisy box with probability ``p_box``, else one click.

    SAM App. A: the first prompt is a foreground point or the mask's (noisy) bounding box,
    chosen with equal probability. A click and a box are drawn for every mask (in that order,
    after the coin flips) and one of them kept: simpler than drawing each for its share alone.

    Args:
        masks: (B, H, W) bool ground-truth masks, every one with at least one pixel.
        generator: the source of randomness, on the masks' device (None: torch's default).
        p_box: the probability of a box prompt, in [0, 1].
        point_mode: "uniform" or "center", as in :func:`sample_points`, or "both": each
            prompt's rule is a coin toss (drawn after the box coin).
        noise_std: the box noise's std as a share of the box side (:func:`sample_boxes`).
        max_noise: the largest box shift in pixels.

    Returns:
        FirstPrompts: points (B, 2, 2), labels (B, 2), is_box (B,).
    """
    masks = validate_mask_batch(masks, "masks")
    validate_number(p_box, "p_box", 0.0, 1.0, expected="a probability in [0, 1]")
    validate_choice(point_mode, "point_mode", FIRST_POINT_MODES)
    _check_noise(noise_std, max_noise)
    _check_generator(generator, masks.device)
    B, device = len(masks), masks.device
    is_box = torch.rand(B, generator=generator, device=device) < p_box  # (B,)
    if point_mode == "both":
        centred = torch.rand(B, generator=generator, device=device) < 0.5  # (B,)
        uniform = _sample_points(masks, generator, "uniform")
        clicks = torch.where(centred[:, None], _sample_points(masks, generator, "center"),
                             uniform)  # (B, 2)
    else:
        clicks = _sample_points(masks, generator, point_mode)  # (B, 2)
    boxes = _sample_boxes(masks, generator, noise_std, max_noise)  # (B, 4)
    click_tokens = torch.stack([clicks, torch.zeros_like(clicks)], dim=1)  # (B, 2, 2): click, pad
    box_tokens = boxes.reshape(B, 2, 2)  # (B, 2, 2): top-left, bottom-right corner
    click_labels = torch.tensor([1, -1], device=device)
    box_labels = torch.tensor([2, 3], device=device)
    points = torch.where(is_box[:, None, None], box_tokens, click_tokens)  # (B, 2, 2)
    labels = torch.where(is_box[:, None], box_labels, click_labels)  # (B, 2)
    return FirstPrompts(points=points, labels=labels, is_box=is_box)


def append_clicks(
    points: torch.Tensor,
    labels: torch.Tensor,
    new_points: torch.Tensor,
    new_labels: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add this round's corrective clicks to every prompt: (B, N, 2), (B, N) -> (B, N + M, ...).

    The decoder treats its tokens as a set (no token order is encoded), so a click after the
    padding token of a point prompt means the same as SAM's inference layout [clicks..., pad].

    Args:
        points: (B, N, 2) pixel (x, y) of the tokens so far, e.g. ``FirstPrompts.points``.
        labels: (B, N) their labels.
        new_points: (B, 2) one click per prompt, or (B, M, 2).
        new_labels: (B,) or (B, M) their labels (as from :func:`sample_error_clicks`).

    Returns:
        points (B, N + M, 2) and labels (B, N + M), in the dtypes of ``points`` and ``labels``.
    """
    for name, value in (("points", points), ("labels", labels), ("new_points", new_points),
                        ("new_labels", new_labels)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
    if new_points.dim() == 2:  # one click per prompt
        new_points = new_points[:, None]
    if new_labels.dim() == 1:
        new_labels = new_labels[:, None]
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must be (B, N, 2) pixel (x, y) coordinates; got "
                         f"{shape_text(points.shape)}")
    if labels.shape != points.shape[:2]:
        raise ValueError(f"labels must be (B, N) = {shape_text(points.shape[:2])} to match points; "
                         f"got {shape_text(labels.shape)}")
    if new_points.dim() != 3 or new_points.shape[0] != points.shape[0] \
            or new_points.shape[-1] != 2:
        raise ValueError(f"new_points must be (B, 2) or (B, M, 2) with B = {points.shape[0]}; "
                         f"got {shape_text(new_points.shape)}")
    if new_labels.shape != new_points.shape[:2]:
        raise ValueError(f"new_labels must have one label per new point, "
                         f"{shape_text(new_points.shape[:2])}; got {shape_text(new_labels.shape)}")
    return (torch.cat([points, new_points.to(points.dtype)], dim=1),
            torch.cat([labels, new_labels.to(labels.dtype)], dim=1))


# ---------------------------------------------------------------------------------- checking


def _check_noise(noise_std: object, max_noise: object) -> None:
    validate_number(noise_std, "noise_std", 0.0,
                    expected="the noise's std as a share of the box side, >= 0")
    validate_number(max_noise, "max_noise", 0.0, expected="the largest shift in pixels, >= 0",
                    finite=False)  # inf: no cap


def _check_generator(generator: object, device: torch.device) -> None:
    """None, or a torch.Generator on ``device`` (torch draws on the generator's device)."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got "
                        f"{type(generator).__name__}")
    if generator.device.type != device.type or \
            (generator.device.index or 0) != (device.index or 0):
        raise ValueError(f"generator must live on the masks' device {device}; got one on "
                         f"{generator.device} -- use torch.Generator(device=masks.device)")


def _chunks(masks: torch.Tensor):
    """Yield (start, masks[start:start + b]) with b masks of at most _CHUNK_PIXELS pixels."""
    step = max(1, _CHUNK_PIXELS // (masks.shape[1] * masks.shape[2]))
    for start in range(0, len(masks), step):
        yield start, masks[start:start + step]


