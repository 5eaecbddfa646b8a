"""Datasets for the course, all yielding one record format (:class:`SegmentationRecord`).

* :func:`make_scene` -- synthetic lab scenes, drawn on the fly (the course's default data);
* :func:`make_generic_scene` -- synthetic scenes of "anything": shapes of many kinds, textures,
  occlusion and parts (what makes the tiny model segment more than glassware);
* :class:`LabPicsV1` -- the lecture's dataset of lab photos, read from its real folders;
* :class:`SA1B` / :func:`read_sa1b` / :func:`write_sa1b` -- Meta's SA-1B per-image files;
* :mod:`samteach.data.hf` -- records as a Hugging Face ``datasets.Dataset`` with prompt
  sampling and batching (``datasets`` is imported only when you use it).
"""

from .generic import SHAPES, GenericSceneConfig, make_generic_scene, make_generic_scenes
from .labpics import LABPICS_SPLITS, LabPicsV1, instances_from_id_maps, read_labpics
from .record import SegmentationRecord, validate_mask, validate_masks
from .sa1b import SA1B, SA1BImage, read_sa1b, read_sa1b_masks, write_sa1b
from .scenes import CLASS_NAMES, SceneConfig, make_scene, make_scenes

__all__ = [
    "CLASS_NAMES",
    "SHAPES",
    "GenericSceneConfig",
    "LABPICS_SPLITS",
    "SA1B",
    "LabPicsV1",
    "SA1BImage",
    "SceneConfig",
    "SegmentationRecord",
    "validate_mask",
    "validate_masks",
    "instances_from_id_maps",
    "make_generic_scene",
    "make_generic_scenes",
    "make_scene",
    "make_scenes",
    "read_labpics",
    "read_sa1b",
    "read_sa1b_masks",
    "write_sa1b",
]
