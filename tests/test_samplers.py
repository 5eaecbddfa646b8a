"""The training prompt samplers (SAM App. A): where points, boxes and clicks land, and how often."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt

from samteach.modeling import PromptEncoder
from samteach.training import samplers
from samteach.training.samplers import (
    FirstPrompts,
    append_clicks,
    distance_transform,
    jitter_boxes,
    mask_to_box,
    sample_boxes,
    sample_error_clicks,
    sample_first_prompts,
    sample_points,
)
from samteach.utils import masks as mask_utils

N = 10_000  # samples per statistical test: binomial / std errors of about 1%
S = 64  # side of the hand-made masks


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def edt(masks: np.ndarray) -> np.ndarray:
    """scipy's distance transform with everything outside the image counted as background."""
    return np.stack([distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1] for m in masks])


def hand_made_masks() -> torch.Tensor:
    """(6, S, S): a disk, a ring (a hole to miss), an L, a lone pixel, a diagonal line, a corner."""
    y, x = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    r2 = (x - 30) ** 2 + (y - 34) ** 2
    disk = r2 < 20**2
    ring = (r2 < 25**2) & (r2 > 15**2)
    ell = ((x >= 5) & (x < 15) & (y >= 5) & (y < 60)) | ((x >= 5) & (x < 55) & (y >= 50) & (y < 60))
    pixel = (x == 40) & (y == 7)
    line = (x == y) & (x > 3) & (x < 60)
    corner = (x > 44) & (y > 50)  # touches the bottom and right border
    return torch.stack([disk, ring, ell, pixel, line, corner])


MASKS = hand_made_masks()


def many(masks: torch.Tensor, n: int = N) -> torch.Tensor:
    """(n, H, W): the masks repeated (cycling) to n samples."""
    return masks[torch.arange(n) % len(masks)]


