"""(crop, captions) pairs from the synthetic scenes: what the tiny CLIP learns from, and what
its retrieval is scored on.

Each instance of a scene gives one pair: the paper's object crop (:func:`object_crop`, App. D.5)
and every caption true of it (:func:`instance_captions`). Objects smaller than the paper's
minimum are left out, as SAM's text training left them out.

Shapes: n pairs, S the crop's side.
"""

from dataclasses import dataclass

import torch

from ..data.record import SegmentationRecord
from .captions import instance_captions
from .crops import object_crop

__all__ = ["MIN_OBJECT_SHARE", "CropPairs", "scene_pairs", "large_enough"]

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
