"""(crop, captions) pairs from the synthetic scenes: what the tiny CLIP learns from, and what
its retrieval is scored on.

Each instance of a scene gives one pair: the paper's object crop (:func:`object_crop`, App. D.5)
and every caption true of it (:func:`instance_captions`). Objects smaller than the paper's
minimum are left out, as SAM's text training left them out. A CLIP that will choose among SAM's
proposals can also learn from decoys (:func:`decoy_masks`), crops no caption is right for.

Shapes: n pairs, S the crop's side.
"""

import math
from dataclasses import dataclass

import torch

from ..data.record import SegmentationRecord
from ..utils.masks import mask_to_box
from .captions import instance_captions
from .crops import object_crop

__all__ = ["MIN_OBJECT_SHARE", "CropPairs", "decoy_masks", "large_enough", "scene_decoys",
           "scene_pairs"]

# App. D.5 drops masks under 100 x 100 px at SAM's 1024 px input: that share of the input
# square, whatever the model's size (156 px on the tiny model's 128 x 128).
MIN_OBJECT_SHARE = (100 / 1024) ** 2


@dataclass
class CropPairs:
    """n crops (n, 3, S, S) float 0..255 and, per crop, every caption true of its object."""

    crops: torch.Tensor
    captions: list[tuple[str, ...]]
    instances: list[int]  # which instance of the record each crop shows

    def __len__(self) -> int:
        return len(self.captions)


def large_enough(masks: torch.Tensor, side: int) -> torch.Tensor:
    """(n, H, W) bool masks -> (n,) bool: the objects the text training keeps, for an input
    square of ``side`` pixels."""
    return masks.flatten(1).sum(1) >= MIN_OBJECT_SHARE * side * side


def scene_pairs(record: SegmentationRecord, crop_size: int,
                generator: torch.Generator | None = None, grow: tuple[float, float] = (1.0, 2.0),
                zero_outside: float = 0.5) -> CropPairs:
    """Every large enough instance of ``record`` as a (crop, captions) pair."""
    image = torch.from_numpy(record.image).permute(2, 0, 1)  # (3, H, W)
    masks = torch.from_numpy(record.masks)
    keep = large_enough(masks, max(image.shape[1:])).nonzero()[:, 0].tolist()
    captions = instance_captions(record)
    crops = [object_crop(image, masks[i], crop_size, generator, grow, zero_outside) for i in keep]
    stacked = torch.stack(crops) if crops else torch.zeros(0, 3, crop_size, crop_size)
    return CropPairs(stacked, [captions[i] for i in keep], keep)


def decoy_masks(record: SegmentationRecord, share: float,
                generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """(H, W) bool masks that are *not* objects: what a CLIP that chooses among SAM's proposals
    (:mod:`~samteach.text.choose`) must learn to turn down.

    Each large enough instance, with probability ``share``, gives either a part of itself (the
    side of a random line through its centre of mass) or, half of the time when another
    instance's box meets its own, itself joined with that one -- SAM's proposals that lie
    inside the named object or contain it.
    """
    masks = torch.from_numpy(record.masks)  # (n, H, W)
    if not share:
        return []  # and no draws: a run without decoys is the run it always was
    boxes = mask_to_box(masks)  # (n, 4)
    H, W = masks.shape[1:]
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    decoys = []
    for i in large_enough(masks, max(H, W)).nonzero()[:, 0].tolist():
        draws = torch.rand(3, generator=generator).tolist()
        if draws[0] >= share:
            continue
        x0, y0, x1, y1 = boxes[i].tolist()
        # neighbours that add pixels and are not a whole around it (a flask is no decoy of
        # its liquid, nor the flask joined with its liquid one of the flask)
        meets = [j for j in range(len(masks)) if j != i and (masks[j] & ~masks[i]).any()
                 and (masks[i] & ~masks[j]).any()
                 and boxes[j][0] <= x1 and boxes[j][2] >= x0
                 and boxes[j][1] <= y1 and boxes[j][3] >= y0]
        if meets and draws[1] < 0.5:
            decoy = masks[i] | masks[meets[int(draws[2] * len(meets))]]
        else:
            angle = draws[2] * 2 * math.pi
            cy, cx = ys[masks[i]].float().mean(), xs[masks[i]].float().mean()
            decoy = masks[i] & ((xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle) > 0)
        if decoy.any() and not (masks == decoy).flatten(1).all(1).any():  # no object's own mask
            decoys.append(decoy)
    return decoys


def scene_decoys(record: SegmentationRecord, crop_size: int, share: float,
                 generator: torch.Generator | None = None,
                 grow: tuple[float, float] = (1.0, 2.0), zero_outside: float = 0.5
                 ) -> torch.Tensor:
    """The :func:`decoy_masks` of ``record`` cropped as :func:`scene_pairs` crops its objects:
    (m, 3, S, S)."""
    image = torch.from_numpy(record.image).permute(2, 0, 1)  # (3, H, W)
    crops = [object_crop(image, decoy, crop_size, generator, grow, zero_outside)
             for decoy in decoy_masks(record, share, generator)]
    return torch.stack(crops) if crops else torch.zeros(0, 3, crop_size, crop_size)
