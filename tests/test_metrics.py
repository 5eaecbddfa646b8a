"""IoU, NoC/NoF, mIoU@k and the interactive evaluation loop, with fake and real predictors."""

import numpy as np
import pytest
import torch

import samteach
from samteach import SamPredictor, build_sam
from samteach.evaluation.metrics import (
    EvaluationResult,
    evaluate,
    interactive_ious,
    iou,
    miou_at_clicks,
    noc,
    noc_nof,
    predictor_callable,
)

from . import official

H, W = 24, 32
GT = np.zeros((H, W), dtype=bool)
GT[4:15, 7:18] = True  # 11 x 11 object, first click at its centre (row 9, column 12)
IMAGE = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)


def logits_of(mask: np.ndarray) -> np.ndarray:
    """A bool mask as logits: +1 inside, -1 outside."""
    return np.where(mask, 1.0, -1.0)


# ---------------------------------------------------------------- iou
def test_iou_of_known_masks():
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    a[:2, :2] = True  # 4 pixels
    b[:2, :3] = True  # 6 pixels, 4 shared
    assert iou(a, b) == pytest.approx(4 / 6)
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0
    assert iou(np.zeros_like(a), np.zeros_like(a)) == 1.0  # two empty masks agree


def test_iou_batched():
    a = np.zeros((4, 4), dtype=bool)
    a[:2, :2] = True
    batch = np.stack([a, ~a, np.ones_like(a)])  # (3, 4, 4)
    np.testing.assert_allclose(iou(batch, a), [1.0, 0.0, 4 / 16])  # one gt for every mask
    np.testing.assert_allclose(iou(batch, batch), [1.0, 1.0, 1.0])
    assert iou(batch, a).shape == (3,)


@pytest.mark.parametrize("pred, gt, error, message", [
    (GT.astype(np.uint8), GT, TypeError, "pred must be a numpy bool array.*uint8"),
    (GT, GT.tolist(), TypeError, "gt must be a numpy bool array.*list"),
    (GT, GT[:, :-1], ValueError, r"gt \(24, 31\)"),
    (GT[None, None], GT, ValueError, r"pred must be \(H, W\) or \(N, H, W\)"),
])
def test_iou_bad_input(pred, gt, error, message):
    with pytest.raises(error, match=message):
        iou(pred, gt)


# ---------------------------------------------------------------- NoC, NoF, mIoU@k
def curve(reached_at: int | None, max_clicks: int = 20) -> np.ndarray:
    """An IoU curve at 0.5 that jumps to 0.95 at click ``reached_at`` (1-based), or never."""
    ious = np.full(max_clicks, 0.5)
    if reached_at is not None:
        ious[reached_at - 1:] = 0.95
    return ious


def test_noc_first_reaching_click_or_max_clicks():
    ious = np.stack([curve(1), curve(3), curve(None), curve(20)])
    np.testing.assert_array_equal(noc(ious, 0.9), [1, 3, 20, 20])
    assert noc(ious, 0.9).dtype == np.int64
    np.testing.assert_array_equal(noc(ious, 0.5), [1, 1, 1, 1])
    np.testing.assert_array_equal(noc(ious[:, :5], 0.9, max_clicks=5), [1, 3, 5, 5])


def test_noc_counts_an_exact_hit_as_reached():
    ious = np.array([[0.2, 0.85, 0.85]], dtype=np.float32)  # float32 like interactive_ious
    np.testing.assert_array_equal(noc(ious, 0.85, max_clicks=3), [2])
    np.testing.assert_array_equal(noc(ious.astype(np.float64), 0.85, max_clicks=3), [2])


def test_nof_counts_samples_at_max_clicks_including_the_last_click_hit():
    """RITM quirk: reaching the target only at click 20 has NoC = 20, so it is a failure."""
    ious = np.stack([curve(1), curve(3), curve(None), curve(20)])
    scores = noc_nof(ious)
    assert scores["noc"] == {0.85: pytest.approx(44 / 4), 0.9: pytest.approx(44 / 4)}
    assert scores["nof"] == {0.85: 2, 0.9: 2}
    ious[1, 2:] = 0.87  # sample 1 now reaches 0.85 at click 3 but 0.9 never
    scores = noc_nof(ious, thresholds=(0.85, 0.9))
    assert scores["noc"][0.9] == pytest.approx((1 + 20 + 20 + 20) / 4)
    assert scores["nof"] == {0.85: 2, 0.9: 3}


