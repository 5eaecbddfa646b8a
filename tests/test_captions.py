"""Captions from what the scene generators know (text prompts, SAM §7.5): colours, textures,
parts in their wholes; a caption names an instance only when no other instance shares it."""

import numpy as np
import pytest

from samteach.data import SegmentationRecord, make_scene
from samteach.data.colors import COLOR_NAMES, color_name
from samteach.data.generic import TEXTURES, make_generic_scene
from samteach.text import instance_captions, unique_captions


@pytest.mark.parametrize("rgb, name", [
    ((255, 0, 0), "red"), ((255, 150, 0), "orange"), ((250, 230, 20), "yellow"),
    ((0, 160, 0), "green"), ((0, 200, 200), "cyan"), ((20, 40, 230), "blue"),
    ((128, 0, 128), "purple"), ((255, 105, 180), "pink"), ((120, 60, 20), "brown"),
    ((128, 128, 128), "grey"), ((250, 250, 250), "white"), ((10, 10, 10), "black"),
])
def test_color_names(rgb, name):
    assert color_name(rgb) == name


def test_the_generators_record_what_they_painted():
    for seed in range(6):
        scene = make_scene(seed, 128)
        for name, attributes in zip(scene.class_names, scene.attributes, strict=True):
            if name in ("liquid", "solid", "powder", "foam", "cap", "label"):
                assert attributes["color"] in COLOR_NAMES
            else:  # glass vessels: no colour of their own to speak of
                assert "color" not in attributes
        generic = make_generic_scene(seed, 128)
        for attributes in generic.attributes:
            assert attributes["texture"] in TEXTURES
            assert attributes.get("color", "grey") in COLOR_NAMES


def _shown_color(record, i):
    """The colour word of what instance ``i`` shows itself: its mask less its parts'."""
    own = record.masks[i].copy()
    for j, parent in enumerate(record.parents):
        if parent == i:
            own &= ~record.masks[j]
    return color_name(np.median(record.image[own], axis=0))


def test_colour_words_are_true_of_the_picture():
    # A gradient's far end, see-through blending, shading and the camera's jitter move what is
    # seen away from the colour a generator chose; the word names what is seen.
    named = 0
    for seed in range(12):
        for record in (make_scene(seed, 128), make_generic_scene(seed, 128)):
            for i, attributes in enumerate(record.attributes):
                if "color" in attributes:
                    named += 1
                    assert attributes["color"] == _shown_color(record, i), (record.image_id, i)
    assert named > 50


def test_a_colour_is_named_from_the_pixels_an_instance_shows_itself():
    from samteach.data.canvas import Canvas

    canvas = Canvas(8, 8)
    whole = canvas.new_instance("flask")
    canvas.claim(np.s_[:, :], np.ones((8, 8), bool), whole)
    canvas.show_color(whole)
    canvas.paint(np.s_[:, :], np.ones((8, 8), bool), (20, 40, 230))  # blue ...
    canvas.paint(np.s_[:, :4], np.ones((8, 4), bool), (0, 160, 0), alpha=0.9)  # ... half green
    part = canvas.new_instance("label", parent=whole)
    canvas.claim(np.s_[:, 4:], np.ones((8, 4), bool), part)  # the blue half is hidden by a part
    canvas.paint(np.s_[:, 4:], np.ones((8, 4), bool), (250, 250, 250))
    record = canvas.record(1, "test")
    assert record.attributes[0] == {"color": "green"}  # the whole shows green only
    assert record.attributes[1] == {}  # the part was not marked: no colour word


def test_a_record_without_attributes_has_empty_ones():
    record = SegmentationRecord(np.zeros((8, 8, 3), np.uint8), np.ones((2, 8, 8), bool),
                                ("a", "b"))
    assert record.attributes == ({}, {})
    with pytest.raises(ValueError, match="attributes has 1 entries for 2 masks"):
        SegmentationRecord(np.zeros((8, 8, 3), np.uint8), np.ones((2, 8, 8), bool), ("a", "b"),
                           attributes=({},))


def _record(names, parents, attributes):
    masks = np.zeros((len(names), 8, 8), bool)
    for i in range(len(names)):
        masks[i, i] = True
    return SegmentationRecord(np.zeros((8, 8, 3), np.uint8), masks, names, parents,
                              attributes=attributes)


def test_captions_of_each_instance():
    record = _record(("bottle", "liquid", "label", "triangle"), (-1, 0, 0, -1),
                     ({}, {"color": "blue"}, {"color": "white"},
                      {"texture": "stripes", "color": "red"}))
    captions = instance_captions(record)
    assert captions[0] == ("bottle", "the bottle")
    assert captions[1] == ("liquid", "the liquid", "the blue liquid", "the liquid in the bottle",
                           "the blue liquid in the bottle")
    assert "the label on the bottle" in captions[2]  # labels sit on, liquids in
    assert captions[3] == ("triangle", "the triangle", "the striped triangle",
                           "the red triangle", "the striped red triangle")
    assert all(found[0] == name for found, name in zip(captions, record.class_names,
                                                        strict=True))


def test_a_caption_names_one_instance_only_if_no_other_shares_it():
    record = _record(("beaker", "liquid", "beaker", "liquid"), (-1, 0, -1, 2),
                     ({}, {"color": "blue"}, {}, {"color": "green"}))
    unique = unique_captions(record)
    assert unique[0] == () and unique[2] == ()  # two beakers: "the beaker" names neither
    assert unique[1] == ("the blue liquid", "the blue liquid in the beaker")
    assert "the liquid" not in unique[3] and "the green liquid" in unique[3]


def test_a_lab_scene():
    scene = make_scene(3, 128)
    unique = unique_captions(scene)
    bottle_liquid = next(i for i, (n, p) in enumerate(zip(scene.class_names, scene.parents,
                                                           strict=True))
                         if n == "liquid" and scene.class_names[p] == "bottle")
    assert "the liquid in the bottle" in unique[bottle_liquid]
    assert f"the {scene.attributes[bottle_liquid]['color']} liquid" in unique[bottle_liquid]
