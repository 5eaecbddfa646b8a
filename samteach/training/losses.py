"""SAM's training loss (SAM paper App. A, "Losses"): focal + dice on masks, MSE on the IoU head.

    loss = 20 * focal + 1 * dice        (per mask; 20:1 as in the paper, following DETR/MaskFormer)
         + 1 * (predicted IoU - actual IoU)^2

With multimask output (one ambiguous click), only the mask with the lowest mask loss is trained:
the three outputs are free to specialise (whole / part / subpart) instead of all averaging to a
blur. The IoU head is trained on every output, so it learns to rank them.

Shapes: P prompts, M masks per prompt, H/W mask height and width.
"""

import torch
import torch.nn.functional as F

from ..text.grounding import grounding_map
from ..utils.masks import mask_iou as masks_iou

__all__ = ["dice_loss", "focal_loss", "grounding_loss", "mask_iou", "sam_loss"]


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al., 2017), averaged over pixels: (..., H, W) -> (...).

    Cross-entropy scaled by (1 - p_t)^gamma: pixels the model already gets right (p_t near 1)
    count little, so the many easy background pixels do not drown the boundary.
    """
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)  # the probability given to the right answer
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice coefficient per mask: (..., H, W) -> (...).

    Dice compares the mask as a whole (overlap over total size), so a small object counts as
    much as a big one, which a per-pixel loss alone would not do.
    """
    p = torch.sigmoid(logits).flatten(-2)
    t = targets.to(p.dtype).flatten(-2)
    return 1 - (2 * (p * t).sum(-1) + smooth) / (p.sum(-1) + t.sum(-1) + smooth)


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of the binarised prediction (logits > 0) with the target: (..., H, W) -> (...).

    The IoU head's regression target. Soft targets (a pixel's share of object, e.g. after
    downsampling) count where > 0.5. (The IoU itself: :func:`samteach.utils.masks.mask_iou`.)
    """
    gt = targets if targets.dtype == torch.bool else targets > 0.5
    return masks_iou(logits > 0, gt)


def sam_loss(
    logits: torch.Tensor, iou_pred: torch.Tensor, targets: torch.Tensor,
    focal_weight: float = 20.0, dice_weight: float = 1.0, iou_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """SAM's loss for P prompts with M masks each (M = 3 multimask, or 1).

    Args:
        logits: (P, M, H, W) mask logits, at the targets' resolution.
        iou_pred: (P, M) the IoU head's predictions.
        targets: (P, H, W) ground truth: bool, or soft (the share of each pixel covered).

    Returns:
        "loss" (scalar, to backpropagate), and detached "mask", "iou", "best" (P,) index of
        the trained mask, "actual_iou" (P, M).
    """
    targets = targets[:, None].expand_as(logits)  # (P, M, H, W)
    per_mask = focal_weight * focal_loss(logits, targets) + dice_weight * dice_loss(
        logits, targets)  # (P, M)
    best = per_mask.detach().argmin(dim=1)  # (P,): only the best of the M masks learns
    mask_term = per_mask.gather(1, best[:, None]).mean()
    actual = mask_iou(logits.detach(), targets)  # (P, M), no gradient: a regression target
    iou_term = F.mse_loss(iou_pred, actual)  # every output learns to predict its quality
    return {
        "loss": mask_term + iou_weight * iou_term,
        "mask": mask_term.detach(),
        "iou": iou_term.detach(),
        "best": best,
        "actual_iou": actual,
    }


def grounding_loss(tokens: torch.Tensor, embeddings: torch.Tensor, targets: torch.Tensor,
                   temperature: float = 0.1) -> torch.Tensor:
    """Where in its image does a text token point? Cross-entropy of that guess vs the object.

    Not in the paper (samteach's own, for a tiny encoder trained from scratch): each text token
    is compared with every location of its image's embedding (cosine similarity / temperature),
    a softmax over the h*w locations turns that into "where the token points", and the loss is
    its cross-entropy against the object's share of each location. It asks the encoder's
    features and the text projection to agree on what the object looks like -- the match the
    decoder's token-to-image attention must find, given directly to the encoder.

    Args:
        tokens: (n, C) text tokens (the prompt encoder's, before the decoder).
        embeddings: (n, C, h, w) the image embedding each token is prompted on.
        targets: (n, h, w) soft masks at the embedding's size (each object non-empty).
    """
    similarity = grounding_map(tokens, embeddings).flatten(1) / temperature  # (n, h*w)
    where = targets.flatten(1).to(similarity.dtype)
    where = where / where.sum(1, keepdim=True).clamp_min(1e-6)  # (n, h*w), sums to 1
    return -(where * similarity.log_softmax(dim=1)).sum(1).mean()
