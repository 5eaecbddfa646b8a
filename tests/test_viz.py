"""samteach.viz draws what it promises, on numpy or torch input, and names bad arguments.

Each test checks the artists a helper leaves on the axes (overlay pixels, scatter colours and
counts, line data), not just that it runs. Agg backend; every figure is closed after its test.
"""

import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from samteach import viz
from samteach.data.record import SegmentationRecord

matplotlib.use("Agg")  # no window, even where MPLBACKEND names one

# Warnings count as output a notebook would show; a plot helper must emit none.
pytestmark = pytest.mark.filterwarnings("error")

H, W = 32, 48
IMAGE = (np.arange(H * W * 3) % 251).astype(np.uint8).reshape(H, W, 3)
OUTER = np.zeros((H, W), bool)
OUTER[4:28, 6:40] = True  # a beaker
INNER = np.zeros((H, W), bool)
INNER[14:24, 10:30] = True  # the liquid inside it


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def ax():
    return viz.show_image(IMAGE)


def record(parents=(-1, 0)) -> SegmentationRecord:
    return SegmentationRecord(IMAGE, np.stack([OUTER, INNER]), ("beaker", "liquid"), parents)


def overlay(ax: Axes, k: int = -1) -> np.ndarray:
    """The RGBA array of the k-th image on ``ax`` (index 0 is the photograph)."""
    return np.asarray(ax.images[k].get_array())


def scatters(ax: Axes) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_import_samteach_does_not_load_matplotlib():
    code = "import sys, samteach; assert 'matplotlib' not in sys.modules, 'matplotlib loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ---------------------------------------------------------------- show_image


@pytest.mark.parametrize("image", [
    IMAGE,
    IMAGE / 255.0,
    torch.from_numpy(IMAGE).permute(2, 0, 1),  # (3, H, W) as a model takes it
    torch.from_numpy(IMAGE / 255.0).float().permute(2, 0, 1),
])
def test_show_image(image):
    ax = viz.show_image(image)
    assert isinstance(ax, Axes) and not ax.axison
    shown = overlay(ax, 0)
    assert shown.shape == (H, W, 3)
    expected = IMAGE if shown.dtype == np.uint8 else IMAGE / 255.0
    np.testing.assert_allclose(shown, expected, atol=1e-6)


def test_show_image_draws_on_the_given_axes():
    _, given = plt.subplots()
    assert viz.show_image(IMAGE, given) is given and len(given.images) == 1


@pytest.mark.parametrize("image, error, message", [
    (IMAGE[None], ValueError, r"image must have shape \(H, W, 3\).*\(1, 32, 48, 3\)"),
    (np.zeros((H, W, 5), np.uint8), ValueError, r"image must have shape.*\(32, 48, 5\)"),
    (IMAGE * 1.0, ValueError, r"image as floats must lie in \[0, 1\].*255"),
    (IMAGE > 0, TypeError, "image must have dtype uint8"),
    ("photo.png", ValueError, "image photo.png does not exist"),
    ({"pixels": 1}, TypeError, "image must be a numpy array"),
])
def test_show_image_bad_input(image, error, message):
    with pytest.raises(error, match=message):
        viz.show_image(image)


# ---------------------------------------------------------------- show_mask


def test_show_mask_overlay_is_opaque_exactly_on_the_mask(ax):
    assert viz.show_mask(INNER, ax) is ax
    rgba = overlay(ax)
    assert rgba.shape == (H, W, 4)
    np.testing.assert_array_equal(rgba[..., 3] > 0, INNER)
    np.testing.assert_allclose(rgba[INNER][:, 3], 0.5)
    np.testing.assert_allclose(rgba[INNER][:, :3], np.tile(viz.MASK_COLOR, (INNER.sum(), 1)))


def test_show_mask_colour_alpha_outline_and_tensors(ax):
    viz.show_mask(torch.from_numpy(OUTER)[None], ax, color="red", alpha=0.25, outline=False)
    rgba = overlay(ax)
    np.testing.assert_array_equal(rgba[..., 3] > 0, OUTER)
    np.testing.assert_allclose(rgba[OUTER][0], (1, 0, 0, 0.25))
    assert len(ax.collections) == 0  # no outline asked for
    viz.show_mask(torch.from_numpy(INNER).float(), ax)  # 0/1 floats are a mask too
    assert len(ax.collections) == 1  # the contour of INNER
    np.testing.assert_array_equal(overlay(ax)[..., 3] > 0, INNER)


