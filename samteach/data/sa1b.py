"""SA-1B: the 11M images and 1.1B masks SAM was trained on (SAM paper, Sec. 5).

Every image comes as a pair of files in one folder::

    sa_<id>.jpg    the photo (released with its short side at 1500 px)
    sa_<id>.json   {"image": {"image_id", "width", "height", "file_name"},
                    "annotations": [{"id", "segmentation": {"size": [H, W], "counts": "..."},
                                     "bbox": [x, y, w, h], "area", "predicted_iou",
                                     "stability_score", "point_coords": [[x, y]],
                                     "crop_box": [x, y, w, h]}, ...]}

A mask is stored as COCO run-length encoding (RLE): the lengths of alternating runs of 0s and
1s, read column by column (Fortran order), compressed into a short ASCII string. About 100
masks per image would take ~340 MB as bool arrays at full size; as RLE they take kilobytes.
``predicted_iou``, ``stability_score`` and ``point_coords`` record how the fully automatic data
engine produced each mask (the grid point it was prompted with, and the two scores it had to
pass); SA-1B has no class labels, so every mask here is class "object".

Shapes: N masks, H/W image height and width.
"""

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.files import atomic_write, write_text_atomic
from ..utils.images import load_image
from ..utils.masks import box_xyxy_to_xywh, mask_to_box
from .record import SegmentationRecord

__all__ = ["SA1B", "SA1BImage", "read_sa1b", "read_sa1b_masks", "write_sa1b"]

CLASS_NAME = "object"  # SA-1B masks are class-agnostic
JPEG_QUALITY = 95


@dataclass(frozen=True)
class SA1BImage:
    """One SA-1B image: its record and the per-mask metadata the record has no room for.

    Attributes:
        record: image, (N, H, W) masks, class "object" for each, image_id from the JSON.
        annotations: N dicts -- id, bbox, area, predicted_iou, ... -- everything of each
            annotation except its segmentation (which is ``record.masks[i]``).
        image_info: the JSON's "image" entry (image_id, width, height, file_name).
    """

    record: SegmentationRecord
    annotations: list[dict]
    image_info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.record)


class SA1B(Sequence):
    """Every ``*.json`` of an SA-1B folder (sorted by name), read one image at a time.

    ``dataset[i]`` is a :class:`SegmentationRecord`, like every samteach dataset;
    ``dataset.read(i)`` also returns the per-mask metadata (an :class:`SA1BImage`).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ValueError(f"folder must be a folder of SA-1B sa_<id>.json/.jpg pairs; "
                             f"{self.folder} does not exist")
        self.json_paths = sorted(p for p in self.folder.glob("*.json") if p.is_file())
        if not self.json_paths:
            raise ValueError(f"folder {self.folder} holds no .json annotation files")

    def __len__(self) -> int:
        return len(self.json_paths)

    def __getitem__(self, index: int) -> SegmentationRecord:
        return self.read(index).record

    def read(self, index: int) -> "SA1BImage":
        """The index-th image with its per-mask metadata."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer; got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for the {len(self)} images in "
                             f"{self.folder}")
        return read_sa1b(self.json_paths[int(index)])

    def __repr__(self) -> str:
        return f"SA1B(folder={str(self.folder)!r}) with {len(self)} images"


def read_sa1b_masks(json_path: str | os.PathLike) -> tuple[dict, Iterator[np.ndarray]]:
    """The "image" entry of an SA-1B annotation file and its masks, decoded one at a time.

    For statistics over many files: the photo is not read, and only one (H, W) bool mask is in
    memory at a time. Every check of :func:`read_sa1b` on the JSON applies. Without a photo, a
    JSON that leaves out the image's height and width (``read_sa1b`` takes them from the photo)
    gets its size from its masks; the returned entry always has both.
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise ValueError(f"json_path {json_path} does not exist")
    image, annotations = _load_json(json_path)
    # The size: the "image" entry's, else (read_sa1b takes it from the photo) the masks' own.
    if image.get("height") is not None and image.get("width") is not None:
        shape = (int(image["height"]), int(image["width"]))
    elif annotations:
        shape = tuple(annotations[0]["segmentation"]["size"])
    else:
        raise ValueError(f"json_path {json_path}: the 'image' entry has no height and width "
                         "and there is no mask to take the size from")
    image = {**image, "height": shape[0], "width": shape[1]}
    masks = (_decode(a["segmentation"], shape, _label(a, i)) for i, a in enumerate(annotations))
    return image, masks


def read_sa1b(
    json_path: str | os.PathLike, image_path: str | os.PathLike | None = None
) -> SA1BImage:
    """Read one SA-1B image: decode every RLE mask and check it fits the photo.

    Args:
        json_path: the annotation file ``sa_<id>.json``.
        image_path: the photo; by default the JSON's ``file_name`` next to the JSON (or
            ``sa_<id>.jpg`` if the JSON names none).

    Returns:
        An :class:`SA1BImage` whose record holds (N, H, W) bool masks in annotation order.
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise ValueError(f"json_path {json_path} does not exist")
    image_info, annotations = _load_json(json_path)
    if image_path is None:
        image_path = json_path.parent / str(image_info.get("file_name", f"{json_path.stem}.jpg"))
    image = load_image(Path(image_path), "image_path")
    _check_declared_size(image_info, image.shape[:2], json_path, Path(image_path))
    masks = np.zeros((len(annotations), *image.shape[:2]), dtype=bool)  # (N, H, W)
    for i, annotation in enumerate(annotations):
        masks[i] = _decode(annotation["segmentation"], image.shape[:2], _label(annotation, i))
    record = SegmentationRecord(image=image, masks=masks,
                                class_names=(CLASS_NAME,) * len(annotations),
                                image_id=str(image_info["image_id"]))
    metadata = [{k: v for k, v in a.items() if k != "segmentation"} for a in annotations]
    return SA1BImage(record=record, annotations=metadata, image_info=dict(image_info))


