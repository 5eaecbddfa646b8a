"""How the automatic mask generator chooses: stability, predicted IoU, and non-maximum suppression.

A grid of 1024 points, three masks each, gives ~3000 candidate masks, most of them poor or
duplicates. SAM keeps (paper §4 "Fully automatic stage"):

* **confident** masks: predicted IoU above ``pred_iou_thresh`` (0.88);
* **stable** masks: thresholding the logits at -1 or at +1 gives nearly the same mask -- the
  stability score ``|logits > +1| / |logits > -1|``, kept when >= 0.95. A mask whose border
  moves a lot when the threshold moves is a guess, not an object;
* one mask per object: boxes overlapping another box of a higher score by IoU > 0.7 are
  dropped (non-maximum suppression, NMS).

Written in torch only (no torchvision). Shapes: N masks or boxes, H/W mask height and width.
"""

import torch

__all__ = ["box_area", "box_iou", "nms", "stability_score"]


def stability_score(mask_logits: torch.Tensor, mask_threshold: float = 0.0,
                    offset: float = 1.0) -> torch.Tensor:
    """(..., H, W) logits -> (...) IoU of the mask at threshold + offset with the one at - offset.

    The higher threshold's mask lies inside the lower one's, so their IoU is simply
    |logits > t + offset| / |logits > t - offset|.
    """
    # Row sums fit in int16 for any image up to 32767 px wide; the total needs int32. Counting
    # in small integers keeps a (3000, 1024, 1024) batch of comparisons cheap.
    inner = (mask_logits > mask_threshold + offset).sum(-1, dtype=torch.int16).sum(
        -1, dtype=torch.int32)
    outer = (mask_logits > mask_threshold - offset).sum(-1, dtype=torch.int16).sum(
        -1, dtype=torch.int32)
    return inner / outer


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) x0, y0, x1, y1 -> (N,) (x1 - x0) * (y1 - y0)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4) and (M, 4) boxes -> (N, M) intersection over union."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(dim=-1)  # (N, M)
    return overlap / (box_area(a)[:, None] + box_area(b)[None, :] - overlap)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression -> (K,) indices of the kept boxes, best score first.

    Visit the boxes from the highest score down; keep a box unless it overlaps an already kept
    box with IoU > iou_threshold. (The semantics of ``torchvision.ops.nms``.)
    """
    order = torch.argsort(scores, descending=True, stable=True)  # (N,)
    iou = box_iou(boxes[order], boxes[order])  # (N, N), in visiting order
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    # One pass over the sorted boxes; each kept box suppresses the later ones it overlaps.
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]