def test_miou_at_clicks():
    ious = np.array([[0.1, 0.2, 0.3, 0.4, 0.5],
                     [0.3, 0.4, 0.5, 0.6, 0.7]])
    result = miou_at_clicks(ious, clicks=(1, 2, 5))
    assert result == {1: pytest.approx(0.2), 2: pytest.approx(0.3), 5: pytest.approx(0.6)}
    assert list(result) == [1, 2, 5]
    with pytest.raises(ValueError, match="clicks must be whole numbers from 1 to 5.*9"):
        miou_at_clicks(ious)  # the default asks for mIoU@9


@pytest.mark.parametrize("ious, kwargs, error, message", [
    (np.full(20, 0.5), {}, ValueError, r"ious must be \(S, 20\).*got shape \(20,\)"),
    (np.full((3, 5), 0.5), {}, ValueError, r"ious must be \(S, 20\).*\(3, 5\).*max_clicks=5"),
    (np.full((3, 20), 1.5), {}, ValueError, "ious must hold IoUs between 0 and 1"),
    (np.full((3, 20), np.nan), {}, ValueError, "ious must hold IoUs between 0 and 1"),
    (np.full((3, 20), 0.5), {"max_clicks": 0}, ValueError, "max_clicks must be a positive int"),
    (np.full((3, 20), 0.5), {"max_clicks": 2.5}, TypeError, "max_clicks must be a positive int"),
    (np.full((3, 20), 0.5), {"threshold": 90}, ValueError, r"threshold must be .* \(0, 1\]"),
])
def test_noc_bad_input(ious, kwargs, error, message):
    kwargs = {"threshold": 0.9, **kwargs}
    with pytest.raises(error, match=message):
        noc(ious, **kwargs)


def test_noc_nof_bad_thresholds():
    with pytest.raises(TypeError, match="thresholds must be a non-empty sequence"):
        noc_nof(np.full((2, 20), 0.5), thresholds=0.9)
    with pytest.raises(ValueError, match="thresholds must be an IoU target"):
        noc_nof(np.full((2, 20), 0.5), thresholds=(85, 90))


# ---------------------------------------------------------------- interactive_ious
def good_after(n: int):
    """A fake model that returns the ground truth from click ``n`` on, nothing before."""
    def predict(points, labels, mask_logits):
        return logits_of(GT) if len(points) >= n else logits_of(np.zeros_like(GT))
    return predict


def test_fake_model_perfect_after_three_clicks_needs_three():
    ious = interactive_ious(good_after(3), GT)
    assert ious.shape == (20,) and ious.dtype == np.float32
    np.testing.assert_array_equal(ious, [0, 0] + [1] * 18)
    assert noc(ious[None], 0.9)[0] == 3


def test_fake_model_that_never_improves_needs_max_clicks():
    ious = interactive_ious(good_after(99), GT)
    np.testing.assert_array_equal(ious, np.zeros(20))
    assert noc(ious[None], 0.9)[0] == 20
    assert noc_nof(ious[None])["nof"] == {0.85: 1, 0.9: 1}


def test_predict_sees_the_robots_clicks():
    seen = []

    def predict(points, labels, mask_logits):
        seen.append((points.copy(), labels.copy()))
        return logits_of(np.zeros_like(GT))

    interactive_ious(predict, GT, max_clicks=3)
    assert [len(p) for p, _ in seen] == [1, 2, 3]
    np.testing.assert_array_equal(seen[0][0], [[12.0, 9.0]])  # (x, y) of the object's centre
    np.testing.assert_array_equal(seen[2][1], [1, 1, 1])  # nothing predicted: all positive


def test_feedback_pair_comes_back_next_time():
    received = []

    def predict(points, labels, mask_logits):
        received.append(mask_logits)
        return logits_of(GT), f"feedback {len(points)}"

    interactive_ious(predict, GT, max_clicks=4)
    assert received == [None, "feedback 1", "feedback 2", "feedback 3"]