def write_sa1b(
    json_path: str | os.PathLike,
    record: SegmentationRecord,
    image_path: str | os.PathLike | None = None,
    predicted_iou: Sequence[float] | None = None,
    stability_score: Sequence[float] | None = None,
    point_coords: Sequence[Sequence[float]] | np.ndarray | None = None,
) -> Path:
    """Write a record as an SA-1B annotation file (and, if asked, its photo).

    Masks become COCO compressed RLE; bbox (x, y, w, h) and area are measured from each mask.
    The scores and points are written only when given -- a hand-made mask has none, and we do
    not invent them. ``crop_box`` is the whole image: the mask was not made inside a crop.

    Args:
        json_path: where to write ``sa_<id>.json`` (missing folders are created).
        record: the image and its (N, H, W) masks; ``record.image_id`` becomes the JSON's
            image_id (an int when it is all digits, as in SA-1B).
        image_path: if given, the photo is written there too (JPEG quality 95 for .jpg; use
            .png for a lossless copy). The JSON's file_name is this file's name.
        predicted_iou: N scores, one per mask.
        stability_score: N scores, one per mask.
        point_coords: (N, 2) pixel (x, y), the point that prompted each mask.

    Returns:
        The path of the JSON written.
    """
    if not isinstance(record, SegmentationRecord):
        raise TypeError(f"record must be a SegmentationRecord; got {type(record).__name__}")
    n = len(record)
    ious = _per_mask(predicted_iou, "predicted_iou", n)
    stabilities = _per_mask(stability_score, "stability_score", n)
    points = _points(point_coords, n)
    json_path = Path(json_path)
    file_name = Path(image_path).name if image_path is not None else f"{json_path.stem}.jpg"
    h, w = record.size
    image_id = _json_image_id(record.image_id)
    annotations = [_encode(mask, i, (w, h)) for i, mask in enumerate(record.masks)]
    for i, annotation in enumerate(annotations):
        if ious is not None:
            annotation["predicted_iou"] = ious[i]
        if stabilities is not None:
            annotation["stability_score"] = stabilities[i]
        if points is not None:
            annotation["point_coords"] = [points[i]]
    data = {"image": {"image_id": image_id, "width": w, "height": h, "file_name": file_name},
            "annotations": annotations}
    if image_path is not None:  # first: a bad image path must not leave a JSON behind
        _write_image(Path(image_path), record.image)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json_path, json.dumps(data))  # a full disk leaves the old file whole
    return json_path


def _bbox_xywh(mask: np.ndarray) -> list[int]:
    """(H, W) bool mask -> [x, y, w, h] of its tightest box in COCO's convention: w and h count
    pixels (a one-pixel mask is 1x1, as pycocotools' toBbox reports it); [0, 0, 0, 0] if empty."""
    if not mask.any():
        return [0, 0, 0, 0]
    return box_xyxy_to_xywh(mask_to_box(mask).tolist(), "coco")


def _encode(mask: np.ndarray, index: int, size: tuple[int, int]) -> dict:
    """(H, W) bool mask -> one SA-1B annotation (segmentation, bbox, area, crop_box)."""
    from pycocotools import mask as mask_utils

    # pycocotools reads the mask column by column; it insists on a Fortran-ordered uint8 array.
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    w, h = size
    return {
        "id": index,
        "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},  # JSON: str
        "bbox": _bbox_xywh(mask),
        "area": int(mask.sum()),
        "crop_box": [0, 0, w, h],
    }