def test_show_mask_empty_or_full_mask_draws_no_outline(ax):
    viz.show_mask(np.zeros((H, W), bool), ax)
    viz.show_mask(np.ones((H, W), bool), ax)
    assert len(ax.images) == 3 and len(ax.collections) == 0
    assert not overlay(ax, 1)[..., 3].any() and overlay(ax, 2)[..., 3].all()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"mask": OUTER[:16]}, ValueError, r"mask must have shape \(32, 48\) to match the image; "
                                       r"got \(16, 48\)"),
    ({"mask": np.stack([OUTER, INNER])}, ValueError, r"mask must be an \(H, W\) mask.*\(2, "),
    ({"mask": OUTER * 3.5}, TypeError, "mask must be a bool mask.*mask > 0"),
    ({"mask": OUTER, "color": "no-such-colour"}, ValueError, "color must be a matplotlib colour"),
    ({"mask": OUTER, "alpha": 2}, ValueError, r"alpha must be a number in \[0, 1\]"),
])
def test_show_mask_bad_input(ax, kwargs, error, message):
    with pytest.raises(error, match=message):
        viz.show_mask(ax=ax, **kwargs)


def test_show_mask_needs_axes():
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        viz.show_mask(OUTER, None)


# ---------------------------------------------------------------- show_points and show_box


def test_show_points_one_collection_per_label_kind(ax):
    points = torch.tensor([[5.0, 6.0], [20, 10], [30, 12], [40, 20], [0, 0], [2, 3], [45, 30]])
    labels = torch.tensor([1, 1, 0, 1, -1, 2, 3])
    assert viz.show_points(points, labels, ax) is ax
    drawn = {c.get_label(): c for c in scatters(ax)}
    assert list(drawn) == ["foreground", "background", "box top-left", "box bottom-right"]
    expected = {"foreground": ("green", [[5, 6], [20, 10], [40, 20]]),
                "background": ("red", [[30, 12]]),
                "box top-left": ("lime", [[2, 3]]),
                "box bottom-right": ("lime", [[45, 30]])}
    for name, (color, xy) in expected.items():
        np.testing.assert_allclose(drawn[name].get_offsets(), xy)
        np.testing.assert_allclose(drawn[name].get_facecolor()[0], mcolors.to_rgba(color))
        np.testing.assert_allclose(drawn[name].get_edgecolor()[0], mcolors.to_rgba("white"))
    assert drawn["foreground"].get_sizes()[0] == 375
    assert drawn["box top-left"].get_sizes()[0] < 375  # corners are small squares


def test_show_points_only_background(ax):
    viz.show_points(np.array([[3, 4], [5, 6]]), np.array([0, 0]), ax, marker_size=100)
    (only,) = scatters(ax)
    assert only.get_label() == "background" and len(only.get_offsets()) == 2
    assert only.get_sizes()[0] == 100


@pytest.mark.parametrize("points, labels, message", [
    ([3, 4], [1], r"points must be \(N, 2\) pixel \(x, y\) coordinates; got shape \(2,\)"),
    ([[3, 4, 5]], [1], r"points must be \(N, 2\).*\(1, 3\)"),
    ([[3, 4], [5, 6]], [1, 0, 1], "labels has 3 entries but points has 2 points"),
    ([[3, 4]], [7], r"labels must be in \{-1, 0, 1, 2, 3\}.*\[7\]"),
])
def test_show_points_bad_input(ax, points, labels, message):
    with pytest.raises(ValueError, match=message):
        viz.show_points(points, labels, ax)


def test_show_box(ax):
    assert viz.show_box(torch.tensor([[6.0, 4, 40, 28]]), ax) is ax
    (box,) = ax.patches
    assert isinstance(box, Rectangle)
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (6, 4, 34, 24)
    np.testing.assert_allclose(box.get_edgecolor(), mcolors.to_rgba("lime"))
    assert box.get_facecolor()[3] == 0  # unfilled
    viz.show_box([0, 0, 10, 10], ax, color="orange")
    np.testing.assert_allclose(ax.patches[1].get_edgecolor(), mcolors.to_rgba("orange"))


