"""Synthetic lab scenes: deterministic, consistent masks, nested instances, any size."""

import hashlib

import numpy as np
import pytest

from samteach.data import SegmentationRecord
from samteach.data.scenes import CLASS_NAMES, SceneConfig, make_scene, make_scenes

SEEDS = range(40)


@pytest.fixture(scope="module")
def scenes() -> list[SegmentationRecord]:
    return make_scenes(len(SEEDS), size=128)


def test_same_seed_same_scene_different_seed_different_scene():
    a, b, c = make_scene(7), make_scene(7), make_scene(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert a.class_names == b.class_names and a.parents == b.parents
    assert not np.array_equal(a.image, c.image)


def test_scene_is_the_same_on_every_machine():
    """A fingerprint of a few scenes, fixed once: numpy's PCG64 and IEEE arithmetic are
    platform-independent, so any change here means the generator itself changed."""
    digest = hashlib.sha256()
    for seed in (0, 1, 2):
        scene = make_scene(seed, 64)
        digest.update(scene.image.tobytes())
        digest.update(np.packbits(scene.masks).tobytes())
        digest.update(",".join(scene.class_names).encode())
    assert digest.hexdigest()[:16] == SCENE_FINGERPRINT


SCENE_FINGERPRINT = "abd5f90b314d86d9"


def test_a_solid_and_a_powder_look_different():
    """Two class names must be two looks, or no model could tell them apart from pixels (the
    tiny CLIP once could not): a solid is coarse grain (neighbouring pixels differ), a powder
    pale and fine (neighbours nearly agree)."""
    steps, light = {"solid": [], "powder": []}, {"solid": [], "powder": []}
    for scene in make_scenes(40, size=128):
        grey = scene.image.astype(np.float32).mean(-1)
        for mask, name in zip(scene.masks, scene.class_names, strict=True):
            pairs = mask[:, 1:] & mask[:, :-1]  # horizontal neighbours inside the instance
            if name in steps and pairs.sum() >= 10:
                steps[name].append(np.median(np.abs(np.diff(grey, axis=1))[pairs]))
                light[name].append(grey[mask].mean())
    assert len(steps["solid"]) >= 5 and len(steps["powder"]) >= 5
    assert np.median(steps["powder"]) < 0.5 * np.median(steps["solid"])
    assert np.median(light["powder"]) > np.median(light["solid"]) + 20


def test_every_mask_is_non_empty_and_the_layers_are_consistent(scenes):
    for scene in scenes:
        assert len(scene) >= 1 and scene.masks.reshape(len(scene), -1).any(axis=1).all()
        objects = [i for i, p in enumerate(scene.parents) if p == -1]
        parts = [i for i, p in enumerate(scene.parents) if p != -1]
        # objects never overlap each other (the nearest owns a pixel); nor do parts
        assert scene.masks[objects].sum(axis=0).max() <= 1
        if parts:
            assert scene.masks[parts].sum(axis=0).max() <= 1
        for i in parts:  # a part lies inside its object
            parent = scene.parents[i]
            assert scene.parents[parent] == -1
            assert not (scene.masks[i] & ~scene.masks[parent]).any()
        assert set(scene.class_names) <= set(CLASS_NAMES)


def test_scenes_are_varied(scenes):
    names = [name for scene in scenes for name in scene.class_names]
    assert {"beaker", "flask", "tube", "bottle", "cap", "liquid", "solid", "foam"} <= set(names)
    counts = [len(scene) for scene in scenes]
    assert min(counts) >= 2 and max(counts) >= 8  # several instances per image
    areas = np.concatenate([s.masks.reshape(len(s), -1).mean(axis=1) for s in scenes])
    assert areas.min() < 0.005 and areas.max() > 0.05  # small ones and big ones
    nested = sum(any(p != -1 for p in scene.parents) for scene in scenes)
    assert nested >= len(scenes) // 2  # most scenes hold the whole/part ambiguity


def test_contents_are_named_and_parented_to_vessels(scenes):
    for scene in scenes:
        for name, parent in zip(scene.class_names, scene.parents, strict=True):
            if name in ("liquid", "solid", "powder", "foam"):
                assert scene.class_names[parent] in ("beaker", "flask", "tube", "bottle")
            if name == "label":
                assert scene.class_names[parent] in ("beaker", "bottle")


@pytest.mark.parametrize("size", [64, (96, 160), (300, 200)])
def test_any_image_size(size):
    scene = make_scene(3, size)
    shape = (size, size) if isinstance(size, int) else size
    assert scene.image.shape == (*shape, 3) and scene.masks.shape[1:] == shape


def test_config_controls_the_scene():
    bare = make_scene(5, config=SceneConfig(min_vessels=1, max_vessels=1, noise=0, clutter=0,
                                            empty_probability=1.0, label_probability=0.0))
    assert bare.parents.count(-1) in (1, 2)  # one vessel (and a cap if it is a bottle)
    assert all(p == -1 for p in bare.parents)  # nothing inside
    noisy = make_scene(5, config=SceneConfig(min_vessels=1, max_vessels=1, noise=20))
    assert not np.array_equal(bare.image, noisy.image)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(seed=-1), "seed must be a non-negative int"),
    (dict(seed=1.5), "seed must be a non-negative int"),
    (dict(seed=0, size=16), "size must be at least 32"),
    (dict(seed=0, size=(64,)), r"size must be an int or an \(H, W\) pair"),
])
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_scene(**kwargs)


def test_bad_config():
    with pytest.raises(ValueError, match="min_vessels <= max_vessels"):
        SceneConfig(min_vessels=3, max_vessels=2)
    with pytest.raises(ValueError, match=r"empty_probability must be a number in \[0, 1\]"):
        SceneConfig(empty_probability=2.0)
    # NaN used to reach int(min_area * H * W): "cannot convert float NaN to integer"
    with pytest.raises(ValueError, match=r"min_area must be a share of the image in \[0, 1\]"):
        SceneConfig(min_area=float("nan"))
    with pytest.raises(TypeError, match="clutter must be an int >= 0; got float"):
        SceneConfig(clutter=2.5)