def _decode(segmentation: dict, shape: tuple[int, int], label: str) -> np.ndarray:
    """One compressed RLE -> (H, W) bool, or a ValueError naming the annotation."""
    from pycocotools import mask as mask_utils

    size = segmentation["size"]
    if [int(s) for s in size] != list(shape):
        raise ValueError(f"{label}: segmentation size {list(size)} (H, W) differs from the "
                         f"image, which is {list(shape)}")
    counts = segmentation["counts"]
    try:
        counts = counts.encode("ascii") if isinstance(counts, str) else counts  # pycocotools
        with warnings.catch_warnings():
            # pycocotools' compiled decoder trips a numpy 2 DeprecationWarning about its own
            # __array__ (one per mask); it is theirs, harmless, and would drown real warnings.
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            mask = mask_utils.decode({"size": list(shape), "counts": counts})  # wants bytes
    except (ValueError, TypeError) as error:
        raise ValueError(f"{label}: counts is not a valid COCO RLE string: {error}") from None
    # A string whose runs stop short of H*W pixels decodes without complaint and leaves the
    # rest of the mask uninitialised. Encoding is canonical, so the round trip must give the
    # same string back; anything else is truncated or corrupt.
    if mask_utils.encode(mask)["counts"] != counts:
        raise ValueError(f"{label}: counts is not a valid COCO RLE for a {shape[0]}x{shape[1]} "
                         "mask (its runs do not add up to H*W pixels)")
    if not mask.any():
        raise ValueError(f"{label}: the mask is empty")
    return mask.astype(bool)


def _load_json(json_path: Path) -> tuple[dict, list[dict]]:
    """The "image" entry and the annotations, after checking the structure we rely on."""
    try:
        data = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"json_path {json_path} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("image"), dict) \
            or not isinstance(data.get("annotations"), list):
        raise ValueError(f"json_path {json_path} is not an SA-1B annotation file: expected an "
                         "object with 'image' {...} and 'annotations' [...]")
    if "image_id" not in data["image"]:
        raise ValueError(f"json_path {json_path}: the 'image' entry has no 'image_id'")
    for i, annotation in enumerate(data["annotations"]):
        segmentation = annotation.get("segmentation") if isinstance(annotation, dict) else None
        if not isinstance(segmentation, dict) or "counts" not in segmentation \
                or not _is_size(segmentation.get("size")):
            raise ValueError(f"json_path {json_path}: {_label(annotation, i)} needs a "
                             "'segmentation' with 'size': [H, W] and 'counts'")
    return data["image"], data["annotations"]


def _is_size(size: object) -> bool:
    return isinstance(size, list) and len(size) == 2 \
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)


def _label(annotation: object, index: int) -> str:
    """How error messages name an annotation: its id, and where it sits in the list."""
    if isinstance(annotation, dict) and "id" in annotation:
        return f"annotation id {annotation['id']} (annotations[{index}])"
    return f"annotations[{index}]"


def _check_declared_size(
    info: dict, shape: tuple[int, int], json_path: Path, image_path: Path
) -> None:
    """The JSON's width/height (when present) must be the photo's."""
    declared = (info.get("height"), info.get("width"))
    if None not in declared and tuple(declared) != tuple(shape):
        raise ValueError(f"image_path {image_path} is {shape[1]}x{shape[0]} (W x H) but "
                         f"json_path {json_path} describes a {declared[1]}x{declared[0]} image")


def _write_image(image_path: Path, image: np.ndarray) -> None:
    from PIL import Image

    image_path.parent.mkdir(parents=True, exist_ok=True)
    kind = Image.registered_extensions().get(image_path.suffix.lower())  # e.g. ".jpg" -> JPEG
    if kind is None or kind not in Image.SAVE:
        raise ValueError(f"image_path {image_path} must end in an image extension such as "
                         f".jpg or .png")
    options = {"quality": JPEG_QUALITY} if kind == "JPEG" else {}
    atomic_write(image_path, lambda tmp: Image.fromarray(image).save(tmp, format=kind,
                                                                      **options))


def _json_image_id(image_id: str) -> int | str:
    """SA-1B's image ids are ints; write one as an int when it reads back as the same string."""
    return int(image_id) if image_id.isascii() and image_id.isdigit() \
        and str(int(image_id)) == image_id else image_id


def _numbers(values: object, name: str, expected: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {expected}; got {type(values).__name__}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite numbers; got NaN or inf")
    return array


def _per_mask(values: object, name: str, n: int) -> list[float] | None:
    """None, or one finite float per mask."""
    if values is None:
        return None
    array = _numbers(values, name, f"{n} numbers, one per mask")
    if array.shape != (n,):
        raise ValueError(f"{name} must have one value per mask, shape ({n},); got shape "
                         f"{array.shape}")
    return array.tolist()


def _points(point_coords: object, n: int) -> list[list[float]] | None:
    """None, or N pixel (x, y) points."""
    if point_coords is None:
        return None
    array = _numbers(point_coords, "point_coords", f"({n}, 2) pixel (x, y) coordinates")
    if array.size == 0 and n == 0:  # no masks, no points: [] is (0,) to numpy
        return []
    if array.shape != (n, 2):
        raise ValueError(f"point_coords must be ({n}, 2): one pixel (x, y) per mask; got shape "
                         f"{array.shape}")
    return array.tolist()
