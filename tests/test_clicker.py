"""The RITM robot user on hand-made masks whose next click is known in advance."""

import numpy as np
import pytest

from samteach.evaluation.clicker import Click, Clicker, distance_to_boundary


def box(shape, rows, cols):
    """(H, W) bool with True on rows[0]..rows[1] x cols[0]..cols[1] (inclusive)."""
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = True
    return mask


EMPTY = np.zeros((20, 20), dtype=bool)


def test_first_click_is_the_centre_of_an_odd_square():
    gt = box((12, 15), rows=(2, 6), cols=(6, 10))  # 5x5, centre row 4, column 8
    clicker = Clicker(gt)
    assert clicker.make_next_click(np.zeros_like(gt)) == Click(x=8, y=4, is_positive=True)


def test_deeper_false_negative_gives_a_positive_click_at_its_deepest_point():
    gt = box((20, 20), rows=(2, 8), cols=(3, 9))  # 7x7 FN, depth 4 at row 5, column 6
    pred = box((20, 20), rows=(12, 14), cols=(12, 14))  # 3x3 FP, depth 2
    assert Clicker(gt).make_next_click(pred) == Click(x=6, y=5, is_positive=True)


def test_deeper_false_positive_gives_a_negative_click():
    gt = box((20, 20), rows=(12, 14), cols=(12, 14))  # 3x3 FN, depth 2
    pred = box((20, 20), rows=(2, 8), cols=(3, 9))  # 7x7 FP, depth 4
    assert Clicker(gt).make_next_click(pred) == Click(x=6, y=5, is_positive=False)


def test_deepest_region_wins_not_the_largest():
    gt = box((20, 20), rows=(15, 15), cols=(0, 19))  # a 1x20 FN sliver: 20 pixels, depth 1
    pred = box((20, 20), rows=(2, 4), cols=(2, 4))  # a 3x3 FP blob: 9 pixels, depth 2
    assert Clicker(gt).make_next_click(pred) == Click(x=3, y=3, is_positive=False)


def test_a_tie_gives_a_negative_click():
    gt = box((20, 20), rows=(2, 4), cols=(2, 4))  # 3x3 FN, depth 2
    pred = box((20, 20), rows=(10, 12), cols=(14, 16))  # 3x3 FP, depth 2
    assert Clicker(gt).make_next_click(pred) == Click(x=15, y=11, is_positive=False)


def test_equal_depths_go_to_the_first_pixel_in_row_major_order():
    # Two identical squares: top-right (centre row 2, col 11) and bottom-left (row 7, col 2).
    # Row-major order picks the upper one although it lies further right.
    gt = box((10, 14), rows=(1, 3), cols=(10, 12)) | box((10, 14), rows=(6, 8), cols=(1, 3))
    assert Clicker(gt).make_next_click(np.zeros_like(gt)) == Click(x=11, y=2, is_positive=True)


def test_an_even_square_is_clicked_at_its_top_left_deepest_pixel():
    gt = box((10, 10), rows=(3, 6), cols=(2, 5))  # 4x4: depth 2 on the central 2x2
    assert Clicker(gt).make_next_click(np.zeros_like(gt)) == Click(x=3, y=4, is_positive=True)


def test_a_clicked_pixel_is_never_clicked_again():
    gt = box((10, 10), rows=(3, 5), cols=(4, 6))  # 3x3: centre (row 4, col 5) has depth 2
    clicker = Clicker(gt)
    empty = np.zeros_like(gt)
    assert clicker.make_next_click(empty) == Click(x=5, y=4, is_positive=True)
    # Same prediction: the centre is taken, the next deepest (depth 1) is the top-left corner.
    assert clicker.make_next_click(empty) == Click(x=4, y=3, is_positive=True)
    assert clicker.make_next_click(empty) == Click(x=5, y=3, is_positive=True)