def inside(masks: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B,) is each (x, y) point a pixel of its mask?"""
    x, y = points[:, 0].long(), points[:, 1].long()
    return masks[torch.arange(len(masks)), y, x]


# ------------------------------------------------------------------------ distance transform


def test_distance_transform_matches_scipy():
    rng = np.random.default_rng(0)
    cases = [MASKS.numpy(), np.ones((2, 7, 5), bool), np.zeros((1, 3, 9), bool)]
    for h, w in [(1, 1), (1, 17), (23, 1), (31, 48), (48, 31), (64, 64)]:
        cases.append(rng.random((4, h, w)) < rng.uniform(0.3, 0.98))
    for masks in cases:
        expected = edt(masks)
        actual = distance_transform(masks)
        assert actual.shape == masks.shape and actual.dtype == torch.float32
        np.testing.assert_allclose(actual.numpy(), expected, atol=1e-5, rtol=0)


def test_distance_transform_is_the_same_in_small_chunks(monkeypatch):
    masks = many(MASKS, 13)
    expected = distance_transform(masks)
    monkeypatch.setattr(mask_utils, "_CHUNK_PIXELS", 3 * S * S)  # 3 masks per chunk, then 1
    torch.testing.assert_close(distance_transform(masks), expected, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["uniform", "center", "clicks"])
def test_samples_do_not_depend_on_the_chunk_size(name, monkeypatch):
    masks = many(MASKS, 13)
    expected = SAMPLERS[name](masks, gen())
    monkeypatch.setattr(samplers, "_CHUNK_PIXELS", 3 * S * S)
    actual = SAMPLERS[name](masks, gen())
    for a, e in zip(actual if name == "clicks" else (actual,),
                    expected if name == "clicks" else (expected,), strict=True):
        assert torch.equal(a, e)


def test_mask_to_box_is_inclusive():
    boxes = mask_to_box(MASKS)
    for mask, box in zip(MASKS, boxes, strict=True):
        ys, xs = np.nonzero(mask.numpy())
        assert box.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]


# -------------------------------------------------------------------------------- randomness


SAMPLERS = {
    "uniform": lambda m, g: sample_points(m, g),
    "center": lambda m, g: sample_points(m, g, mode="center"),
    "boxes": lambda m, g: sample_boxes(m, g),
    "clicks": lambda m, g: sample_error_clicks(m.roll(3, dims=2), m, g),
    "first": lambda m, g: (lambda f: (f.points, f.labels, f.is_box))(sample_first_prompts(m, g)),
}


def outputs(name: str, masks: torch.Tensor, seed: int) -> tuple[torch.Tensor, ...]:
    out = SAMPLERS[name](masks, gen(seed))
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", SAMPLERS)
def test_same_seed_same_prompts_other_seed_other_prompts(name):
    masks = many(MASKS, 60)
    first, again, other = (outputs(name, masks, seed) for seed in (1, 1, 2))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(first, other, strict=True))


def test_numpy_masks_give_the_same_tensors():
    points = sample_points(MASKS.numpy(), gen(3), mode="center")
    assert isinstance(points, torch.Tensor)
    assert torch.equal(points, sample_points(MASKS, gen(3), mode="center"))


# ------------------------------------------------------------------------------------ points


@pytest.mark.parametrize("mode", ["uniform", "center"])
def test_points_lie_inside_their_masks(mode):
    masks = many(MASKS)
    points = sample_points(masks, gen(), mode=mode)
    assert points.shape == (N, 2) and points.dtype == torch.float32
    assert inside(masks, points).all()


@pytest.mark.parametrize("mode", ["uniform", "center"])
def test_point_frequencies_follow_the_weights(mode):
    """On a 5x6 block every pixel is hit in proportion to 1 ("uniform") or its depth ("center")."""
    mask = torch.zeros(1, 9, 9, dtype=torch.bool)
    mask[0, 2:7, 1:7] = True
    points = sample_points(mask.expand(N, 9, 9), gen(), mode=mode)
    counts = torch.zeros(9, 9)
    counts.index_put_((points[:, 1].long(), points[:, 0].long()), torch.ones(N), accumulate=True)
    weights = mask[0].float() if mode == "uniform" else distance_transform(mask)[0]
    expected = N * weights / weights.sum()
    # Each count is binomial: within 4.5 standard deviations everywhere.
    assert ((counts - expected).abs() <= 4.5 * expected.clamp(min=1).sqrt()).all()


def test_center_points_are_deeper_than_uniform_points():
    n = 2000
    masks = many(MASKS, n)
    depth = torch.from_numpy(edt(MASKS.numpy()))[torch.arange(n) % len(MASKS)]

    def mean_depth(points):
        return depth[torch.arange(n), points[:, 1].long(), points[:, 0].long()].mean()

    uniform = mean_depth(sample_points(masks, gen(), mode="uniform"))
    center = mean_depth(sample_points(masks, gen(), mode="center"))
    assert center > 1.2 * uniform


# ------------------------------------------------------------------------------------- boxes


def rectangle(size: int, x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
    mask = torch.zeros(1, size, size, dtype=torch.bool)
    mask[0, y0:y1 + 1, x0:x1 + 1] = True
    return mask


def test_box_noise_is_ten_percent_of_the_side():
    """Width 50, height 30 in a 128 px image: the 20 px cap is 4 sigma or more, rarely binding."""
    mask = rectangle(128, 40, 50, 90, 80).expand(N, 128, 128)
    shift = sample_boxes(mask, gen()) - torch.tensor([40.0, 50.0, 90.0, 80.0])
    expected_std = torch.tensor([5.0, 3.0, 5.0, 3.0])  # 10% of width, height, width, height
    torch.testing.assert_close(shift.std(dim=0), expected_std, rtol=0.03, atol=0)
    assert (shift.mean(dim=0).abs() < 4 * expected_std / math.sqrt(N)).all()


def test_box_noise_is_capped_at_twenty_pixels():
    """A 960 px box: 10% would be 96 px, so the 20 px cap binds most of the time."""
    tight = [30.0, 32.0, 990.0, 992.0]
    mask = rectangle(1024, *map(int, tight)).expand(200, 1024, 1024)
    shift = sample_boxes(mask, gen()) - torch.tensor(tight)
    assert shift.abs().max() <= 20.0
    assert (shift.abs() == 20.0).float().mean() > 0.7  # capped, not merely small


def test_boxes_stay_in_the_image_and_ordered():
    masks = many(MASKS, 6000)
    boxes = sample_boxes(masks, gen(), noise_std=3.0, max_noise=60.0)  # wild noise: flips happen
    assert (boxes >= 0).all() and (boxes <= S - 1).all()
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()


def test_no_noise_gives_the_tight_box():
    assert torch.equal(sample_boxes(MASKS, gen(), noise_std=0.0), mask_to_box(MASKS))


def test_jitter_boxes_is_sample_boxes_with_the_noise_given():
    """sample_boxes = jitter_boxes(tight box, its own N(0, 1) draws): by hand on one box too."""
    noise = torch.randn(len(MASKS), 4, generator=gen(3))
    assert torch.equal(jitter_boxes(mask_to_box(MASKS), noise, (S, S)), sample_boxes(MASKS, gen(3)))
    box = torch.tensor([[10.0, 20.0, 60.0, 420.0]])  # width 50, height 400, in a 430 x 100 image
    moved = jitter_boxes(box, torch.tensor([[1.0, -1.0, 2.0, 0.25]]), (430, 100))
    # x0 + 5 px; y0 - 40 px capped at 20 (then clipped to 0); x1 + 10; y1 + 10 clipped to row 429
    assert moved.tolist() == [[15.0, 0.0, 70.0, 429.0]]
    with pytest.raises(ValueError, match=r"boxes and noise must both be \(B, 4\)"):
        jitter_boxes(box, torch.zeros(1, 2), (430, 100))


# ------------------------------------------------------------------------------ error clicks


def error_pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """gt a 20x20 square; pred shifted right by 5 and down by 2: FN and FP of different sizes."""
    gt = rectangle(S, 10, 10, 29, 29)
    pred = rectangle(S, 15, 12, 36, 31)  # 22 x 20: more spill than misses
    return pred, gt, gt & ~pred, ~gt & pred


def test_error_clicks_are_labelled_by_region():
    pred, gt, fn, fp = (t.expand(N, S, S) for t in error_pair())
    points, labels = sample_error_clicks(pred, gt, gen())
    assert points.shape == (N, 2) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == {0, 1}
    assert inside(fn[labels == 1], points[labels == 1]).all()  # missed pixel -> foreground click
    assert inside(fp[labels == 0], points[labels == 0]).all()  # spill -> background click


def test_error_clicks_pick_fn_or_fp_by_area():
    pred, gt, fn, fp = error_pair()
    share = fn.sum() / (fn.sum() + fp.sum())  # 140 / (140 + 180)
    _, labels = sample_error_clicks(pred.expand(N, S, S), gt.expand(N, S, S), gen())
    observed = (labels == 1).float().mean()
    assert abs(observed - share) < 4 * math.sqrt(share * (1 - share) / N)


def test_no_error_gives_a_padding_click():
    pred, gt, _, _ = error_pair()
    pred = torch.cat([pred, gt, gt, pred])  # masks 1 and 2 are perfect
    points, labels = sample_error_clicks(pred, gt.expand(4, S, S), gen())
    assert labels[1:3].tolist() == [-1, -1] and (points[1:3] == 0).all()
    assert (labels[[0, 3]] >= 0).all()


def test_error_clicks_need_no_ground_truth_pixels():
    """An empty ground truth is legal here: every predicted pixel is spill."""
    gt = torch.zeros(1, S, S, dtype=torch.bool)
    points, labels = sample_error_clicks(MASKS[:1], gt, gen())
    assert labels.tolist() == [0] and inside(MASKS[:1], points).all()


# ----------------------------------------------------------------------------- first prompts


@pytest.mark.parametrize("p_box", [0.0, 0.3, 1.0])
def test_share_of_box_prompts_is_p_box(p_box):
    first = sample_first_prompts(many(MASKS), gen(), p_box=p_box)
    share = first.is_box.float().mean().item()
    assert abs(share - p_box) < 4 * math.sqrt(p_box * (1 - p_box) / N) + 1e-9


def test_first_prompt_token_layout():
    masks = many(MASKS, 2000)
    first = sample_first_prompts(masks, gen())
    assert isinstance(first, FirstPrompts) and len(first) == 2000
    assert first.points.shape == (2000, 2, 2) and first.labels.shape == (2000, 2)
    assert first.labels.dtype == torch.int64 and first.is_box.dtype == torch.bool
    click, box = ~first.is_box, first.is_box
    assert (first.labels[click] == torch.tensor([1, -1])).all()
    assert (first.points[click][:, 1] == 0).all()  # the padding token sits at (0, 0)
    assert inside(masks[click], first.points[click][:, 0]).all()
    assert (first.labels[box] == torch.tensor([2, 3])).all()
    corners = first.points[box].reshape(-1, 4)
    assert (corners[:, :2] <= corners[:, 2:]).all()
    assert ((corners - mask_to_box(masks[box])).abs() <= 20).all()


def test_first_prompts_feed_the_prompt_encoder():
    """Spelled out with pad=False, each prompt encodes exactly as SAM encodes it at inference."""
    torch.manual_seed(0)
    encoder = PromptEncoder(64, (16, 16), (128, 128), 16)
    masks = torch.nn.functional.interpolate(many(MASKS, 12)[:, None].float(), size=(128, 128))
    first = sample_first_prompts(masks[:, 0] > 0.5, gen())
    assert 0 < first.is_box.sum() < 12
    with torch.no_grad():
        sparse, _ = encoder(points=(first.points, first.labels), boxes=None, masks=None, pad=False)
        clicks = first.points[:, :1], torch.ones(12, 1, dtype=torch.long)
        as_clicks, _ = encoder(points=clicks, boxes=None, masks=None)  # SAM pads a lone click
        as_boxes, _ = encoder(points=None, boxes=first.points.reshape(12, 4), masks=None)
    assert sparse.shape == (12, 2, 64)
    expected = torch.where(first.is_box[:, None, None], as_boxes, as_clicks)
    torch.testing.assert_close(sparse, expected)


def test_append_clicks():
    first = sample_first_prompts(MASKS, gen())
    click, label = sample_error_clicks(MASKS.roll(2, dims=1), MASKS, gen())
    points, labels = append_clicks(first.points, first.labels, click, label)
    assert points.shape == (6, 3, 2) and labels.shape == (6, 3)
    assert torch.equal(points[:, 2], click) and torch.equal(labels[:, 2], label)
    points, labels = append_clicks(points, labels, torch.zeros(6, 4, 2), torch.ones(6, 4))
    assert points.shape == (6, 7, 2) and labels.dtype == torch.int64


def test_an_empty_batch_gives_empty_prompts():
    none = torch.zeros(0, 8, 8, dtype=torch.bool)
    assert sample_points(none, mode="center").shape == (0, 2)
    assert sample_boxes(none).shape == (0, 4)
    assert sample_error_clicks(none, none)[1].shape == (0,)
    assert sample_first_prompts(none).points.shape == (0, 2, 2)


# ------------------------------------------------------------------------------ bad input


FLOAT = MASKS.float()
EMPTY = MASKS.clone()
EMPTY[[2, 4]] = False


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: sample_points(MASKS.tolist()), TypeError, r"masks must be a bool .*got list"),
    (lambda: sample_points(FLOAT), TypeError, r"masks must have dtype bool.*torch.float32"),
    (lambda: sample_boxes(MASKS.numpy().astype(np.uint8)), TypeError, "masks must have dtype"),
    (lambda: sample_points(MASKS[0]), ValueError,
     r"masks must have shape \(B, H, W\).*got \(64, 64\) \(one mask\? use masks\[None\]\)"),
    (lambda: distance_transform(MASKS[:, None]), ValueError, r"masks must have shape.*\(6, 1, "),
    (lambda: sample_points(EMPTY), ValueError, r"masks\[2\] is empty.*\(2 of 6 empty\)"),
    (lambda: sample_boxes(EMPTY), ValueError, r"masks\[2\] is empty"),
    (lambda: sample_first_prompts(EMPTY), ValueError, r"masks\[2\] is empty"),
    (lambda: sample_points(MASKS, mode="centre"), ValueError,
     "mode must be one of 'uniform', 'center'; got 'centre'"),
    (lambda: sample_first_prompts(MASKS, point_mode="random"), ValueError, "point_mode must"),
    (lambda: sample_first_prompts(MASKS, p_box=1.5), ValueError, r"p_box must be .*got 1.5"),
    (lambda: sample_first_prompts(MASKS, p_box=-0.1), ValueError, r"p_box must be .*in \[0, 1\]"),
    (lambda: sample_first_prompts(MASKS, p_box=float("nan")), ValueError, "p_box must be"),
    (lambda: sample_first_prompts(MASKS, p_box="half"), TypeError, "p_box must be .*got str"),
    (lambda: sample_boxes(MASKS, noise_std=-0.1), ValueError, r"noise_std must be .*>= 0"),
    (lambda: sample_boxes(MASKS, max_noise=-1), ValueError, r"max_noise must be .*got -1"),
    (lambda: sample_first_prompts(MASKS, max_noise=-1), ValueError, "max_noise must be"),
    (lambda: sample_error_clicks(MASKS[:, :32], MASKS), ValueError,
     r"pred must have the shape and device of gt, \(6, 64, 64\).*got \(6, 32, 64\)"),
    (lambda: sample_error_clicks(FLOAT, MASKS), TypeError,
     r"pred must have dtype bool.*threshold logits: logits > 0"),
    (lambda: sample_error_clicks(MASKS, FLOAT), TypeError, r"gt must have dtype bool"),
    (lambda: sample_points(MASKS, generator=0), TypeError, "generator must be a torch.Generator"),
    (lambda: append_clicks(np.zeros((6, 2, 2)), torch.zeros(6, 2), torch.zeros(6, 2),
                           torch.zeros(6)), TypeError, "points must be a torch.Tensor; got nd"),
    (lambda: append_clicks(torch.zeros(6, 2), torch.zeros(6, 2), torch.zeros(6, 2),
                           torch.zeros(6)), ValueError, r"points must be \(B, N, 2\)"),
    (lambda: append_clicks(torch.zeros(6, 2, 2), torch.zeros(6, 3), torch.zeros(6, 2),
                           torch.zeros(6)), ValueError, r"labels must be \(B, N\) = \(6, 2\)"),
    (lambda: append_clicks(torch.zeros(6, 2, 2), torch.zeros(6, 2), torch.zeros(5, 2),
                           torch.zeros(5)), ValueError, r"new_points must be .* B = 6"),
    (lambda: append_clicks(torch.zeros(6, 2, 2), torch.zeros(6, 2), torch.zeros(6, 3, 2),
                           torch.zeros(6, 2)), ValueError, r"new_labels must .*\(6, 3\)"),
])
def test_bad_input_is_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
