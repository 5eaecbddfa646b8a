"""PromptSession: the demo's click logic without a screen (every operation, undo, teaching)."""

import numpy as np
import pytest
import torch
from PIL import Image

from samteach import SamPredictor
from samteach.data.scenes import make_scene
from samteach.demo.session import PromptSession
from samteach.evaluation.clicker import Click, Clicker, suggest_click
from samteach.utils.images import load_image

from .conftest import SPILL_SEED, SPILL_TARGET


@pytest.fixture
def session(trained_tiny, spill_scene):
    return PromptSession(trained_tiny, spill_scene.image, target=spill_scene.masks[SPILL_TARGET])


def test_first_click_gives_three_masks_and_shows_the_best(session, trained_tiny, spill_scene):
    prediction = session.add_point(40, 60)
    assert prediction.masks.shape == (3, 128, 128) and prediction.masks.dtype == bool
    assert prediction.scores.shape == (3,) and prediction.logits.shape == (3, 64, 64)
    assert prediction.chosen == int(np.argmax(prediction.scores))
    assert np.array_equal(session.mask, prediction.masks[prediction.chosen])
    assert prediction.seconds > 0
    # The same masks as the predictor asked directly: the session adds no hidden transform.
    predictor = SamPredictor(trained_tiny)
    predictor.set_image(spill_scene.image)
    masks, scores, _ = predictor.predict(np.array([[40.0, 60.0]]), np.array([1]))
    assert np.array_equal(masks, prediction.masks)
    np.testing.assert_allclose(scores, prediction.scores, atol=1e-6)


def test_later_prompts_use_one_mask_and_feed_back_the_chosen_logits(session, trained_tiny,
                                                                    spill_scene):
    first = session.add_point(40, 60)
    session.choose_mask(0)
    second = session.add_point(70, 62, foreground=False)
    assert second.masks.shape == (1, 128, 128) and second.chosen == 0
    predictor = SamPredictor(trained_tiny)
    predictor.set_image(spill_scene.image)
    masks, _, _ = predictor.predict(np.array([[40.0, 60.0], [70.0, 62.0]]), np.array([1, 0]),
                                    mask_input=first.logits[0][None], multimask_output=False)
    assert np.array_equal(masks, second.masks)
    assert session.points.tolist() == [[40.0, 60.0], [70.0, 62.0]]
    assert session.labels.tolist() == [1, 0]


def test_a_box_alone_is_a_first_prompt_and_a_box_with_clicks_is_not(session):
    assert session.set_box(90, 20, 30, 100).masks.shape[0] == 3  # corners in any order
    assert session.box.tolist() == [30.0, 20.0, 90.0, 100.0]
    assert session.add_point(60, 60).masks.shape[0] == 1
    session.reset()
    session.add_point(60, 60)
    assert session.set_box(30, 20, 90, 100).masks.shape[0] == 1
    assert session.set_box(-20, -5, 200, 90).masks.shape[0] == 1  # replaced, clipped
    assert session.box.tolist() == [0.0, 0.0, 127.0, 90.0]


def test_undo_restores_each_earlier_state_exactly_down_to_empty(session):
    states = []
    for x, y, fg in [(40, 60, True), (70, 62, False), (50, 90, True)]:
        session.add_point(x, y, foreground=fg)
        states.append((session.points, session.labels, session.mask.copy()))
    session.set_box(20, 20, 100, 110)
    for points, labels, mask in reversed(states):
        assert session.can_undo
        session.undo()
        assert np.array_equal(session.points, points) and np.array_equal(session.labels, labels)
        assert np.array_equal(session.mask, mask)
        assert session.box is None
    assert session.undo() is None  # back to no prompts
    assert len(session.points) == 0 and not session.mask.any() and session.prediction is None
    assert not session.can_undo
    assert session.undo() is None  # nothing left to undo: no error, nothing changes
    assert session.prediction is None


def test_choose_mask_changes_what_is_shown_and_what_is_fed_back(session):
    prediction = session.add_point(40, 60)
    other = (prediction.chosen + 1) % 3
    assert session.choose_mask(other).chosen == other
    assert np.array_equal(session.mask, prediction.masks[other])
    session.add_point(70, 62, foreground=False)
    with pytest.raises(ValueError, match="three masks"):
        session.choose_mask(0)


def test_reset_forgets_prompts_and_history_but_keeps_the_embedding(session):
    features = session.predictor.features
    session.add_point(40, 60)
    session.add_point(70, 62, foreground=False)
    session.reset()
    assert session.prediction is None and not session.can_undo and len(session.points) == 0
    assert session.predictor.features is features
    assert session.add_point(40, 60).masks.shape[0] == 3  # a first click again


def test_a_background_click_inside_the_spill_changes_the_mask(session):
    session.add_point(*_xy(session.suggest_click()))
    spill_before = session.error_regions()[1]
    click = session.suggest_click()
    assert not click.is_positive and spill_before[click.y, click.x]  # the setup of this test
    before = session.mask.copy()
    session.add_point(click.x, click.y, foreground=False)
    spill_after = session.error_regions()[1]
    assert not np.array_equal(session.mask, before)
    assert spill_after.sum() < spill_before.sum() / 2
    assert not session.mask[click.y, click.x]


