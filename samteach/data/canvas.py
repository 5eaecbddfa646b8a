"""The drawing surface of the synthetic scenes: an image and the instance ids behind its masks.

Both scene generators (:mod:`~samteach.data.scenes`, lab glassware, and
:mod:`~samteach.data.generic`, shapes of anything) paint on a :class:`Canvas`. Besides the
pixels it keeps one id layer per nesting level -- level 0 for objects, 1 for their parts, 2 for
parts of parts -- so every mask is known exactly, whatever was painted over what:

* an object drawn later is nearer the viewer: it owns its pixels on level 0 and hides the
  parts (of any depth) of the objects behind it;
* a part lies on its parent: it owns only pixels its parent owns, and hides deeper parts there.

The whole (an object) keeps every pixel of its parts, so clicking a part is ambiguous -- the
part, or the whole? -- exactly what SAM's three multimask outputs answer.

A caption's colour word is named from the finished picture (:meth:`Canvas.show_color`), not
from the colour a generator chose: shading, see-through blending over what lies behind, a
gradient's far end and the camera's jitter all move what is seen, and a caption must be true of
what is seen.

Bit-exact on every machine: the callers draw with +, -, *, /, sqrt and comparisons only (no
sin/exp, whose last bits differ between maths libraries) and numpy's PCG64 generator.

Shapes: H/W image height and width, h/w a window of it, N instances.
"""

import numpy as np

from .colors import color_name
from .record import SegmentationRecord


def check_scene_args(seed: object, size: object) -> tuple[int, tuple[int, int]]:
    """A scene's seed (an int >= 0) and size (an int for a square, or (H, W), each >= 32)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if not (isinstance(size, tuple) and len(size) == 2
            and all(isinstance(s, (int, np.integer)) for s in size)):
        raise ValueError(f"size must be an int or an (H, W) pair of ints; got {size!r}")
    if min(size) < 32:
        raise ValueError(f"size must be at least 32 pixels per side; got {size}")
    return int(seed), (int(size[0]), int(size[1]))


class Canvas:
    """The image being painted (float RGB, 0..255) and its instance id layers."""

    def __init__(self, height: int, width: int, levels: int = 2) -> None:
        self.height, self.width = height, width
        self.unit = float(min(height, width))  # scene sizes are fractions of this
        self.image = np.zeros((height, width, 3), np.float32)
        self.layers = np.full((levels, height, width), -1, np.int16)  # id per level and pixel
        self.names: list[str] = []
        self.parents: list[int] = []  # per instance: the enclosing instance or -1
        self.depths: list[int] = []  # per instance: its level (0 object, 1 part, ...)
        self.attributes: list[dict[str, str]] = []  # per instance: words for its captions
        self.colored: set[int] = set()  # instances whose colour a caption may name

    def window(self, top: float, bottom: float, left: float, right: float):
        """Pixel slices of a box (clipped) and the pixel-centre coordinates inside it."""
        y0, y1 = max(0, int(top)), min(self.height, int(bottom) + 2)
        x0, x1 = max(0, int(left)), min(self.width, int(right) + 2)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5  # (h, 1)
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5  # (1, w)
        return (slice(y0, y1), slice(x0, x1)), ys, xs

    def paint(self, where, mask: np.ndarray, color, alpha: float = 1.0) -> None:
        """Blend ``color`` (3 floats, 0..255, or an (h, w, 3) array) over the masked pixels."""
        region = self.image[where]
        color = np.asarray(color, np.float32)
        if color.ndim == 3:
            color = color[mask]
        region[mask] = region[mask] * (1.0 - alpha) + color * alpha

    def new_instance(self, name: str, parent: int = -1, **attributes: str) -> int:
        depth = 0 if parent == -1 else self.depths[parent] + 1
        if depth >= len(self.layers):
            raise ValueError(f"this canvas nests {len(self.layers)} levels deep; {name!r} would "
                             f"be on level {depth}")
        self.names.append(name)
        self.parents.append(parent)
        self.depths.append(depth)
        self.attributes.append(dict(attributes))
        return len(self.names) - 1

    def claim(self, where, mask: np.ndarray, index: int) -> None:
        """Instance ``index`` takes the masked pixels its parent owns; deeper parts there hide."""
        depth, parent = self.depths[index], self.parents[index]
        if depth:
            mask = mask & (self.layers[depth - 1][where] == parent)
        self.layers[depth][where][mask] = index
        for deeper in self.layers[depth + 1:]:
            deeper[where][mask] = -1

    def claim_object(self, where, mask: np.ndarray, index: int) -> None:
        """An object in front: it owns these pixels; parts of those behind are hidden."""
        self.claim(where, mask, index)

    def claim_part(self, where, mask: np.ndarray, index: int, owner: int) -> None:
        """A part is visible only where its object (``owner``, its parent) is."""
        if self.parents[index] != owner:
            raise ValueError(f"instance {index} is a part of {self.parents[index]}, not {owner}")
        self.claim(where, mask, index)

    def show_color(self, index: int) -> None:
        """Instance ``index`` shows one colour that a caption may name ("the blue liquid").

        The word is chosen when the picture is finished (:meth:`record`): the per-channel
        median of the pixels it shows itself (its mask less its parts'), named by
        :func:`~samteach.data.colors.color_name`.
        """
        self.colored.add(index)

    def mask_of(self, index: int, where=(slice(None), slice(None))) -> np.ndarray:
        """The pixels instance ``index`` owns now (inside ``where``)."""
        return self.layers[self.depths[index]][where] == index

    def add_noise(self, rng: np.random.Generator, amplitude: int) -> None:
        if amplitude:
            # The sum of two uniform integers: a triangular, roughly bell-shaped noise.
            noise = rng.integers(-amplitude, amplitude + 1, (2, self.height, self.width, 3))
            self.image += (noise[0] + noise[1]).astype(np.float32) * 0.5

    def record(self, min_area: int, image_id: str) -> SegmentationRecord:
        """The finished scene: instances of at least ``min_area`` pixels whose parents stayed."""
        masks, kept = [], {}
        for i, _ in enumerate(self.names):
            mask = self.layers[self.depths[i]] == i
            if mask.sum() >= max(min_area, 1) and (self.parents[i] in kept
                                                   or self.parents[i] == -1):
                kept[i] = len(masks)
                masks.append(mask)
        image = np.clip(self.image + 0.5, 0, 255).astype(np.uint8)  # round half up
        return SegmentationRecord(
            image=image,
            masks=np.stack(masks) if masks else np.zeros((0, *image.shape[:2]), bool),
            class_names=tuple(self.names[i] for i in kept),
            parents=tuple(kept.get(self.parents[i], -1) for i in kept),
            image_id=image_id,
            attributes=tuple(self._words(i, masks[k], image) for i, k in kept.items()),
        )

    def _words(self, index: int, mask: np.ndarray, image: np.ndarray) -> dict[str, str]:
        """Instance ``index``'s caption words, its colour (if it shows one) named from ``image``
        over the pixels of its (H, W) ``mask`` that none of its parts covers."""
        words = dict(self.attributes[index])
        if index in self.colored:
            depth = self.depths[index]
            own = mask  # (H, W)
            if depth + 1 < len(self.layers):
                own = own & (self.layers[depth + 1] == -1)  # a part's paint hides the whole's
            if own.any():
                words["color"] = color_name(np.median(image[own], axis=0))
        return words
