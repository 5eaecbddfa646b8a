"""Records as a Hugging Face ``datasets.Dataset``, prompts sampled on the fly, and batching.

    from torch.utils.data import DataLoader
    from samteach.data.hf import PromptSampler, collate_prompts, scenes_dataset

    ds = scenes_dataset(1000, size=128, seed=0)       # 1000 lab scenes, ~4 s
    shapes = scenes_dataset(1000, kind="generic")     # 1000 scenes of anything
    ds.save_to_disk("scenes")                         # datasets.load_from_disk("scenes")
    train = ds.with_transform(PromptSampler(k=4, seed=0))
    loader = DataLoader(train, batch_size=8, shuffle=True, collate_fn=collate_prompts)
    batch = next(iter(loader))  # images (8, 3, 128, 128), masks (8, 4, 128, 128), points ...

Columns: ``image`` (an RGB image), ``masks`` (the (N, H, W) bool masks, bit-packed with
``np.packbits`` -- eight pixels a byte, and fast to unpack, which matters because
``with_transform`` hands its function plain Python objects), ``class_names``, ``parents``,
``image_id``. :func:`to_record` turns a row back into a :class:`SegmentationRecord`.

Shapes: B images, K masks (prompts) per image, H/W height and width.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ..utils.arguments import validate_int
from .generic import GenericSceneConfig, make_generic_scene
from .record import SegmentationRecord
from .scenes import SceneConfig, make_scene

__all__ = ["PromptSampler", "collate_prompts", "record_features", "records_dataset",
           "scenes_dataset", "to_record", "to_row"]


def record_features():
    """The ``datasets.Features`` of a record row."""
    import datasets

    return datasets.Features({
        "image": datasets.Image(),
        "masks": datasets.Value("binary"),
        "class_names": datasets.Sequence(datasets.Value("string")),
        "parents": datasets.Sequence(datasets.Value("int32")),
        "image_id": datasets.Value("string"),
    })


def to_row(record: SegmentationRecord) -> dict[str, Any]:
    """A record as a dataset row."""
    return {
        "image": record.image,
        "masks": np.packbits(record.masks).tobytes(),
        "class_names": list(record.class_names),
        "parents": list(record.parents),
        "image_id": record.image_id,
    }


def to_record(row: dict[str, Any]) -> SegmentationRecord:
    """A dataset row (python or numpy format) back as a :class:`SegmentationRecord`."""
    image = row["image"]
    image = np.array(image.convert("RGB") if hasattr(image, "convert") else image, np.uint8)
    names = list(row["class_names"])
    return SegmentationRecord(
        image=image,
        masks=_unpack(row["masks"], len(names), image.shape[:2]),
        class_names=tuple(names),
        parents=tuple(int(p) for p in row["parents"]),
        image_id=str(row["image_id"]),
    )


def _unpack(packed: bytes, count: int, size: tuple[int, int]) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(packed, np.uint8), count=count * size[0] * size[1])
    return bits.reshape(count, *size).astype(bool)


def records_dataset(records: Iterable[SegmentationRecord]):
    """Any records (synthetic scenes, LabPicsV1, SA-1B) as an in-memory ``datasets.Dataset``."""
    import datasets

    return datasets.Dataset.from_list([to_row(r) for r in records], features=record_features())


def scenes_dataset(n: int, size: int | tuple[int, int] = 128, seed: int = 0,
                   config: SceneConfig | GenericSceneConfig | None = None,
                   progress: bool = True, kind: str = "lab"):
    """``n`` synthetic scenes (seeds ``seed`` .. ``seed + n - 1``) as a dataset: lab scenes
    (``kind="lab"``, :func:`~samteach.data.make_scene`) or scenes of anything
    (``kind="generic"``, :func:`~samteach.data.make_generic_scene`)."""
    from tqdm.auto import tqdm

    validate_int(n, "n", what=", the number of scenes")
    draw = {"lab": make_scene, "generic": make_generic_scene}.get(kind)
    if draw is None:
        raise ValueError(f"kind must be 'lab' or 'generic'; got {kind!r}")
    seeds = tqdm(range(seed, seed + n), desc="drawing scenes", disable=not progress)
    return records_dataset(draw(s, size, config) for s in seeds)


class PromptSampler:
    """A ``with_transform`` function: picks K masks per image and samples SAM's first prompts.

    Fresh prompts at every access (a new epoch sees new clicks and boxes), reproducible from
    ``seed`` for a given order of access. With a DataLoader of several workers, each worker
    holds a copy of this sampler: call ``reseed(seed + worker_id)`` in ``worker_init_fn``.

    Args:
        k: masks (and prompts) per image; images with fewer masks repeat some.
        p_box, point_mode, noise_std, max_noise: as in
            :func:`samteach.training.samplers.sample_first_prompts` (SAM App. A defaults).
        seed: the seed of both the mask choice and the prompts.
    """

    def __init__(self, k: int = 4, p_box: float = 0.5, point_mode: str = "uniform",
                 noise_std: float = 0.1, max_noise: float = 20.0, seed: int = 0) -> None:
        validate_int(k, "k", what=", the number of masks per image")
        self.k = k
        self.prompt_kwargs = dict(p_box=p_box, point_mode=point_mode, noise_std=noise_std,
                                  max_noise=max_noise)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        from ..training.samplers import sample_first_prompts

        out: dict[str, list] = {key: [] for key in (
            "image", "masks", "points", "labels", "is_box", "mask_index", "class_names",
            "image_id")}
        for row in zip(*(batch[key] for key in ("image", "masks", "class_names", "parents",
                                                 "image_id")), strict=True):
            record = to_record(dict(zip(("image", "masks", "class_names", "parents",
                                         "image_id"), row, strict=True)))
            if len(record) == 0:
                raise ValueError(f"image {record.image_id!r} has no masks to prompt")
            index = self._choose(len(record))
            masks = torch.from_numpy(record.masks[index])  # (K, H, W)
            first = sample_first_prompts(masks, self.generator, **self.prompt_kwargs)
            out["image"].append(torch.from_numpy(record.image).permute(2, 0, 1))  # (3, H, W)
            out["masks"].append(masks)
            out["points"].append(first.points)  # (K, 2, 2)
            out["labels"].append(first.labels)  # (K, 2)
            out["is_box"].append(first.is_box)  # (K,)
            out["mask_index"].append(torch.from_numpy(index))
            out["class_names"].append([record.class_names[i] for i in index])
            out["image_id"].append(record.image_id)
        return out

    def _choose(self, n: int) -> np.ndarray:
        """K distinct masks when there are enough; otherwise all of them, then repeats."""
        if n >= self.k:
            return self.rng.choice(n, self.k, replace=False)
        extra = self.rng.choice(n, self.k - n, replace=True)
        return np.concatenate([self.rng.permutation(n), extra])


def collate_prompts(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Examples of :class:`PromptSampler` -> one batch of B images x K prompts.

    Returns images (B, 3, H, W) uint8, masks (B, K, H, W) bool, points (B, K, 2, 2),
    labels (B, K, 2), is_box (B, K), mask_index (B, K), and lists class_names, image_id.
    """
    if not examples:
        raise ValueError("examples must hold at least one example")
    sizes = {tuple(e["image"].shape) for e in examples}
    if len(sizes) > 1:
        raise ValueError(f"examples must share one image size to be stacked; got {sorted(sizes)}"
                         " -- resize them (e.g. LabPicsV1(max_size=...)) or use batch_size=1")
    batch = {key: torch.stack([e[key] for e in examples])
             for key in ("image", "masks", "points", "labels", "is_box", "mask_index")}
    batch["images"] = batch.pop("image")
    batch["class_names"] = [e["class_names"] for e in examples]
    batch["image_id"] = [e["image_id"] for e in examples]
    return batch
