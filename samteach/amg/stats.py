"""SA-1B's statistics (SAM paper §5, Fig. 5-6) for any folder of SA-1B-format files.

The paper describes its dataset by how many masks each image has (most have 50-200, shown in
the lecture's bins below), how large masks are (sqrt(mask area / image area): SA-1B has many
more small and medium masks than COCO or Open Images), and where their centres lie (SA-1B
is less centre-biased than photo datasets). The same three views work on the folder the
course's generator writes (``write_generated``) and on real SA-1B tar contents.

Shapes: I images, N masks in all.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["MASK_COUNT_BINS", "SA1BStats", "sa1b_statistics", "write_generated"]

# The lecture's bins of masks per image: (label, low inclusive, high exclusive).
MASK_COUNT_BINS = (
    ("<50", 0, 50), ("50-100", 50, 100), ("100-200", 100, 200), ("200-300", 200, 300),
    ("300-400", 300, 400), ("400-500", 400, 500), (">500", 500, float("inf")),
)


@dataclass(frozen=True, eq=False)
class SA1BStats:
    """Per-image and per-mask numbers of an SA-1B-format folder.

    Attributes:
        image_ids: (I,) the images, in file-name order.
        masks_per_image: (I,) int.
        relative_sizes: (N,) sqrt(mask area / image area), in (0, 1].
        centres: (N, 2) each mask's centre of mass (x, y) over the image size, in [0, 1].
    """

    image_ids: tuple[str, ...]
    masks_per_image: np.ndarray
    relative_sizes: np.ndarray
    centres: np.ndarray

    def histogram(self) -> dict[str, int]:
        """Images per bin of ``MASK_COUNT_BINS``."""
        counts = self.masks_per_image
        return {label: int(((counts >= low) & (counts < high)).sum())
                for label, low, high in MASK_COUNT_BINS}


def sa1b_statistics(folder: str | os.PathLike) -> SA1BStats:
    """Read every ``*.json`` of an SA-1B-format folder (the images are not needed)."""
    from ..data.sa1b import read_sa1b_masks  # the reader's own checks

    paths = sorted(Path(folder).expanduser().glob("*.json"))
    if not paths:
        raise ValueError(f"folder {str(folder)!r} holds no SA-1B .json files")
    ids, counts, sizes, centres = [], [], [], []
    for path in paths:
        image, masks = read_sa1b_masks(path)
        h, w = int(image["height"]), int(image["width"])
        ids.append(str(image["image_id"]))
        count = 0
        for mask in masks:  # (H, W), one at a time
            count += 1
            ys, xs = np.nonzero(mask)
            sizes.append(np.sqrt(len(xs) / (h * w)))
            centres.append(((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h))
        counts.append(count)
    return SA1BStats(tuple(ids), np.array(counts, dtype=int), np.array(sizes, dtype=float),
                     np.array(centres, dtype=float).reshape(-1, 2))


def write_generated(folder: str | os.PathLike, image_id: str, image: np.ndarray,
                    records: list[dict]) -> Path:
    """Save a generator's output (binary masks) as an SA-1B pair ``sa_<id>.jpg`` + ``.json``.

    Returns the JSON's path. The per-mask ``predicted_iou``, ``stability_score`` and
    ``point_coords`` are kept, as in SA-1B.
    """
    from ..data.record import SegmentationRecord
    from ..data.sa1b import write_sa1b

    if any(not isinstance(r.get("segmentation"), np.ndarray) for r in records):
        raise ValueError("records must come from a generator with output_mode='binary_mask'")
    h, w = image.shape[:2]
    masks = np.array([r["segmentation"] for r in records], dtype=bool).reshape(-1, h, w)
    record = SegmentationRecord(image=image, masks=masks, class_names=("object",) * len(masks),
                                image_id=str(image_id))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"sa_{image_id}.json"
    write_sa1b(json_path, record, image_path=folder / f"sa_{image_id}.jpg",
               predicted_iou=[r["predicted_iou"] for r in records],
               stability_score=[r["stability_score"] for r in records],
               point_coords=[r["point_coords"][0] for r in records])
    return json_path
