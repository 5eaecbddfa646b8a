"""Meta's ``segment_anything.utils.amg`` names, where a tutorial written for Meta's package
looks for them (``from samteach.utils.amg import batched_mask_to_box``).

Nothing is implemented twice: each name is samteach's own function, from
:mod:`samteach.amg` or :mod:`samteach.utils.masks`, with Meta's arguments and results. Meta's
``MaskData`` (a dict of tensors its generator carries between stages) has no counterpart:
samteach's generator keeps its candidates in a small dataclass of its own.
"""

from ..amg.filters import stability_score as calculate_stability_score
from ..amg.generator import batch_iterator
from ..amg.grids import (
    build_all_layer_point_grids,
    build_point_grid,
    generate_crop_boxes,
    is_box_near_crop_edge,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from ..amg.rle import area_from_rle, coco_encode_rle, remove_small_regions, rle_to_mask
from ..amg.rle import mask_to_rle as mask_to_rle_pytorch
from .masks import box_xyxy_to_xywh
from .masks import mask_to_box as batched_mask_to_box

__all__ = [
    "area_from_rle",
    "batch_iterator",
    "batched_mask_to_box",
    "box_xyxy_to_xywh",
    "build_all_layer_point_grids",
    "build_point_grid",
    "calculate_stability_score",
    "coco_encode_rle",
    "generate_crop_boxes",
    "is_box_near_crop_edge",
    "mask_to_rle_pytorch",
    "remove_small_regions",
    "rle_to_mask",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]
