"""Masks as SAM's code handles them: their IoU, their box, how deep each pixel lies inside.

One implementation of each, shared by training (losses, samplers), evaluation (metrics, the
RITM clicker), the data engine and the dataset readers.

Two box conventions are in use, and both are named here once:

* **XYXY** (Meta's ``batched_mask_to_box``, SAM's box prompts and samplers): x0, y0 the first
  column and row the mask covers, x1, y1 the **last** (inclusive). So ``x1 - x0`` is one less
  than the number of columns: a one-pixel mask has a box of "width" 0.
* **XYWH**: x0, y0 and a width and height. Meta's automatic mask generator reports
  ``[x0, y0, x1 - x0, y1 - y0]`` (:func:`box_xyxy_to_xywh`, ``"meta"``); COCO and SA-1B's
  annotation files (pycocotools' ``toBbox``) report pixel counts, ``x1 - x0 + 1`` (``"coco"``).

Shapes: B masks, H/W height and width; ``...`` any leading dimensions.
"""

import numpy as np
import torch

from .arguments import describe, validate_mask_batch

__all__ = ["BOX_CONVENTIONS", "box_xyxy_to_xywh", "distance_transform", "mask_iou",
           "mask_iou_matrix", "mask_to_box"]

BOX_CONVENTIONS = ("meta", "coco")
# Work on at most this many pixels at once (4 masks of 1024x1024): the distance transform then
# needs a few hundred MB at most, whatever B is.
_CHUNK_PIXELS = 1 << 22


# ------------------------------------------------------------------------------------ IoU


def _iou(intersection, area_a, area_b):
    """The IoU of two masks from their pixel counts. Two empty masks agree perfectly: IoU 1
    (RITM would divide 0 by 0; ground truths are never empty there)."""
    union = area_a + area_b - intersection
    if isinstance(union, torch.Tensor):
        return torch.where(union > 0, intersection / union.clamp(min=1),
                           torch.ones_like(intersection, dtype=torch.float32))
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0)


