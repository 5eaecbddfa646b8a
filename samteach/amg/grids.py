"""Where the automatic mask generator prompts: point grids, crops, and going back from a crop.

SAM's fully automatic stage (paper §4, App. B) prompts the model with a regular grid of
foreground points -- 32 x 32 over the whole image -- and, to catch small objects, again on
zoomed-in crops: layer 1 cuts the image into 2 x 2 overlapping crops, layer 2 into 4 x 4, each
prompted with a grid thinned by ``crop_n_points_downscale_factor`` per layer.

Shapes: P points, N boxes or masks, H/W image height and width. Boxes are x0, y0, x1, y1.
"""

import math
from itertools import product

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "build_all_layer_point_grids",
    "build_point_grid",
    "generate_crop_boxes",
    "is_box_near_crop_edge",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]


def build_point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) points (x, y) in [0, 1]: the centres of an n x n grid of equal cells.

    Cell centres, not the borders: the first point sits half a cell (1 / 2n) from the edge.
    Row by row from the top, x varying fastest.
    """
    centres = (np.arange(n_per_side) + 0.5) / n_per_side  # (n,)
    x = np.tile(centres[None, :], (n_per_side, 1))  # (n, n): column index varies along rows
    y = np.tile(centres[:, None], (1, n_per_side))
    return np.stack([x, y], axis=-1).reshape(-1, 2)  # (n*n, 2)


def build_all_layer_point_grids(
    n_per_side: int, n_layers: int, scale_per_layer: int
) -> list[np.ndarray]:
    """One grid per crop layer; layer i has int(n / scale**i) points per side."""
    return [build_point_grid(int(n_per_side / scale_per_layer**i)) for i in range(n_layers + 1)]


def generate_crop_boxes(
    im_size: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """The crops of every layer: the whole image, then 2x2, 4x4, ... overlapping crops.

    Args:
        im_size: (H, W) of the image.
        n_layers: how many layers of crops below the whole image.
        overlap_ratio: neighbouring crops of layer 1 overlap by this share of the image's short
            side (halved at each deeper layer).

    Returns:
        boxes [x0, y0, x1, y1] (ints, exclusive ends) and the layer of each.
    """
    h, w = im_size
    boxes, layers = [[0, 0, w, h]], [0]
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * min(h, w) * (2 / per_side))
        # Crops of equal length that together with (per_side - 1) overlaps span the side.
        crop_w = math.ceil((overlap * (per_side - 1) + w) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + h) / per_side)
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(x0s, y0s):  # column of crops by column
            boxes.append([x0, y0, min(x0 + crop_w, w), min(y0 + crop_h, h)])
            layers.append(layer)
    return boxes, layers


def uncrop_boxes_xyxy(boxes: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """(..., 4) boxes in a crop's frame -> the image's frame."""
    x0, y0 = crop_box[:2]
    return boxes + torch.tensor([x0, y0, x0, y0], device=boxes.device)


def uncrop_points(points: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """(P, 2) points in a crop's frame -> the image's frame."""
    x0, y0 = crop_box[:2]
    return points + torch.tensor([x0, y0], device=points.device)


def uncrop_masks(masks: torch.Tensor, crop_box: list[int], orig_h: int, orig_w: int):
    """(N, h, w) masks of a crop -> (N, H, W) on the whole image, zero outside the crop."""
    x0, y0, x1, y1 = crop_box
    if (x0, y0, x1, y1) == (0, 0, orig_w, orig_h):
        return masks
    left, top = x0, y0
    right, bottom = orig_w - x1, orig_h - y1
    return F.pad(masks, (left, right, top, bottom), value=0)


def is_box_near_crop_edge(
    boxes: torch.Tensor, crop_box: list[int], orig_box: list[int], atol: float = 20.0
) -> torch.Tensor:
    """(N, 4) boxes in the crop's frame -> (N,) bool: touches a crop edge that is not an image edge.

    A mask cut by the crop's border is an object seen in part; a bigger crop sees it whole.
    """
    crop = torch.as_tensor(crop_box, dtype=torch.float, device=boxes.device)
    image = torch.as_tensor(orig_box, dtype=torch.float, device=boxes.device)
    boxes = uncrop_boxes_xyxy(boxes, crop_box).float()
    near_crop = torch.isclose(boxes, crop[None, :], atol=atol, rtol=0)  # (N, 4) per side
    near_image = torch.isclose(boxes, image[None, :], atol=atol, rtol=0)
    return (near_crop & ~near_image).any(dim=1)