@pytest.mark.parametrize("box, message", [
    ([1, 2, 3], r"box must be 4 numbers x0, y0, x1, y1.*\(3,\)"),
    ([40, 4, 6, 28], "box must be x0, y0, x1, y1 with x0 <= x1"),
])
def test_show_box_bad_input(ax, box, message):
    with pytest.raises(ValueError, match=message):
        viz.show_box(box, ax)


# ---------------------------------------------------------------- show_record


def test_show_record_one_overlay_and_one_name_per_instance():
    ax = viz.show_record(record())
    assert len(ax.images) == 1 + 2  # the photograph, then one overlay per instance
    for k, (mask, color) in enumerate([(OUTER, viz.PALETTE[0]), (INNER, viz.PALETTE[1])]):
        rgba = overlay(ax, 1 + k)
        np.testing.assert_array_equal(rgba[..., 3] > 0, mask)
        np.testing.assert_allclose(rgba[mask][0, :3], mcolors.to_rgb(color))
    names = {t.get_text(): t.get_position() for t in ax.texts}
    assert names == {"beaker": (22.5, 15.5), "liquid": (19.5, 18.5)}  # centres of mass
    assert all(t.get_color() == "white" and t.get_path_effects() for t in ax.texts)


def test_show_record_draws_wholes_before_parts():
    # The part comes first in the record; it must still be drawn last, on top of its whole.
    parts_first = SegmentationRecord(IMAGE, np.stack([INNER, OUTER]), ("liquid", "beaker"),
                                     (1, -1))
    ax = viz.show_record(parts_first, names=False)
    np.testing.assert_array_equal(overlay(ax, 1)[..., 3] > 0, OUTER)
    np.testing.assert_array_equal(overlay(ax, 2)[..., 3] > 0, INNER)
    np.testing.assert_allclose(overlay(ax, 2)[INNER][0, :3], mcolors.to_rgb(viz.PALETTE[0]))
    assert len(ax.texts) == 0


def test_show_record_max_instances_keeps_the_largest():
    _, given = plt.subplots()
    ax = viz.show_record(record(), given, max_instances=1)
    assert ax is given and len(ax.images) == 2 and [t.get_text() for t in ax.texts] == ["beaker"]


def test_show_record_bad_input():
    with pytest.raises(TypeError, match="record must be a SegmentationRecord"):
        viz.show_record(IMAGE)
    with pytest.raises(ValueError, match="max_instances must be a non-negative int"):
        viz.show_record(record(), max_instances=-1)
    with pytest.raises(ValueError, match="record.parents has a cycle"):
        viz.show_record(record(parents=(1, 0)))


def test_show_record_is_deterministic():
    renders = []
    for _ in range(2):
        fig = viz.show_record(record()).figure
        fig.canvas.draw()
        renders.append(np.asarray(fig.canvas.buffer_rgba()).copy())
    np.testing.assert_array_equal(*renders)


# ---------------------------------------------------------------- show_error_regions


def test_show_error_regions_colours_fn_and_fp_only(ax):
    pred = np.zeros((H, W), bool)
    pred[10:30, 20:46] = True  # misses the beaker's left part, spills right and down
    fn, fp = OUTER & ~pred, ~OUTER & pred
    assert fn.any() and fp.any()
    assert viz.show_error_regions(torch.from_numpy(pred), OUTER, ax) is ax
    rgba = overlay(ax)
    np.testing.assert_array_equal(rgba[..., 3] > 0, fn | fp)
    np.testing.assert_allclose(np.unique(rgba[fn], axis=0), [(*mcolors.to_rgb(viz.FN_COLOR), 0.6)])
    np.testing.assert_allclose(np.unique(rgba[fp], axis=0), [(*mcolors.to_rgb(viz.FP_COLOR), 0.6)])
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["missed (FN)", "spill (FP)"]


def test_show_error_regions_custom_colours(ax):
    viz.show_error_regions(INNER, OUTER, ax, fn_color="yellow", fp_color="magenta")
    rgba = overlay(ax)
    np.testing.assert_allclose(rgba[OUTER & ~INNER][0, :3], (1, 1, 0))
    assert not rgba[INNER, 3].any()  # nothing spilled, nothing coloured inside the liquid