def test_perfect_prediction_gives_a_negative_click_at_the_origin():
    """RITM quirk: no error -> both maps are 0 -> a tie -> negative, at the first pixel (0, 0)."""
    gt = box((8, 8), rows=(0, 3), cols=(0, 3))  # (0, 0) is on the object, still "negative"
    clicker = Clicker(gt)
    assert clicker.make_next_click(gt.copy()) == Click(x=0, y=0, is_positive=False)
    assert clicker.make_next_click(gt.copy()) == Click(x=0, y=0, is_positive=False)


def test_the_image_border_counts_as_boundary():
    # A 5x3 mask in the top-left corner. With the border as boundary the deepest pixels
    # (depth 2) are rows 1-3 of column 1; without the padding, (0, 0) would be 3 from the
    # nearest background pixel and win.
    gt = box((10, 10), rows=(0, 4), cols=(0, 2))
    depth = distance_to_boundary(gt)
    assert depth.dtype == np.float32
    np.testing.assert_array_equal(depth[:5, :3], [[1, 1, 1], [1, 2, 1], [1, 2, 1], [1, 2, 1],
                                                  [1, 1, 1]])
    assert Clicker(gt).make_next_click(np.zeros_like(gt)) == Click(x=1, y=1, is_positive=True)


def test_distance_is_euclidean():
    region = np.ones((9, 9), dtype=bool)
    region[4, 4] = False  # a hole: (2, 2) is 3 from the border but sqrt(8) from the hole
    depth = distance_to_boundary(region)
    assert depth[2, 2] == np.float32(np.sqrt(8)) and depth[3, 3] == np.float32(np.sqrt(2))
    assert depth[0, 4] == 1 and depth[4, 4] == 0


def test_points_and_labels_are_ready_for_the_predictor():
    gt = box((20, 20), rows=(2, 8), cols=(3, 9))
    clicker = Clicker(gt)
    assert clicker.points.shape == (0, 2) and clicker.labels.shape == (0,)
    clicker.make_next_click(np.zeros_like(gt))
    clicker.make_next_click(gt | box((20, 20), rows=(12, 16), cols=(12, 16)))
    np.testing.assert_array_equal(clicker.points, [[6.0, 5.0], [14.0, 14.0]])  # (x, y)
    assert clicker.points.dtype == np.float64
    np.testing.assert_array_equal(clicker.labels, [1, 0])
    assert clicker.labels.dtype == np.int64
    assert all(type(v) is int for c in clicker.clicks for v in (c.x, c.y))
    clicker.reset()
    assert clicker.clicks == [] and clicker.points.shape == (0, 2)
    assert clicker.make_next_click(np.zeros_like(gt)) == Click(x=6, y=5, is_positive=True)


def test_click_is_frozen():
    with pytest.raises(AttributeError):
        Click(1, 2, True).x = 3


@pytest.mark.parametrize("gt, error, message", [
    (box((8, 8), (1, 3), (1, 3)).astype(np.uint8), TypeError, "gt_mask must have dtype bool"),
    (box((8, 8), (1, 3), (1, 3)).tolist(), TypeError, "gt_mask must be a numpy bool array"),
    (np.ones((2, 8, 8), dtype=bool), ValueError, r"gt_mask must have shape \(H, W\)"),
    (EMPTY, ValueError, "gt_mask is empty"),
])
def test_bad_gt_mask(gt, error, message):
    with pytest.raises(error, match=message):
        Clicker(gt)


@pytest.mark.parametrize("pred, error, message", [
    (np.zeros((20, 21), dtype=bool), ValueError,
     r"pred_mask must have shape \(20, 20\); got \(20, 21\)"),
    (np.zeros((20, 20), dtype=np.float32), TypeError, "pred_mask must have dtype bool"),
    (None, TypeError, "pred_mask must be a numpy bool array"),
])
def test_bad_pred_mask(pred, error, message):
    clicker = Clicker(box((20, 20), (2, 4), (2, 4)))
    with pytest.raises(error, match=message):
        clicker.make_next_click(pred)
    assert clicker.clicks == []
