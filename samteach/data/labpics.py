"""LabPicsV1: laboratory photos of vessels and the materials inside them (Eppel et al., 2020).

Vector-LabPics annotates every vessel (beaker, flask, bottle, ...) and every material phase
inside it (liquid, solid, foam, powder, ...) as its own instance. A material sits *inside* a
vessel, so each image carries SAM's whole/part ambiguity twice over: a click on the liquid may
mean the liquid or the beaker that holds it.

Folder layout, as unpacked from the LabPicsV1 archive::

    <root>/Simple/Train/Image/<stem>.jpg      the photo
    <root>/Simple/Train/Instance/<stem>.png   both instance-id maps of that photo
    <root>/Simple/Test/...                    the same for the test split

**The instance PNG holds two id maps in its colour channels.** In the file's RGB order (what
PIL returns, and what this module reads):

    red   (RGB channel 0) = vessel instance ids
    blue  (RGB channel 2) = material instance ids
    green (RGB channel 1) = not used here

The reference tutorial reads the same file with OpenCV, whose BGR order numbers the channels
the other way round: its "channel 0 = materials, channel 2 = vessels" is our blue and red.
In both maps 0 means "no instance"; every other value is one instance of that map.

Shapes: N instances, H/W image height and width.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..utils.arguments import validate_int
from .record import SegmentationRecord

__all__ = [
    "LABPICS_SPLITS",
    "MATERIAL_CHANNEL",
    "VESSEL_CHANNEL",
    "LabPicsV1",
    "instances_from_id_maps",
    "read_labpics",
]

LABPICS_SPLITS = ("Train", "Test")
# Channel indices in RGB order (PIL). OpenCV's BGR order calls them 2 (vessel) and 0 (material).
VESSEL_CHANNEL = 0  # red
MATERIAL_CHANNEL = 2  # blue
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # the archive ships .jpg; the rest cost nothing


class LabPicsV1(Sequence):
    """The records of one LabPicsV1 split, read from disk one image at a time.

    ``dataset[i]`` opens the i-th photo (stems sorted) and its instance PNG and returns a
    :class:`SegmentationRecord`: vessels first (by id, class "vessel"), then materials (by id,
    class "material"), each material's parent being the vessel that covers most of it.

    Example::

        dataset = LabPicsV1("~/data/LabPicsV1", split="Train", max_size=512)
        record = dataset[0]            # record.masks: (N, H, W) bool, longest side <= 512
    """

    def __init__(
        self, root: str | os.PathLike, split: str = "Train", max_size: int | None = None
    ) -> None:
        """Find the split's photos and check that each one has its instance PNG.

        Args:
            root: the LabPicsV1 folder (the one that contains ``Simple/``).
            split: "Train" or "Test".
            max_size: if given, shrink each record so its longest side is at most this many
                pixels (images bilinear, id maps nearest); None keeps the full resolution.
        """
        if split not in LABPICS_SPLITS:
            raise ValueError(f"split must be one of {LABPICS_SPLITS} (capitalised, as the "
                             f"folder names); got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        self.max_size = _check_max_size(max_size)
        image_dir, self.instance_dir = _split_folders(self.root, split)
        self.image_paths = _list_images(image_dir)
        self.instance_paths = [self.instance_dir / f"{p.stem}.png" for p in self.image_paths]
        for image_path, instance_path in zip(self.image_paths, self.instance_paths, strict=True):
            if not instance_path.is_file():
                raise ValueError(f"image {image_path} has no instance PNG: expected "
                                 f"{instance_path}")

    @property
    def stems(self) -> list[str]:
        """The image ids (file names without extension), in the order of the records."""
        return [p.stem for p in self.image_paths]

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> SegmentationRecord:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer; got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for the {len(self)} images of "
                             f"LabPicsV1 {self.split}")
        index = int(index) % len(self)
        return read_labpics(self.image_paths[index], self.instance_paths[index], self.max_size)

    def __repr__(self) -> str:
        return (f"LabPicsV1(root={str(self.root)!r}, split={self.split!r}, "
                f"max_size={self.max_size}) with {len(self)} images")


def read_labpics(
    image_path: str | os.PathLike,
    instance_path: str | os.PathLike,
    max_size: int | None = None,
    image_id: str | None = None,
) -> SegmentationRecord:
    """One LabPics photo and its instance PNG -> a record (vessels, then materials).

    Args:
        image_path: the photo (``Image/<stem>.jpg``).
        instance_path: its instance PNG (``Instance/<stem>.png``), vessel ids in red and
            material ids in blue.
        max_size: shrink so the longest side is at most this; instances that vanish in the
            shrinking are dropped.
        image_id: the record's id; defaults to the photo's stem.

    Returns:
        A record with N = vessels + materials masks of shape (N, H, W).
    """
    from PIL import Image

    image_path, instance_path = Path(image_path), Path(instance_path)
    max_size = _check_max_size(max_size)
    image = _open(image_path, "image_path").convert("RGB")  # grey or CMYK JPEGs exist
    ids = _open_instance_png(instance_path)
    if ids.size != image.size:
        raise ValueError(f"instance PNG {instance_path} is {ids.size[0]}x{ids.size[1]} (W x H) "
                         f"but its image {image_path} is {image.size[0]}x{image.size[1]}")
    size = _resized_size(image.size, max_size)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
        # Nearest, never bilinear: halfway between id 1 and id 3 is id 2, an instance that
        # does not exist. Both resizes use PIL's pixel-centre geometry, so they stay aligned.
        ids = ids.resize(size, Image.NEAREST)
    id_maps = np.asarray(ids)  # (H, W, 3) uint8
    masks, class_names, parents = instances_from_id_maps(
        id_maps[..., VESSEL_CHANNEL], id_maps[..., MATERIAL_CHANNEL])
    return SegmentationRecord(
        image=np.asarray(image, dtype=np.uint8).copy(),
        masks=masks,
        class_names=class_names,
        parents=parents,
        image_id=image_path.stem if image_id is None else image_id,
    )


def instances_from_id_maps(
    vessel_ids: np.ndarray, material_ids: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], tuple[int, ...]]:
    """Two (H, W) id maps -> (N, H, W) bool masks, class names and parent indices.

    Every non-zero id of each map becomes its own instance. (The reference tutorial instead
    writes ``mat_map[mat_map == 0] = ves_map[mat_map == 0] * (mat_map.max() + 1)``, which gives
    *every* vessel pixel the same id, so two beakers side by side become one mask -- exactly
    the distinction SAM should learn to make. We keep each vessel.)

    Args:
        vessel_ids: (H, W) integer map, 0 = no vessel.
        material_ids: (H, W) integer map, 0 = no material.

    Returns:
        masks (N, H, W) bool, vessels sorted by id then materials sorted by id; class names
        "vessel"/"material"; parents (-1 for vessels; for a material, the index of the vessel
        overlapping most of its pixels, or -1 if it touches none).
    """
    if vessel_ids.shape != material_ids.shape or vessel_ids.ndim != 2:
        raise ValueError(f"vessel_ids and material_ids must be (H, W) maps of one shape; got "
                         f"{vessel_ids.shape} and {material_ids.shape}")
    vessels = _nonzero_ids(vessel_ids)
    materials = _nonzero_ids(material_ids)
    masks = np.concatenate([vessel_ids[None] == vessels[:, None, None],
                            material_ids[None] == materials[:, None, None]])  # (N, H, W)
    material_parents = [_parent(vessel_ids[m], vessels) for m in masks[len(vessels):]]
    class_names = ("vessel",) * len(vessels) + ("material",) * len(materials)
    return masks, class_names, (-1,) * len(vessels) + tuple(material_parents)


def _nonzero_ids(id_map: np.ndarray) -> np.ndarray:
    """(K,) the sorted ids present in the map, 0 ("none") left out."""
    ids = np.unique(id_map)
    return ids[ids != 0]


def _parent(vessel_ids_under: np.ndarray, vessels: np.ndarray) -> int:
    """The index (into ``vessels``) of the vessel id most frequent under a material, or -1."""
    under = vessel_ids_under[vessel_ids_under != 0]
    if under.size == 0:
        return -1  # a spill on the bench, or a material whose vessel is not annotated
    ids, counts = np.unique(under, return_counts=True)
    best = ids[np.argmax(counts)]  # ties go to the lower id: argmax takes the first
    return int(np.searchsorted(vessels, best))


def _check_max_size(max_size: object) -> int | None:
    if max_size is None:
        return None
    return validate_int(max_size, "max_size", what=" (pixels), or None")


def _resized_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """(W, H) -> (W', H') with the longest side at most ``max_size``; never enlarges."""
    w, h = size
    if max_size is None or max(w, h) <= max_size:
        return w, h
    scale = max_size / max(w, h)
    # int(x + 0.5), as SAM's ResizeLongestSide rounds, so the same max_size gives the same shape.
    return max(1, int(w * scale + 0.5)), max(1, int(h * scale + 0.5))


def _split_folders(root: Path, split: str) -> tuple[Path, Path]:
    """root/Simple/<split>/{Image,Instance}, or a ValueError saying which part is missing."""
    if not root.is_dir():
        raise ValueError(f"root must be the LabPicsV1 folder; {root} does not exist")
    simple = root / "Simple"
    if not simple.is_dir():
        inner = sorted(p for p in root.glob("*/Simple") if p.is_dir())
        hint = f" -- did you mean root={str(inner[0].parent)!r}?" if inner else ""
        raise ValueError(f"root must be the LabPicsV1 folder that contains Simple/; {root} has "
                         f"no Simple/ folder{hint}")
    split_dir = simple / split
    if not split_dir.is_dir():
        found = sorted(p.name for p in simple.iterdir() if p.is_dir())
        raise ValueError(f"split {split!r} is not in {simple}: it has no {split}/ folder; the "
                         f"splits found there are {found}")
    for sub in ("Image", "Instance"):
        if not (split_dir / sub).is_dir():
            raise ValueError(f"split {split!r} has no {sub}/ folder: expected {split_dir / sub}")
    return split_dir / "Image", split_dir / "Instance"


def _list_images(image_dir: Path) -> list[Path]:
    """The photos of a split, sorted by stem so indices are the same on every machine."""
    paths = sorted((p for p in image_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.stem)
    if not paths:
        raise ValueError(f"{image_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def _open(path: Path, name: str):
    """Open an image file with PIL, or a ValueError naming the argument and the file."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ValueError(f"{name} {path} does not exist")
    try:
        image = Image.open(path)
        image.load()  # decode now, so a truncated file fails here and not later
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{name} {path} is not a readable image: {error}") from None
    return image


def _open_instance_png(path: Path):
    """The instance PNG as an RGB PIL image, or a ValueError naming the file."""
    image = _open(path, "instance PNG")
    # RGBA: OpenCV's imread (what the tutorial uses) drops alpha too. Anything else -- a grey
    # or palette PNG -- is not a two-map instance file (perhaps a semantic map by mistake).
    if image.mode not in ("RGB", "RGBA"):
        raise ValueError(f"instance PNG {path} must have 3 colour channels (red = vessel ids, "
                         f"blue = material ids); got PIL mode {image.mode!r}")
    return image.convert("RGB")