@pytest.mark.parametrize("pred, gt, message", [
    (OUTER, INNER[:, :20], r"gt must have shape \(32, 48\) to match pred; got \(32, 20\)"),
    (OUTER[:20], INNER[:20], r"pred must have shape \(32, 48\) to match the image"),
])
def test_show_error_regions_bad_shapes(ax, pred, gt, message):
    with pytest.raises(ValueError, match=message):
        viz.show_error_regions(pred, gt, ax)


# ---------------------------------------------------------------- plot_miou_curve


def test_plot_miou_curve():
    curves = {"single-round": [0.5, 0.6, 0.65], "interactive": torch.tensor([0.55, 0.75, 0.85]),
              "sparse": {1: 0.4, 3: 0.7, 5: 0.9}}
    ax = viz.plot_miou_curve(curves)
    assert len(ax.lines) == 3
    for line, (label, values) in zip(ax.lines, curves.items(), strict=True):
        assert line.get_label() == label and line.get_marker() not in (None, "None", "")
        if isinstance(values, dict):
            np.testing.assert_allclose(line.get_xdata(), list(values))
            np.testing.assert_allclose(line.get_ydata(), list(values.values()))
        else:
            np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
            np.testing.assert_allclose(line.get_ydata(), values, rtol=1e-6)
    assert ax.get_ylim() == (0, 1)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("clicks", "mIoU")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(curves)
    assert any(g.get_visible() for g in ax.get_ygridlines())
    assert len({line.get_color() for line in ax.lines}) == 3


@pytest.mark.parametrize("curves, error, message", [
    ({}, TypeError, "curves must be a non-empty dict"),
    ([0.5, 0.6], TypeError, "curves must be a non-empty dict"),
    ({"a": [55.0, 70.0]}, ValueError, r"curves\['a'\] must hold mIoU values in \[0, 1\].*100"),
    ({"a": []}, ValueError, r"curves\['a'\] is empty"),
    ({"a": [[0.5, 0.6]]}, ValueError, r"curves\['a'\] must be a 1-D sequence"),
])
def test_plot_miou_curve_bad_input(curves, error, message):
    with pytest.raises(error, match=message):
        viz.plot_miou_curve(curves)


# ---------------------------------------------------------------- show_masks_grid


def test_show_masks_grid_titles_from_scores():
    masks = torch.from_numpy(np.stack([INNER, OUTER, OUTER | INNER]))[None]  # (1, 3, H, W)
    fig = viz.show_masks_grid(IMAGE, masks, scores=torch.tensor([0.9123, 0.5, 0.25]))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["mask 1, score 0.912", "mask 2, score 0.500", "mask 3, score 0.250"]
    for ax, mask in zip(fig.axes, [INNER, OUTER, OUTER], strict=True):
        assert len(ax.images) == 2 and not ax.axison
        np.testing.assert_array_equal(overlay(ax)[..., 3] > 0, mask)


def test_show_masks_grid_titles():
    fig = viz.show_masks_grid(IMAGE, [OUTER, INNER], titles=["whole", "part"])
    assert [ax.get_title() for ax in fig.axes] == ["whole", "part"]
    assert viz.show_masks_grid(IMAGE, OUTER).axes[0].get_title() == "mask 1"


@pytest.mark.parametrize("masks, kwargs, message", [
    (np.stack([OUTER[:16]] * 2), {}, r"masks must have shape \(K, 32, 48\).*\(2, 16, 48\)"),
    ([OUTER, INNER[:, :8]], {}, r"masks\[1\] must have shape \(32, 48\)"),
    ([OUTER, INNER], {"scores": [0.9]}, "scores has 1 entries but masks has 2 masks"),
    ([OUTER], {"titles": ["a", "b"]}, "titles has 2 entries but masks has 1 masks"),
])
def test_show_masks_grid_bad_input(masks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        viz.show_masks_grid(IMAGE, masks, **kwargs)


# ---------------------------------------------------------------- quiet


def test_helpers_print_nothing(capsys):
    ax = viz.show_record(record())
    viz.show_points([[5, 5], [10, 10]], [1, 0], ax)
    viz.show_box([6, 4, 40, 28], ax)
    viz.show_error_regions(INNER, OUTER, ax)
    viz.plot_miou_curve({"a": [0.5, 0.9]})
    viz.show_masks_grid(IMAGE, [OUTER, INNER], scores=[0.9, 0.8])
    for number in plt.get_fignums():
        plt.figure(number).canvas.draw()
    assert capsys.readouterr() == ("", "")
