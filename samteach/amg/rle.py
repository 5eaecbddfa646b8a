"""Run-length encoding of masks, the format SA-1B ships its 1.1 B masks in.

A mask is read column by column (Fortran order, COCO's convention) and stored as the lengths
of alternating runs, starting with a run of 0s (of length 0 if the first pixel is 1):
``{"size": [H, W], "counts": [3, 2, 5, ...]}`` -- "uncompressed RLE". COCO's compressed RLE
packs the same counts into a short ASCII string (pycocotools).

Shapes: N masks, H/W height and width.
"""

import numpy as np
import torch

__all__ = ["area_from_rle", "coco_encode_rle", "mask_to_rle", "remove_small_regions",
           "rle_to_mask"]


def mask_to_rle(masks: torch.Tensor) -> list[dict]:
    """(N, H, W) bool -> N uncompressed RLEs, computed for the whole batch at once."""
    n, h, w = masks.shape
    flat = masks.permute(0, 2, 1).flatten(1)  # (N, W*H): column by column
    # A run ends wherever a pixel differs from the next one.
    change = torch.nonzero(flat[:, 1:] != flat[:, :-1])  # (changes, 2): (mask, position)
    out = []
    for i in range(n):
        ends = change[change[:, 0] == i, 1] + 1  # (runs - 1,) where each new run starts
        edges = torch.cat([ends.new_zeros(1), ends, ends.new_full((1,), h * w)])
        counts = (edges[1:] - edges[:-1]).tolist()
        if flat[i, 0]:
            counts = [0, *counts]  # counts start with the run of 0s
        out.append({"size": [h, w], "counts": counts})
    return out


def rle_to_mask(rle: dict) -> np.ndarray:
    """Uncompressed RLE -> (H, W) bool."""
    h, w = rle["size"]
    values = np.arange(len(rle["counts"])) % 2 == 1  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, rle["counts"])  # (H*W,) column by column
    return flat.reshape(w, h).T


def area_from_rle(rle: dict) -> int:
    """Pixels in the mask: the sum of the runs of 1s."""
    return int(sum(rle["counts"][1::2]))


def coco_encode_rle(rle: dict) -> dict:
    """Uncompressed RLE -> COCO's compressed RLE (``counts`` an ASCII string), via pycocotools."""
    from pycocotools import mask as mask_utils

    h, w = rle["size"]
    compressed = mask_utils.frPyObjects(rle, h, w)
    compressed["counts"] = compressed["counts"].decode("utf-8")
    return compressed


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str):
    """Remove islands ("islands") or fill holes ("holes") smaller than area_thresh pixels.

    Connected components are 8-connected. Returns the new (H, W) bool mask and whether it changed.
    """
    from scipy import ndimage  # lazily: only with min_mask_region_area > 0

    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands'; got {mode!r}")
    fill_holes = mode == "holes"
    region = (mask ^ fill_holes).astype(bool)  # the holes are the background's components
    labels, n = ndimage.label(region, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # (n,)
    small = {i + 1 for i, size in enumerate(sizes) if size < area_thresh}
    if not small:
        return mask, False
    keep = [0, *small] if fill_holes else [i for i in range(1, n + 1) if i not in small]
    if not fill_holes and not keep:  # every island is small: keep the largest one
        keep = [int(np.argmax(sizes)) + 1]
    return np.isin(labels, keep), True