def test_logits_alone_are_their_own_feedback():
    returned, received = [], []

    def predict(points, labels, mask_logits):
        received.append(mask_logits)
        returned.append(torch.full((H, W), float(len(points))))  # tensors are accepted too
        return returned[-1]

    interactive_ious(predict, GT, max_clicks=3)
    assert received[0] is None
    assert received[1] is returned[0] and received[2] is returned[1]


def test_threshold_is_strict_and_configurable():
    def zero_on_object(points, labels, mask_logits):
        return np.where(GT, 0.0, -1.0)

    assert interactive_ious(zero_on_object, GT, max_clicks=2).tolist() == [0.0, 0.0]
    assert interactive_ious(zero_on_object, GT, max_clicks=2, threshold=-0.5).tolist() == [1, 1]


def returning(output):
    """A fake model that answers ``output`` to every click."""
    return lambda points, labels, mask_logits: output


@pytest.mark.parametrize("predict, kwargs, error, message", [
    (returning(np.zeros((H, W + 1))), {}, ValueError,
     r"predict returned logits of shape \(24, 33\).*gt_mask, \(24, 32\)"),
    (returning(np.zeros((1, H, W))), {}, ValueError, r"masks\[best\]"),
    (returning(np.full((H, W), np.nan)), {}, ValueError, "NaN"),
    (returning((np.zeros((H, W)), None, None)), {}, ValueError, "pair"),
    (returning(np.zeros((H, W)).tolist()), {}, TypeError, "numpy array or tensor"),
    ("model", {}, TypeError, "predict must be a function"),
    (good_after(1), {"max_clicks": 0}, ValueError, "max_clicks must be a positive int"),
    (good_after(1), {"threshold": "0"}, TypeError, "threshold must be a finite number"),
    (good_after(1), {"gt_mask": np.zeros((H, W), bool)}, ValueError, "gt_mask is empty"),
    (good_after(1), {"gt_mask": GT.astype(float)}, TypeError, "gt_mask must have dtype bool"),
    (good_after(1), {"gt_mask": GT[None]}, ValueError, r"gt_mask must have shape \(H, W\)"),
])
def test_interactive_ious_bad_input(predict, kwargs, error, message):
    kwargs = {"gt_mask": GT, **kwargs}
    with pytest.raises(error, match=message):
        interactive_ious(predict, **kwargs)


# ---------------------------------------------------------------- SAM predictors
class Spy:
    """Forwards ``predict`` to a predictor and records the arguments."""

    def __init__(self, predictor):
        self.predictor, self.calls = predictor, []

    def predict(self, **kwargs):
        self.calls.append(kwargs)
        return self.predictor.predict(**kwargs)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    predictor = SamPredictor(build_sam("tiny"))
    predictor.set_image(IMAGE)
    return predictor


def object_mask():
    gt = np.zeros(IMAGE.shape[:2], dtype=bool)
    gt[20:60, 30:90] = True
    return gt


def test_predictor_callable_multimask_on_the_first_click_only(predictor):
    spy = Spy(predictor)
    ious = interactive_ious(predictor_callable(spy), object_mask(), max_clicks=3)
    assert ious.shape == (3,) and np.all((ious >= 0) & (ious <= 1))
    assert [c["multimask_output"] for c in spy.calls] == [True, False, False]
    assert [c["return_logits"] for c in spy.calls] == [True] * 3
    assert spy.calls[0]["mask_input"] is None
    assert [c["mask_input"].shape for c in spy.calls[1:]] == [(1, 64, 64)] * 2
    assert [len(c["point_coords"]) for c in spy.calls] == [1, 2, 3]


def test_predictor_callable_keeps_the_most_confident_mask(predictor):
    points, labels = np.array([[60.0, 40.0]]), np.array([1])
    logits, feedback = predictor_callable(predictor)(points, labels, None)
    masks, scores, low_res = predictor.predict(points, labels, return_logits=True)
    best = int(np.argmax(scores))
    assert logits.shape == IMAGE.shape[:2] and feedback.shape == (1, 64, 64)
    np.testing.assert_array_equal(logits, masks[best])
    np.testing.assert_array_equal(feedback, low_res[best][None])
    single = predictor_callable(Spy(predictor), multimask_first=False)
    assert single(points, labels, None)[0].shape == IMAGE.shape[:2]


