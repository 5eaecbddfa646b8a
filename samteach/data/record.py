"""The one record format every samteach dataset yields: an image and its instance masks.

Synthetic lab scenes, LabPicsV1 and SA-1B readers all produce a :class:`SegmentationRecord`,
so samplers, training, evaluation and plots never care where an image came from.

Shapes: N instances, H/W image height and width.
"""

from dataclasses import dataclass, field

import numpy as np

from ..utils.arguments import describe

__all__ = ["SegmentationRecord", "validate_mask", "validate_masks"]


@dataclass
class SegmentationRecord:
    """An RGB image and its instance masks.

    Instances may nest -- a liquid inside its beaker, a label on its bottle -- which is exactly
    the whole/part ambiguity SAM's multimask output answers. ``parents[i]`` is the index of the
    instance that contains instance ``i`` (-1 for none), so both the whole and the part are
    there to be asked for.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        masks: (N, H, W) bool, one non-empty mask per instance.
        class_names: N names ("beaker", "liquid", ...), for plots and later text prompts.
        parents: N indices of the enclosing instance, or -1.
        image_id: where the record came from (file stem, seed, ...).
        attributes: N dicts of what the generator knows of each instance beyond its class,
            words a caption can use: {"color": "blue"}, {"texture": "striped"}, ... (empty for
            datasets that do not say).
    """

    image: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...]
    parents: tuple[int, ...] = field(default=())
    image_id: str = ""
    attributes: tuple[dict[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.image, np.ndarray) or self.image.dtype != np.uint8 \
                or self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"image must be an (H, W, 3) uint8 array; got "
                             f"{describe(self.image)}")
        self.masks = validate_masks(self.masks, "masks", self.image.shape[:2])
        self.class_names = tuple(self.class_names)
        self.parents = tuple(self.parents) or (-1,) * len(self.masks)
        self.attributes = tuple(dict(a) for a in self.attributes) or tuple(
            {} for _ in range(len(self.masks)))
        for name, values in (("class_names", self.class_names), ("parents", self.parents),
                             ("attributes", self.attributes)):
            if len(values) != len(self.masks):
                raise ValueError(f"{name} has {len(values)} entries for {len(self.masks)} masks")
        bad = [p for p in self.parents if not -1 <= p < len(self.masks)]
        if bad:
            raise ValueError(f"parents must be -1 or an instance index < {len(self.masks)}; "
                             f"got {bad}")

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.image.shape[0], self.image.shape[1]


def validate_mask(
    mask: object, name: str = "mask", shape: tuple[int, int] | None = None,
    allow_empty: bool = False,
):
    """One (H, W) bool mask (with at least one pixel, unless ``allow_empty``) -> the array."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy bool array of shape (H, W); got "
                        f"{type(mask).__name__}")
    if mask.dtype != bool:
        raise TypeError(f"{name} must have dtype bool (use mask > 0 or mask == id); got "
                        f"{mask.dtype}")
    if mask.ndim != 2 or (shape is not None and mask.shape != tuple(shape)):
        expected = f"{tuple(shape)}" if shape is not None else "(H, W)"
        raise ValueError(f"{name} must have shape {expected}; got {mask.shape}")
    if not allow_empty and not mask.any():
        raise ValueError(f"{name} is empty: it must contain at least one pixel")
    return mask


def validate_masks(masks: object, name: str = "masks", shape: tuple[int, int] | None = None):
    """(N, H, W) bool masks, each with at least one pixel -> the array."""
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"{name} must be a numpy bool array of shape (N, H, W); got "
                        f"{type(masks).__name__}")
    if masks.dtype != bool:
        raise TypeError(f"{name} must have dtype bool; got {masks.dtype}")
    if masks.ndim != 3 or (shape is not None and masks.shape[1:] != tuple(shape)):
        expected = f"(N, {shape[0]}, {shape[1]})" if shape is not None else "(N, H, W)"
        raise ValueError(f"{name} must have shape {expected}; got {masks.shape}")
    empty = np.flatnonzero(~masks.any(axis=(1, 2)))
    if len(empty):
        raise ValueError(f"{name}[{int(empty[0])}] is empty: every mask needs at least one "
                         f"pixel ({len(empty)} empty)")
    return masks
