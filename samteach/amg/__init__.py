"""SAM's data engine in small: automatic mask generation and the three annotation stages.

* :mod:`~samteach.amg.generator` -- ``SamAutomaticMaskGenerator``: masks for everything in an
  image from a grid of point prompts (Meta's parameters, defaults and record format);
* :mod:`~samteach.amg.filters` -- stability score, box IoU and non-maximum suppression (torch);
* :mod:`~samteach.amg.grids` -- point grids, crop boxes, and mapping crops back to the image;
* :mod:`~samteach.amg.rle` -- run-length encoding, SA-1B's mask format.
"""

from .filters import box_area, box_iou, nms, stability_score
from .generator import AMG_PRESETS, AMGConfig, SamAutomaticMaskGenerator
from .grids import build_all_layer_point_grids, build_point_grid, generate_crop_boxes
from .rle import area_from_rle, coco_encode_rle, mask_to_rle, rle_to_mask

__all__ = [
    "AMGConfig",
    "AMG_PRESETS",
    "SamAutomaticMaskGenerator",
    "area_from_rle",
    "box_area",
    "box_iou",
    "build_all_layer_point_grids",
    "build_point_grid",
    "coco_encode_rle",
    "generate_crop_boxes",
    "mask_to_rle",
    "nms",
    "rle_to_mask",
    "stability_score",
]