def mask_iou(a, b):
    """Intersection over union of bool masks: (..., H, W) and (..., H, W) -> (...).

    numpy arrays or torch tensors (both of one kind); the leading dimensions broadcast, so
    ``mask_iou(masks, gt)`` compares N masks (N, H, W) with one (H, W) ground truth.
    """
    if isinstance(a, torch.Tensor):
        count = (a & b).flatten(-2).sum(-1)
        return _iou(count, a.flatten(-2).sum(-1), b.flatten(-2).sum(-1))
    count = np.count_nonzero(a & b, axis=(-2, -1))
    return _iou(count, np.count_nonzero(a, axis=(-2, -1)), np.count_nonzero(b, axis=(-2, -1)))


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The IoU of every pair: (G, H, W) and (N, H, W) bool -> (G, N).

    The same IoU as :func:`mask_iou`, its intersections counted for all pairs at once as one
    matrix product of the flattened masks, instead of G x N masks of H x W pixels.
    """
    fa = a.reshape(len(a), -1).astype(np.float32)  # (G, H*W)
    fb = b.reshape(len(b), -1).astype(np.float32)  # (N, H*W)
    intersection = fa @ fb.T  # (G, N); exact: counts below 2^24 pixels
    return _iou(intersection, fa.sum(1)[:, None], fb.sum(1)[None, :])


# ------------------------------------------------------------------------------------ boxes


def mask_to_box(masks) -> torch.Tensor:
    """The tight XYXY box of every mask: (..., H, W) bool -> (..., 4) int64 x0, y0, x1, y1.

    x1, y1 are the last column and row inside the mask (Meta's ``batched_mask_to_box``);
    an empty mask gets (0, 0, 0, 0). numpy masks are accepted; the result is a tensor.
    """
    if not isinstance(masks, (torch.Tensor, np.ndarray)) or masks.dtype not in (
            torch.bool, np.dtype(bool)) or masks.ndim < 2:
        raise TypeError(f"masks must be bool masks of shape (..., H, W) (numpy or torch); got "
                        f"{describe(masks)}")
    masks = torch.as_tensor(masks)
    H, W = masks.shape[-2:]
    rows = masks.any(dim=-1)  # (..., H): which rows hold part of the mask
    cols = masks.any(dim=-2)  # (..., W)
    y = torch.arange(H, device=masks.device)
    x = torch.arange(W, device=masks.device)
    box = torch.stack([torch.where(cols, x, W).amin(dim=-1),  # x0: the first column used
                       torch.where(rows, y, H).amin(dim=-1),  # y0
                       torch.where(cols, x, -1).amax(dim=-1),  # x1: the last column used
                       torch.where(rows, y, -1).amax(dim=-1)], dim=-1)  # (..., 4)
    return torch.where(cols.any(dim=-1, keepdim=True), box, 0)  # empty masks: (0, 0, 0, 0)


def box_xyxy_to_xywh(box, convention: str = "meta"):
    """(..., 4) XYXY boxes (last pixel inclusive) -> (..., 4) XYWH, in either convention.

    ``"meta"``: width x1 - x0, as Meta's automatic mask generator reports ``bbox``;
    ``"coco"``: width x1 - x0 + 1, the number of pixel columns, as pycocotools and SA-1B's
    files do. A list, numpy array or tensor in; the same kind out.
    """
    if convention not in BOX_CONVENTIONS:
        raise ValueError(f"convention must be one of {BOX_CONVENTIONS}; got {convention!r}")
    extra = 1 if convention == "coco" else 0
    if isinstance(box, list):
        x0, y0, x1, y1 = box
        return [x0, y0, x1 - x0 + extra, y1 - y0 + extra]
    out = box.clone() if isinstance(box, torch.Tensor) else np.array(box, copy=True)
    out[..., 2:] = box[..., 2:] - box[..., :2] + extra
    return out


# --------------------------------------------------------------------- distance transform


def distance_transform(masks) -> torch.Tensor:
    """The exact Euclidean distance transform of every mask: (B, H, W) bool -> (B, H, W) float32.

    Each True pixel gets its distance to the nearest False pixel, where every pixel outside the
    image counts as False (as if the mask were padded by one False pixel); False pixels get 0.
    numpy masks are accepted; the result is a tensor on the masks' device. Equal, in float32,
    to ``scipy.ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]`` (a test checks).
    """
    masks = validate_mask_batch(masks, "masks", nonempty=False)
    out = torch.empty(masks.shape, dtype=torch.float32, device=masks.device)
    step = max(1, _CHUNK_PIXELS // max(1, masks.shape[1] * masks.shape[2]))
    for start in range(0, len(masks), step):
        # The root in float64, rounded once to float32 (exactly float32's correctly rounded root):
        # torch 2.13's float32 sqrt on this CPU sometimes answers a process's first call with a
        # 12-bit estimate (sqrt(1) = 0.99976), which moved lab 04's "center" click between runs.
        out[start:start + step] = _squared_distance(masks[start:start + step]).double().sqrt_()
    return out


def _row_distance(masks: torch.Tensor) -> torch.Tensor:
    """(b, H, W) bool -> (b, H, W) int32 distance to the nearest False pixel in the same row.

    Pass 1 of the separable transform. Columns -1 and W (outside the image) count as False.
    """
    W = masks.shape[-1]
    x = torch.arange(W, device=masks.device, dtype=torch.int32)  # int32: half int64's traffic
    left = torch.where(masks, -1, x).cummax(dim=-1).values  # last False at or left of x, or -1
    right = torch.where(masks, W, x).flip(-1).cummin(dim=-1).values.flip(-1)  # first at/right, or W
    return torch.minimum(x - left, right - x)


def _squared_distance(masks: torch.Tensor) -> torch.Tensor:
    """(b, H, W) bool -> (b, H, W) float32 squared distance to the nearest False pixel.

    Pass 2: the nearest False pixel of (y, x) lies in some row y'; within that row it is
    ``g(y', x)`` columns away (pass 1), so d^2(y, x) = min over y' of g(y', x)^2 + (y - y')^2.
    Rather than trying all H rows y', try row offsets d = 0, 1, 2, ... and stop once d^2 is no
    smaller than every current estimate: from then on no row can improve any pixel. The number
    of offsets is about the largest distance in the chunk, not H. (Squared distances are whole
    numbers, below 2^24 for images up to 4096 px, so float32 holds them exactly.)
    """
    H = masks.shape[1]
    g2 = _row_distance(masks).to(torch.float32).square_()  # (b, H, W)
    y = torch.arange(H, device=masks.device, dtype=torch.float32)
    border = torch.minimum(y + 1, H - y).square_()[:, None]  # (H, 1): rows -1 and H are False
    d2 = torch.minimum(g2, border)  # offset 0, and straight up or down out of the image
    for d in range(1, H):
        # Checking every 8th offset keeps the early stop cheap; a late stop costs time, not
        # exactness.
        if d % 8 == 1 and d * d >= d2.max():
            break
        d2[:, d:].clamp_(max=g2[:, :-d] + d * d)  # nearest False pixel in the row d above
        d2[:, :-d].clamp_(max=g2[:, d:] + d * d)  # ... in the row d below
    return d2
