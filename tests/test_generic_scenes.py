"""Generic scenes ("anything"): deterministic, exact masks, nested parts, every kind, any size."""

import hashlib

import numpy as np
import pytest

from samteach.data import SegmentationRecord
from samteach.data.generic import (
    SHAPES,
    GenericSceneConfig,
    make_generic_scene,
    make_generic_scenes,
)
from samteach.data.scenes import make_scene

SEEDS = range(60)


@pytest.fixture(scope="module")
def scenes() -> list[SegmentationRecord]:
    return make_generic_scenes(len(SEEDS), size=128)


def test_same_seed_same_scene_different_seed_different_scene():
    a, b, c = make_generic_scene(7), make_generic_scene(7), make_generic_scene(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert a.class_names == b.class_names and a.parents == b.parents
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, make_scene(7).image)  # its own stream, not lab scene 7


def test_generic_scene_is_the_same_on_every_machine():
    """A fingerprint fixed once: PCG64 and +, -, *, /, sqrt are the same bits everywhere, so a
    change here means the generator itself changed (and every shipped figure with it)."""
    digest = hashlib.sha256()
    for seed, size in ((0, 64), (1, (48, 80)), (2, 96), (3, (96, 64))):
        scene = make_generic_scene(seed, size)
        digest.update(scene.image.tobytes())
        digest.update(np.packbits(scene.masks).tobytes())
        digest.update(",".join(scene.class_names).encode())
        digest.update(repr(scene.parents).encode())
    assert digest.hexdigest()[:16] == GENERIC_FINGERPRINT


GENERIC_FINGERPRINT = "7b0ad57a2682e076"


def _depth(parents, i):
    depth = 0
    while parents[i] != -1:
        i, depth = parents[i], depth + 1
    return depth


def test_masks_are_exact_layers_and_parts_lie_inside_their_parents(scenes):
    for scene in scenes:
        assert len(scene) >= 1 and scene.masks.reshape(len(scene), -1).any(axis=1).all()
        depths = [_depth(scene.parents, i) for i in range(len(scene))]
        assert max(depths) <= 2  # whole, part, subpart
        for level in range(3):  # instances of one level never share a pixel
            same = [i for i, d in enumerate(depths) if d == level]
            if same:
                assert scene.masks[same].sum(axis=0).max() <= 1
        for i, parent in enumerate(scene.parents):
            if parent != -1:  # a part is inside its parent, and smaller than it
                assert parent < i
                assert not (scene.masks[i] & ~scene.masks[parent]).any()
                assert scene.masks[i].sum() < scene.masks[parent].sum()
        assert set(scene.class_names) <= set(SHAPES)


def test_scenes_hold_every_kind_of_thing(scenes):
    names = {name for scene in scenes for name in scene.class_names}
    assert names == set(SHAPES)
    parents = [p for scene in scenes for p in scene.parents]
    assert sum(p != -1 for p in parents) >= 0.1 * len(parents)  # many parts ...
    assert any(_depth(s.parents, i) == 2 for s in scenes for i in range(len(s)))  # ... subparts
    areas = np.concatenate([s.masks.reshape(len(s), -1).mean(axis=1) for s in scenes])
    assert areas.min() < 0.005 and areas.max() > 0.3  # small things and big things
    counts = [len(scene) for scene in scenes]
    assert min(counts) == 1 and max(counts) >= 8


def test_a_ring_has_a_hole():
    """Some ring's mask has background inside its outline: a pixel enclosed but not owned."""
    from scipy.ndimage import binary_fill_holes

    holes = 0
    for seed in range(80):
        scene = make_generic_scene(seed, config=GenericSceneConfig(part_probability=0.0))
        for name, mask in zip(scene.class_names, scene.masks, strict=True):
            if name == "ring":
                holes += int((binary_fill_holes(mask) & ~mask).sum() > 0)
    assert holes >= 3


@pytest.mark.parametrize("size", [64, (96, 160), (160, 120), (300, 200)])
def test_any_image_size(size):
    scene = make_generic_scene(3, size)
    shape = (size, size) if isinstance(size, int) else size
    assert scene.image.shape == (*shape, 3) and scene.masks.shape[1:] == shape


def test_config_controls_the_scene():
    one = GenericSceneConfig(min_objects=1, max_objects=1, part_probability=0.0, noise=0)
    for seed in range(10):
        scene = make_generic_scene(seed, config=one)
        assert len(scene) <= 1 and all(p == -1 for p in scene.parents)
    nested = GenericSceneConfig(part_probability=1.0, subpart_probability=1.0)
    assert any(p != -1 for p in make_generic_scene(0, config=nested).parents)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(seed=-1), "seed must be a non-negative int"),
    (dict(seed="3"), "seed must be a non-negative int"),
    (dict(seed=0, size=16), "size must be at least 32"),
    (dict(seed=0, size=(64, 64, 3)), r"size must be an int or an \(H, W\) pair"),
])
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_generic_scene(**kwargs)


def test_the_simple_preset_draws_flat_shapes_on_a_gradient():
    for seed in range(20):
        scene = make_generic_scene(seed, (120, 160), GenericSceneConfig.simple())
        assert set(scene.class_names) <= {"rectangle", "ellipse", "triangle"}
        assert all(p == -1 for p in scene.parents) and len(scene) >= 1
    rows = make_generic_scene(0, (120, 160), GenericSceneConfig(
        min_objects=1, max_objects=1, min_object_area=0.01, max_object_area=0.011,
        background_textures=("flat",), noise=0)).image
    corner = rows[0, 0].astype(int)  # a flat background is one colour, up to the jitter
    assert (abs(rows[0, :10].astype(int) - corner) <= 1).all()


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(min_objects=3, max_objects=2), "min_objects <= max_objects"),
    (dict(shapes=("square",)), "shapes must be a non-empty selection of"),
    (dict(object_textures=()), "object_textures must be a non-empty selection"),
    (dict(min_object_area=0.5, max_object_area=0.1), "min_object_area <= max_object_area"),
    (dict(part_probability=1.5), r"part_probability must be a number in \[0, 1\]"),
    (dict(noise=-1), "noise must be an int >= 0"),
    (dict(min_area=float("nan")), r"min_area must be a share of the image in \[0, 1\]; got nan"),
])
def test_bad_config(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        GenericSceneConfig(**kwargs)