def test_suggestions_follow_ritm_and_the_training_sampler(session, spill_scene):
    target = spill_scene.masks[SPILL_TARGET]
    first = session.suggest_click()  # against an empty mask: the object's centre
    assert first == Clicker(target).make_next_click(np.zeros_like(target))
    session.add_point(first.x, first.y)
    ritm = session.suggest_click("ritm")
    assert ritm == suggest_click(target, session.mask, session.points)
    fn, fp = session.error_regions()
    assert np.array_equal(fn, target & ~session.mask) and np.array_equal(fp, ~target & session.mask)
    for seed in range(20):
        click = session.suggest_click("training", torch.Generator().manual_seed(seed))
        assert (fn if click.is_positive else fp)[click.y, click.x]
    session.reset()
    with pytest.raises(ValueError, match="target is empty"):
        session.set_target(session.mask)  # nothing to teach towards


def test_suggestion_is_none_once_the_mask_is_perfect(trained_tiny, spill_scene):
    session = PromptSession(trained_tiny, spill_scene.image)
    session.add_point(40, 60)
    session.set_target(session.mask)
    assert session.target_iou() == 1.0 and session.suggest_click() is None


def test_ritm_suggestion_never_repeats_a_click():
    gt = np.zeros((9, 9), dtype=bool)
    gt[2:7, 2:7] = True
    assert suggest_click(gt, np.zeros_like(gt)) == Click(4, 4, True)
    assert suggest_click(gt, np.zeros_like(gt), clicked=[[4, 4]]) != Click(4, 4, True)


def test_a_predictor_reused_elsewhere_is_given_its_image_back(trained_tiny, spill_scene):
    predictor = SamPredictor(trained_tiny)
    session = PromptSession(predictor, spill_scene.image)
    expected = session.add_point(40, 60).masks
    session.reset()
    predictor.set_image(make_scene(SPILL_SEED + 1).image)  # someone else used the predictor
    assert np.array_equal(session.add_point(40, 60).masks, expected)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda s: s.add_point(128, 5), ValueError, r"outside the 128x128 .* x must be in \[0, 128\)"),
    (lambda s: s.add_point(5, -1), ValueError, "outside"),
    (lambda s: s.add_point("5", 3), TypeError, "x must be a finite number"),
    (lambda s: s.add_point(5, float("nan")), TypeError, "y must be a finite number"),
    (lambda s: s.add_point(5, 5, foreground=1), TypeError, "foreground must be True or False"),
    (lambda s: s.set_box(5, 5, 5, 60), ValueError, "at least one pixel wide"),
    (lambda s: s.choose_mask(0), ValueError, "three masks"),
    (lambda s: s.suggest_click("random"), ValueError, "rule must be one of"),
    (lambda s: s.set_target(np.ones((64, 64), dtype=bool)), ValueError, r"target must have "
     r"shape \(128, 128\)"),
    (lambda s: s.set_target(np.ones((128, 128))), TypeError, "dtype bool"),
])
def test_bad_input_gets_a_clear_error(session, call, error, message):
    with pytest.raises(error, match=message):
        call(session)


def test_teaching_calls_without_a_target_say_how_to_give_one(trained_tiny, spill_scene):
    session = PromptSession(trained_tiny, spill_scene.image)
    for call in (session.error_regions, session.suggest_click, session.target_iou):
        with pytest.raises(ValueError, match="teaching mode: give the session"):
            call()


def test_bad_predictor_is_a_type_error(spill_scene):
    with pytest.raises(TypeError, match="predictor must be a samteach SamPredictor or Sam"):
        PromptSession("vit_b", spill_scene.image)


def test_load_image_reads_arrays_pil_images_and_files(tmp_path, spill_scene):
    rgb = spill_scene.image
    Image.fromarray(rgb).save(tmp_path / "scene.png")
    for image in (rgb, Image.fromarray(rgb), tmp_path / "scene.png", str(tmp_path / "scene.png"),
                  np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), rgb / 255.0):
        assert np.array_equal(load_image(image), rgb)
    gray = load_image(rgb[..., 0])
    assert gray.shape == (128, 128, 3) and np.array_equal(gray[..., 2], rgb[..., 0])


@pytest.mark.parametrize(("image", "error", "message"), [
    (None, TypeError, "image must be a numpy array .* got NoneType"),
    ([[0, 1], [2, 3]], TypeError, "got list"),
    (np.zeros((8, 8, 5), np.uint8), ValueError, r"shape \(H, W, 3\)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, r"shape \(H, W, 3\)"),
    (np.zeros((8, 8, 3), np.int32), TypeError, "dtype uint8"),
    (np.full((8, 8, 3), 2.0), ValueError, r"floats must lie in \[0, 1\]"),
    ("no/such/file.png", ValueError, "no file at"),
])
def test_bad_images_get_a_clear_error(image, error, message):
    with pytest.raises(error, match=message):
        load_image(image)


def test_tensors_are_images_too():
    chw = torch.rand(3, 6, 8)  # a (3, H, W) float tensor in [0, 1], as a model sees it
    image = load_image(chw)
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    assert np.array_equal(image, (chw.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_a_file_that_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match="not an image file"):
        load_image(tmp_path / "notes.png")


def _xy(click: Click) -> tuple[int, int]:
    return click.x, click.y
