"""SamPredictor behaviour: official return types, batched prompts and images, caching."""

import numpy as np
import pytest
import torch

from samteach import SamPredictor, build_sam

from .conftest import assert_same, randomize_

RNG = np.random.default_rng(0)
IMAGES = [RNG.integers(0, 256, (200, 300, 3), dtype=np.uint8),
          RNG.integers(0, 256, (240, 160, 3), dtype=np.uint8)]


@pytest.fixture(scope="module")
def sam():
    return randomize_(build_sam("tiny"), seed=11)


def test_predict_returns_official_types(sam):
    predictor = SamPredictor(sam)
    predictor.set_image(IMAGES[0])
    masks, iou, low_res = predictor.predict(np.array([[50, 60]]), np.array([1]))
    assert isinstance(masks, np.ndarray) and masks.dtype == bool and masks.shape == (3, 200, 300)
    assert iou.dtype == np.float32 and iou.shape == (3,)
    assert low_res.dtype == np.float32 and low_res.shape == (3, 64, 64)
    assert predictor.original_size == (200, 300) and predictor.input_size == (85, 128)
    assert predictor.get_image_embedding().shape == (1, 64, 16, 16)
    predictor.reset_image()
    assert not predictor.is_image_set and predictor.features is None


def test_refinement_with_mask_input(sam):
    predictor = SamPredictor(sam)
    predictor.set_image(IMAGES[0])
    _, iou, low_res = predictor.predict(np.array([[50, 60]]), np.array([1]))
    masks, _, _ = predictor.predict(np.array([[50, 60], [200, 100]]), np.array([1, 0]),
                                    mask_input=low_res[iou.argmax()][None],
                                    multimask_output=False)
    assert masks.shape == (1, 200, 300)


def test_bgr_input_is_flipped(sam):
    predictor = SamPredictor(sam)
    predictor.set_image(IMAGES[0])
    rgb = predictor.get_image_embedding().clone()
    predictor.set_image(np.ascontiguousarray(IMAGES[0][..., ::-1]), image_format="BGR")
    assert torch.equal(predictor.get_image_embedding(), rgb)


def test_predict_batch_equals_one_image_at_a_time(sam):
    """B = 2 images x K = 3 prompts in one decoder call = six separate predict calls."""
    points = np.array([[[[20, 30]], [[100, 50]], [[250, 150]]],
                       [[[10, 10]], [[80, 200]], [[150, 20]]]], dtype=float)  # (B, K, N=1, 2)
    labels = np.ones((2, 3, 1))
    boxes = np.array([[[0, 0, 150, 100]] * 3, [[20, 30, 140, 220]] * 3], dtype=float)
    batch = SamPredictor(sam)
    batch.set_image_batch(IMAGES)
    assert batch.get_image_embedding().shape == (2, 64, 16, 16)
    masks, ious, low_res = batch.predict_batch(points, labels, boxes, return_logits=True)
    single = SamPredictor(sam)
    for b, image in enumerate(IMAGES):
        single.set_image(image)
        assert masks[b].shape == (3, 3) + image.shape[:2]
        for k in range(3):
            ref = single.predict(points[b, k], labels[b, k], boxes[b, k], return_logits=True)
            for got, want in zip((masks[b][k], ious[b][k], low_res[b][k]), ref, strict=True):
                assert_same(torch.from_numpy(got), torch.from_numpy(want))


def test_predict_batch_with_masks_only(sam):
    predictor = SamPredictor(sam)
    predictor.set_image_batch(IMAGES)
    masks, ious, _ = predictor.predict_batch(mask_input=np.zeros((2, 4, 1, 64, 64)),
                                             multimask_output=False)
    assert [m.shape for m in masks] == [(4, 1, 200, 300), (4, 1, 240, 160)]


def test_single_image_methods_refuse_a_batch(sam):
    predictor = SamPredictor(sam)
    predictor.set_image_batch(IMAGES)
    with pytest.raises(ValueError, match="use predict_batch"):
        predictor.predict(np.array([[1, 1]]), np.array([1]))


def test_image_embedding_is_shared_by_prompts_not_copied(sam):
    """Without mask prompts, the decoder's first image-side projections run once per image."""
    seen = []
    k_proj = sam.mask_decoder.transformer.layers[0].cross_attn_token_to_image.k_proj
    handle = k_proj.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    try:
        predictor = SamPredictor(sam)
        predictor.set_image_batch(IMAGES)
        predictor.predict_batch(boxes=np.array([[[0, 0, 50, 50]] * 5] * 2, dtype=float))
    finally:
        handle.remove()
    assert seen == [(2, 1, 256, 64)]  # (B images, 1 shared copy, N tokens, C), not (B*K, ...)


def test_dense_pe_is_computed_once_per_image(sam, monkeypatch):
    calls = []
    original = sam.prompt_encoder.get_dense_pe
    monkeypatch.setattr(sam.prompt_encoder, "get_dense_pe",
                        lambda: calls.append(1) or original())
    predictor = SamPredictor(sam)
    predictor.set_image(IMAGES[0])
    for _ in range(3):
        predictor.predict(np.array([[50, 60]]), np.array([1]))
    assert len(calls) == 1
