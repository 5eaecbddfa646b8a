"""Training images: synthetic scenes drawn on the fly, a mixture of lab and generic scenes,
square and not, each with K of its masks -- the data of :class:`~samteach.training.trainer.Trainer`.

Shapes: K masks per image, S the model's input size, (h, w) an image inside its S x S square.
"""

import numpy as np
import torch

from ..data.generic import GenericSceneConfig, make_generic_scene
from ..data.record import SegmentationRecord
from ..data.scenes import SceneConfig, make_scene
from ..text.captions import unique_captions

__all__ = ["SceneMasks", "scene_size", "training_scene"]


class SceneMasks(torch.utils.data.Dataset):
    """Synthetic scene ``first_seed + i`` -> its image, K of its masks and its size.

    Scenes are drawn on the fly (2-4 ms each), so training never sees an image twice and
    held-out seeds are truly unseen. Each index is a lab scene or, with probability
    ``generic_share``, a generic one; with probability ``nonsquare_share`` it is not square:
    its long side is ``size`` and the short one 50-100% of it, drawn in the top-left corner of
    the ``size`` x ``size`` input, as ``SamPredictor`` places a resized photo (the rest is
    padding; :func:`preprocess_batch` makes it exactly the predictor's). Which scene, size and
    K masks is fixed per index, so a distributed sampler can split indices reproducibly.

    Items are (image (3, S, S) uint8, masks (K, S, S) bool, input_size (2,) int64 = (h, w)),
    and with ``captions`` a fourth: the K masks' captions joined by newlines, each one drawn
    from those that name its object in the scene (:func:`unique_captions`), "" where none does.
    """

    def __init__(self, size: int, masks_per_image: int, first_seed: int = 0,
                 length: int = 10_000_000, scene: SceneConfig | None = None,
                 generic: GenericSceneConfig | None = None, generic_share: float = 0.0,
                 nonsquare_share: float = 0.0, captions: bool = False) -> None:
        self.captions = captions
        self.size, self.k, self.first_seed, self.length = size, masks_per_image, first_seed, length
        self.scene, self.generic = scene, generic
        self.generic_share, self.nonsquare_share = generic_share, nonsquare_share

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        record, rng = training_scene(self.first_seed + int(index), self.size, self.scene,
                                     self.generic, self.generic_share, self.nonsquare_share)
        h, w = record.image.shape[:2]
        n = len(record)
        pick = rng.choice(n, self.k, replace=n < self.k)
        image = torch.zeros(3, self.size, self.size, dtype=torch.uint8)
        image[:, :h, :w] = torch.from_numpy(record.image).permute(2, 0, 1)
        masks = torch.zeros(self.k, self.size, self.size, dtype=torch.bool)
        masks[:, :h, :w] = torch.from_numpy(record.masks[pick])
        if not self.captions:
            return image, masks, torch.tensor([h, w])
        named = unique_captions(record)
        draws = np.random.default_rng([self.first_seed + int(index), 2])  # apart from the masks
        said = [named[i][int(draws.integers(len(named[i])))] if named[i] else "" for i in pick]
        return image, masks, torch.tensor([h, w]), "\n".join(said)


def training_scene(seed: int, size: int, scene: SceneConfig | None = None,
                   generic: GenericSceneConfig | None = None, generic_share: float = 0.0,
                   nonsquare_share: float = 0.0) -> tuple[SegmentationRecord, np.random.Generator]:
    """Scene ``seed`` of a training stream: lab or generic, square or not (see SceneMasks).

    Returns the record and the random generator that chose its kind and size, for the caller's
    further choices (which masks), so they too are fixed by the seed.
    """
    rng = np.random.default_rng([seed, 1])  # kind, size and masks; apart from the drawing
    is_generic = rng.random() < generic_share
    h, w = scene_size(rng, size, nonsquare_share)
    if is_generic:
        return make_generic_scene(seed, (h, w), generic), rng
    return make_scene(seed, (h, w), scene), rng


def scene_size(rng: np.random.Generator, size: int, nonsquare_share: float) -> tuple[int, int]:
    """(H, W) of a scene: ``size`` square, or with probability ``nonsquare_share`` a long side
    of ``size`` and a short side of 50-100% of it (portrait or landscape, equally likely)."""
    if rng.random() >= nonsquare_share:
        return size, size
    short = max(32, int(size * float(rng.uniform(0.5, 1.0))))
    return (short, size) if rng.random() < 0.5 else (size, short)
