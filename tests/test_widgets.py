"""ClickDemo headless: the browser's messages are sent to the widgets by hand.

A browser talks to the kernel through comm messages: ipycanvas sends ``mouse_down`` /
``mouse_move`` / ``mouse_up`` with canvas coordinates, ipyevents sends ``mousedown`` with the
button and modifiers. These tests send exactly those messages, through the same entry point the
comm uses, and assert on the session behind the picture. ipywidgets' dispatcher swallows
exceptions raised in callbacks, so every test asserts effects, never the absence of a raise.
"""

import re

import numpy as np
import pytest
import torch

from samteach import SamPredictor
from samteach.data.scenes import make_scene
from samteach.demo.widget import ClickDemo

from .conftest import SPILL_TARGET


@pytest.fixture
def demo(trained_tiny, spill_scene):
    return ClickDemo(trained_tiny, spill_scene.image, target=spill_scene.masks[SPILL_TARGET])


def comm(widget, content: dict) -> None:
    """Deliver a custom message as the kernel's comm does."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def click(demo, x, y, button=0, shift=False, canvas_first=True, to=None):
    """A press (and, with ``to``, a drag) as the browser reports it, in canvas pixels."""
    down = {"type": "mousedown", "button": button, "shiftKey": shift, "ctrlKey": False,
            "relativeX": x, "relativeY": y}
    messages = [(demo.canvas, {"event": "mouse_down", "x": x, "y": y}), (demo.events, down)]
    for widget, content in messages if canvas_first else messages[::-1]:
        comm(widget, content)
    if button == 2:
        comm(demo.events, {**down, "type": "contextmenu"})
    if to is not None:
        comm(demo.canvas, {"event": "mouse_move", "x": (x + to[0]) / 2, "y": (y + to[1]) / 2})
        comm(demo.canvas, {"event": "mouse_move", "x": to[0], "y": to[1]})
    end = to if to is not None else (x, y)
    comm(demo.canvas, {"event": "mouse_up", "x": end[0], "y": end[1]})


def test_left_click_is_foreground_right_or_shift_click_is_background(demo):
    click(demo, 162, 242)  # canvas 512 px for a 128 px image: pixel (40, 60)
    click(demo, 282, 250, button=2, canvas_first=False)
    click(demo, 202, 362, shift=True)
    assert demo.session.points.tolist() == [[40, 60], [70, 62], [50, 90]]
    assert demo.session.labels.tolist() == [1, 0, 0]
    assert demo.last_error is None
    assert "3 clicks (1 fg, 2 bg)" in demo.status.value


@pytest.mark.parametrize("canvas_first", [True, False])
def test_the_order_of_the_two_messages_does_not_matter(demo, canvas_first):
    click(demo, 162, 242, button=2, canvas_first=canvas_first)
    assert demo.session.labels.tolist() == [0]


def test_a_report_that_comes_after_the_release_still_labels_its_click(demo):
    click(demo, 162, 242)  # ipyevents has reported before: later clicks wait for their report
    for x in (282, 202):  # two clicks released before either report arrives
        comm(demo.canvas, {"event": "mouse_down", "x": x, "y": 250})
        comm(demo.canvas, {"event": "mouse_up", "x": x, "y": 250})
    assert demo.session.labels.tolist() == [1]  # both still waiting: nothing guessed
    comm(demo.events, {"type": "mousedown", "button": 2, "shiftKey": False})
    comm(demo.events, {"type": "mousedown", "button": 0, "shiftKey": False})
    assert demo.session.labels.tolist() == [1, 0, 1]
    assert demo.session.points.tolist() == [[40, 60], [70, 62], [50, 62]]
    click(demo, 100, 80, to=(400, 460))  # a box's report is never used for a later click
    click(demo, 282, 250, button=2)
    assert demo.session.labels.tolist() == [1, 0, 1, 0]


def test_in_a_kernel_a_click_gives_up_waiting_when_ipyevents_never_reports(demo, monkeypatch):
    import asyncio

    import samteach.demo.widget

    monkeypatch.setattr(samteach.demo.widget, "REPORT_WAIT", 0.05)

    async def clicks_in_a_kernel():  # handlers run inside the kernel's event loop
        comm(demo.canvas, {"event": "mouse_down", "x": 162, "y": 242})
        comm(demo.canvas, {"event": "mouse_up", "x": 162, "y": 242})
        waited = len(demo.session.points)
        await asyncio.sleep(0.2)
        comm(demo.canvas, {"event": "mouse_down", "x": 282, "y": 250})
        comm(demo.canvas, {"event": "mouse_up", "x": 282, "y": 250})
        return waited

    assert asyncio.run(clicks_in_a_kernel()) == 0  # the first click waited for its report
    # ... then counted as a left click; no ipyevents: later clicks are decided at once.
    assert demo.session.labels.tolist() == [1, 1] and demo.last_error is None


def test_a_click_without_ipyevents_message_is_foreground_unless_the_toggle_says_background(demo):
    comm(demo.canvas, {"event": "mouse_down", "x": 162, "y": 242})
    comm(demo.canvas, {"event": "mouse_up", "x": 162, "y": 242})
    demo.buttons.label.value = "background"
    comm(demo.canvas, {"event": "mouse_down", "x": 282, "y": 250})
    comm(demo.canvas, {"event": "mouse_up", "x": 282, "y": 250})
    assert demo.session.labels.tolist() == [1, 0]


def test_the_mask_follows_the_clicks(demo):
    click(demo, 162, 242)
    first = demo.session.mask.copy()
    assert first.any()
    fp = demo.session.error_regions()[1]
    y, x = np.argwhere(fp)[len(np.argwhere(fp)) // 2]
    click(demo, 4 * x + 2, 4 * y + 2, button=2)
    assert not np.array_equal(demo.session.mask, first)


def test_a_drag_draws_a_box_and_a_short_wobble_is_still_a_click(demo):
    click(demo, 100, 80, to=(400, 460))
    assert demo.session.box.tolist() == [25, 20, 100, 115] and len(demo.session.points) == 0
    click(demo, 162, 242, to=(165, 244))  # moved 3 px < DRAG_PIXELS
    assert demo.session.points.tolist() == [[40, 60]]
    assert demo.session.box.tolist() == [25, 20, 100, 115]


def test_a_drag_that_leaves_the_canvas_is_dropped(demo):
    comm(demo.canvas, {"event": "mouse_down", "x": 100, "y": 80})
    comm(demo.canvas, {"event": "mouse_move", "x": 300, "y": 300})
    comm(demo.canvas, {"event": "mouse_out", "x": 520, "y": 300})
    comm(demo.canvas, {"event": "mouse_up", "x": 520, "y": 300})
    assert demo.session.box is None and len(demo.session.points) == 0


@pytest.mark.parametrize(("size", "display_size"), [
    ((128, 128), 512), ((128, 128), 100), ((96, 160), 512), ((96, 160), 80),
    ((300, 200), 256), ((300, 200), 999), ((37, 251), 640),
])
def test_canvas_positions_map_to_the_image_pixel_under_them(trained_tiny, size, display_size):
    h, w = size
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    demo = ClickDemo(trained_tiny, image, display_size=display_size)
    cw, ch = demo.canvas.width, demo.canvas.height
    assert max(cw, ch) == display_size  # and the other side keeps the aspect ratio:
    scale = display_size / max(h, w)
    assert abs(ch - h * scale) <= 0.5 and abs(cw - w * scale) <= 0.5
    rng = np.random.default_rng(1)
    positions = [(0.0, 0.0), (cw - 0.01, ch - 0.01), (cw, ch)]
    positions += [tuple(p) for p in rng.uniform(0, 1, (5, 2)) * (cw, ch)]
    expected = []
    for x, y in positions:
        comm(demo.canvas, {"event": "mouse_down", "x": x, "y": y})
        comm(demo.canvas, {"event": "mouse_up", "x": x, "y": y})
        expected.append([min(int(np.floor(x * w / cw)), w - 1),
                         min(int(np.floor(y * h / ch)), h - 1)])
    assert demo.session.points.tolist() == expected
    assert demo.last_error is None


def test_clicks_outside_the_image_are_ignored_with_a_message(demo):
    for x, y in [(-3, 100), (100, 513), (600, 600)]:
        click(demo, x, y)
    assert len(demo.session.points) == 0
    assert "is outside the image" in demo.status.value and demo.last_error is None
    click(demo, 100, 100, to=(700, 100))  # a box that ends beyond the canvas
    assert demo.session.box is None and "must start and end on the image" in demo.status.value


def test_undo_reset_and_undo_on_an_empty_history(demo):
    demo.buttons.undo.click()
    assert "nothing to undo" in demo.status.value and demo.last_error is None
    click(demo, 162, 242)
    click(demo, 282, 250, button=2)
    demo.buttons.undo.click()
    assert demo.session.labels.tolist() == [1]
    demo.buttons.reset.click()
    assert len(demo.session.points) == 0 and not demo.session.mask.any()
    demo.buttons.undo.click()
    assert "nothing to undo" in demo.status.value


def test_mask_buttons_choose_among_the_first_clicks_three_masks(demo):
    assert demo.buttons.mask.disabled
    click(demo, 162, 242)
    prediction = demo.session.prediction
    assert not demo.buttons.mask.disabled and demo.buttons.mask.value == prediction.chosen
    assert len(demo.buttons.mask.tooltips) == 3
    other = (prediction.chosen + 1) % 3
    demo.buttons.mask.value = other
    assert np.array_equal(demo.session.mask, prediction.masks[other])
    click(demo, 282, 250, button=2)
    assert demo.buttons.mask.disabled and demo.buttons.mask.value is None


def test_teaching_mode_suggests_and_takes_the_robots_click(demo, spill_scene):
    assert demo.buttons.teach.value and not demo.buttons.teach.disabled
    suggestion = demo.session.suggest_click()
    demo.buttons.suggest.click()
    assert demo.session.points.tolist() == [[suggestion.x, suggestion.y]]
    assert "IoU with the target" in demo.status.value
    following = demo.session.suggest_click()
    kind = "foreground" if following.is_positive else "background"
    assert f"ritm would click {kind} at ({following.x}, {following.y})" in demo.status.value
    demo.buttons.teach.value = False  # the status line follows the toggle
    assert "IoU with the target" not in demo.status.value and "would click" not in demo.status.value
    demo.buttons.teach.value = True
    assert "IoU with the target" in demo.status.value


def test_with_the_training_rule_the_click_shown_is_the_click_taken(trained_tiny, spill_scene):
    torch.manual_seed(0)  # the training sampler draws from torch's default generator
    demo = ClickDemo(trained_tiny, spill_scene.image, target=spill_scene.masks[SPILL_TARGET],
                     rule="training")
    click(demo, 162, 242)
    shown = re.search(r"training would click (\w+) at \((\d+), (\d+)\)", demo.status.value)
    assert shown is not None, demo.status.value
    demo.buttons.suggest.click()
    assert demo.session.points[-1].tolist() == [int(shown[2]), int(shown[3])]
    assert demo.session.labels[-1] == int(shown[1] == "foreground")


def test_teaching_is_off_without_a_target(trained_tiny, spill_scene):
    demo = ClickDemo(trained_tiny, spill_scene.image)
    assert demo.buttons.teach.disabled and not demo.buttons.teach.value
    demo.buttons.suggest.click()
    assert "no suggestion" in demo.status.value and len(demo.session.points) == 0


def test_the_overlay_sent_to_the_browser_is_the_mask_and_the_error_regions(demo, monkeypatch):
    sent = {}
    for layer in range(3):
        monkeypatch.setattr(demo.canvas[layer], "put_image_data",
                            lambda array, x=0, y=0, layer=layer: sent.__setitem__(layer, array))
    kinds = set()
    for act in (demo.buttons.suggest.click,  # the robot's first click, at the object's centre
                # then "not this" on the liquid's bottom edge, pixel (22, 118): a little of the
                # liquid is now missed and some spill on the tube remains
                lambda: click(demo, 4 * 22 + 2, 4 * 118 + 2, button=2)):
        act()
        rgba = sent[1]
        assert rgba.shape == (128, 128, 4)  # the image's own pixels; the canvas enlarges them
        fn, fp = demo.session.error_regions()
        kind = demo.session.mask.astype(int)  # 1 mask (right), 2 missed, 3 spill, 0 nothing
        kind[fn], kind[fp] = 2, 3
        colour_of = {k: {tuple(c) for c in rgba[kind == k]} for k in np.unique(kind)}
        assert all(len(colours) == 1 for colours in colour_of.values())  # one colour per kind
        assert len({c for colours in colour_of.values() for c in colours}) == len(colour_of)
        assert set(rgba[kind == 0][:, 3]) == {0} and (rgba[kind > 0][:, 3] > 0).all()
        kinds |= set(colour_of)
    assert kinds == {0, 1, 2, 3}
    demo.buttons.teach.value = False  # teaching off: only the mask
    assert np.array_equal(sent[1][..., 3] > 0, demo.session.mask)
    sent.clear()
    comm(demo.canvas, {"event": "client_ready"})  # a new view of the widget: all redrawn
    assert set(sent) == {0, 1} and sent[0].shape == (128, 128, 4)


def test_big_images_are_sent_at_canvas_resolution(trained_tiny, monkeypatch):
    image = np.zeros((600, 900, 3), np.uint8)
    demo = ClickDemo(trained_tiny, image, display_size=300)
    sent = []
    monkeypatch.setattr(demo.canvas[0], "put_image_data",
                        lambda array, x=0, y=0: sent.append(array))
    demo._redraw()
    assert (demo.canvas.width, demo.canvas.height) == (300, 200) and sent[0].shape == (200, 300, 4)


def test_a_bad_image_is_reported_on_the_status_line_and_the_old_one_stays(demo, spill_scene):
    click(demo, 162, 242)
    for bad in (np.zeros((4, 4, 5), np.uint8), "no/such/file.png", None):
        demo.set_image(bad)
        assert "image" in demo.status.value and "previous image stays" in demo.status.value
        assert demo.session.points.tolist() == [[40, 60]]
    demo.set_image(make_scene(2).image)  # a good one replaces it: prompts start afresh
    assert len(demo.session.points) == 0 and demo.buttons.teach.disabled


def test_a_demo_built_on_a_bad_image_shows_the_error_and_ignores_clicks(trained_tiny):
    demo = ClickDemo(trained_tiny, np.zeros((4, 4), np.int64))
    assert demo.session is None and "dtype uint8" in demo.status.value
    click(demo, 10, 10)
    demo.buttons.undo.click()
    assert demo.session is None and repr(demo) == "ClickDemo(no image)"


def test_a_callback_that_fails_shows_its_error_instead_of_raising(demo, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(demo.session, "add_point", broken)
    click(demo, 162, 242)
    assert demo.last_error == "RuntimeError: decoder exploded"
    assert "decoder exploded" in demo.status.value and "#c00000" in demo.status.value


def test_status_shows_the_latency_and_any_samteach_predictor_works(trained_tiny, spill_scene):
    predictor = SamPredictor(trained_tiny)
    demo = ClickDemo(predictor, spill_scene.image)
    click(demo, 162, 242)
    assert demo.session.predictor is predictor
    assert 0 < demo.last_latency < 5 and "click → mask" in demo.status.value
    assert repr(demo) == "ClickDemo(128x128 image, canvas 512x512)"


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"predictor": "tiny"}, TypeError, "predictor must be a samteach SamPredictor or Sam"),
    ({"display_size": 8}, ValueError, r"display_size must be an int in \[16, 4096\]"),
    ({"display_size": 300.0}, TypeError, r"display_size must be an int in \[16, 4096\]"),
    ({"rule": "random"}, ValueError, "rule must be one of"),
])
def test_bad_arguments(trained_tiny, spill_scene, kwargs, error, message):
    arguments = {"predictor": trained_tiny, "image": spill_scene.image, **kwargs}
    with pytest.raises(error, match=message):
        ClickDemo(**arguments)