def test_predictor_callable_accepts_the_official_predictor():
    sam = official.build_official(samteach.get_config("tiny"))
    theirs = official.load("predictor").SamPredictor(sam)
    theirs.set_image(IMAGE)
    predict = predictor_callable(theirs)
    logits, feedback = predict(np.array([[60.0, 40.0]]), np.array([1]), None)
    assert logits.shape == IMAGE.shape[:2] and feedback.shape == (1, 64, 64)
    assert interactive_ious(predict, object_mask(), max_clicks=3).shape == (3,)


def test_predictor_callable_refuses_non_predictors():
    with pytest.raises(TypeError, match="predictor must be a SamPredictor"):
        predictor_callable(build_sam("tiny"))


# ---------------------------------------------------------------- evaluate
def synthetic_samples(n: int = 3):
    rng = np.random.default_rng(1)
    for i in range(n):
        gt = np.zeros(IMAGE.shape[:2], dtype=bool)
        gt[10 + 5 * i:50 + 5 * i, 20:70 + 10 * i] = True
        yield rng.integers(0, 256, IMAGE.shape, dtype=np.uint8), gt


def test_evaluate_tiny_sam_on_synthetic_samples(predictor):
    def make_predict(image):
        predictor.set_image(image)
        return predictor_callable(predictor)

    result = evaluate(synthetic_samples(3), make_predict, progress=False)
    assert isinstance(result, EvaluationResult)
    assert result.ious.shape == (3, 20) and result.max_clicks == 20
    assert list(result.miou) == [1, 2, 3, 5, 9] and list(result.noc) == [0.85, 0.9]
    assert result.miou[9] == pytest.approx(result.ious[:, 8].mean())
    summary = result.summary()
    for key in ("mIoU@1", "mIoU@2", "mIoU@3", "mIoU@5", "mIoU@9", "NoC@85", "NoC@90", "NoF@85",
                "NoF@90", "3 samples, 20 clicks each"):
        assert key in summary
    assert summary == result.summary()


def test_evaluate_summary_text_and_image_reuse():
    image_a, image_b = np.zeros((H, W, 3), np.uint8), np.ones((H, W, 3), np.uint8)
    other = np.zeros((H, W), dtype=bool)
    other[2:6, 2:6] = True
    made = []

    def make_predict(image):
        made.append(image)
        return good_after(3) if image is image_a else good_after(99)

    # Two masks of image_a, one predict for both: it knows only GT, so `other` fails.
    samples = [(image_a, GT), (image_a, other), (image_b, GT)]
    result = evaluate(samples, make_predict, progress=False)
    assert len(made) == 2 and made[0] is image_a and made[1] is image_b
    assert result.noc == {0.85: pytest.approx(43 / 3), 0.9: pytest.approx(43 / 3)}
    assert result.nof == {0.85: 2, 0.9: 2}
    assert result.summary() == (
        "mIoU@1  mIoU@2  mIoU@3  mIoU@5  mIoU@9\n"
        " 0.000   0.000   0.333   0.333   0.333\n"
        "\n"
        "NoC@85  NoC@90  NoF@85  NoF@90\n"
        "14.333  14.333       2       2\n"
        "\n"
        "(3 samples, 20 clicks each)")


def test_evaluate_bad_input():
    def never(image):
        raise AssertionError("no sample should be played")

    with pytest.raises(ValueError, match="clicks must be whole numbers from 1 to 5.*9"):
        evaluate(synthetic_samples(), never, max_clicks=5)
    with pytest.raises(ValueError, match="max_clicks must be a positive int"):
        evaluate(synthetic_samples(), never, max_clicks=0)
    with pytest.raises(ValueError, match="samples is empty"):
        evaluate([], never, progress=False)
    with pytest.raises(TypeError, match=r"samples must yield \(image, gt_mask\) pairs.*ndarray"):
        evaluate([IMAGE], lambda image: good_after(1), progress=False)
    with pytest.raises(TypeError, match="make_predict must be a function"):
        evaluate(synthetic_samples(), "sam")
    samples = [(IMAGE, GT), (IMAGE, np.zeros((H, W), bool))]
    with pytest.raises(ValueError, match="sample 1: gt_mask is empty"):
        evaluate(samples, lambda image: good_after(1), progress=False)
