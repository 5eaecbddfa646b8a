"""samteach vs Meta's segment_anything 1.0 with the same random weights, part by part.

Criterion: max |samteach - official| <= 1e-4 in fp32, on both paths: samteach.fast's and the
readable modeling/ alone.
"""

import numpy as np
import pytest
import torch

from samteach import SamPredictor, get_config
from samteach.fast import use_fast_paths

from . import official
from .conftest import VIT_B_REDUCED, assert_same, twins

PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast", "readable"])


@pytest.fixture(scope="module")
def vit_b_twins():
    return twins(VIT_B_REDUCED, seed=1)


@PATHS
def test_image_encoder_tiny(tiny_twins, fast):
    ours, theirs = tiny_twins
    use_fast_paths(ours, fast)
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_same(ours.image_encoder(x), theirs.image_encoder(x))


@PATHS
def test_image_encoder_vit_b_windowed_and_global(vit_b_twins, fast):
    ours, theirs = vit_b_twins
    assert [b.window_size for b in ours.image_encoder.blocks] == [14, 0]
    use_fast_paths(ours, fast)
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_same(ours.image_encoder(x), theirs.image_encoder(x))


def prompt_cases(image_size: int, mask_size: int, batch: int = 2):
    """Every combination of prompts the prompt encoder accepts, batch prompts each."""
    g = torch.Generator().manual_seed(0)
    one_point = (torch.rand(batch, 1, 2, generator=g) * image_size, torch.ones(batch, 1))
    three = (torch.rand(batch, 3, 2, generator=g) * image_size,
             torch.tensor([[1, 0, 1], [0, 1, -1]][:batch]))
    corners = torch.sort(torch.rand(batch, 2, 2, generator=g) * image_size, dim=1).values
    box = corners.reshape(batch, 4)
    mask = torch.randn(batch, 1, mask_size, mask_size, generator=g)
    return {
        "point": dict(points=one_point, boxes=None, masks=None),
        "points": dict(points=three, boxes=None, masks=None),
        "box": dict(points=None, boxes=box, masks=None),
        "point+box": dict(points=one_point, boxes=box, masks=None),
        "mask": dict(points=None, boxes=None, masks=mask),
        "point+mask": dict(points=one_point, boxes=None, masks=mask),
        "points+box+mask": dict(points=three, boxes=box, masks=mask),
        "nothing": dict(points=None, boxes=None, masks=None),
    }


@pytest.mark.parametrize("case", list(prompt_cases(128, 64)))
def test_prompt_encoder_every_combination(tiny_twins, case):
    ours, theirs = tiny_twins
    prompts = prompt_cases(128, 64)[case]
    with torch.no_grad():
        sparse, dense = ours.prompt_encoder(**prompts)
        sparse_ref, dense_ref = theirs.prompt_encoder(**prompts)
    assert sparse.shape == sparse_ref.shape
    assert_same(sparse, sparse_ref)
    assert_same(dense, dense_ref)


def test_dense_positional_encoding(tiny_twins):
    ours, theirs = tiny_twins
    assert_same(ours.prompt_encoder.get_dense_pe(), theirs.prompt_encoder.get_dense_pe())


@PATHS
@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", ["point", "points+box+mask"])
def test_mask_decoder(vit_b_twins, fast, multimask, case):
    """K = 2 prompts on one image (the official decoder's setting), vit_b-width decoder."""
    ours, theirs = vit_b_twins
    use_fast_paths(ours, fast)
    prompts = prompt_cases(320, 80)[case]
    g = torch.Generator().manual_seed(3)
    embedding = torch.randn(1, 256, 20, 20, generator=g)
    with torch.no_grad():
        sparse, dense = theirs.prompt_encoder(**prompts)
        pe = theirs.prompt_encoder.get_dense_pe()
        masks, iou = ours.mask_decoder(embedding, pe, sparse, dense, multimask)
        masks_ref, iou_ref = theirs.mask_decoder(embedding, pe, sparse, dense, multimask)
    assert masks.shape == masks_ref.shape == (2, 3 if multimask else 1, 80, 80)
    assert_same(masks, masks_ref)
    assert_same(iou, iou_ref)


@pytest.mark.parametrize("with_mask", [False, True])
def test_mask_decoder_b_images_times_k_prompts(tiny_twins, with_mask):
    """B = 2 images x K = 3 prompts in one call equals the official decoder image by image."""
    ours, theirs = tiny_twins
    B, K = 2, 3
    g = torch.Generator().manual_seed(4)
    embeddings = torch.randn(B, 64, 16, 16, generator=g)
    points = (torch.rand(B * K, 2, 2, generator=g) * 128, torch.tensor([[1, 0]] * (B * K)))
    masks_in = torch.randn(B * K, 1, 64, 64, generator=g) if with_mask else None
    with torch.no_grad():
        sparse, dense = ours.prompt_encoder(points=points, boxes=None, masks=masks_in)
        pe = ours.prompt_encoder.get_dense_pe()
        masks, iou = ours.mask_decoder(embeddings, pe, sparse, dense, True)
        for b in range(B):
            rows = slice(b * K, (b + 1) * K)
            masks_ref, iou_ref = theirs.mask_decoder(
                embeddings[b : b + 1], pe, sparse[rows], dense[rows], True)
            assert_same(masks[rows], masks_ref)
            assert_same(iou[rows], iou_ref)


def test_postprocess_masks(tiny_twins):
    ours, theirs = tiny_twins
    low_res = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    assert_same(ours.postprocess_masks(low_res, (85, 128), (200, 300)),
                theirs.postprocess_masks(low_res, (85, 128), (200, 300)))


def test_sam_forward_batched_input(tiny_twins):
    ours, theirs = tiny_twins
    g = torch.Generator().manual_seed(6)
    batched = [
        {"image": torch.rand(3, 85, 128, generator=g) * 255, "original_size": (200, 300),
         "point_coords": torch.rand(2, 1, 2, generator=g) * 80, "point_labels": torch.ones(2, 1)},
        {"image": torch.rand(3, 128, 96, generator=g) * 255, "original_size": (400, 300),
         "boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]])},
    ]
    out, ref = ours(batched, multimask_output=True), theirs(batched, multimask_output=True)
    for a, b in zip(out, ref, strict=True):
        assert_same(a["low_res_logits"], b["low_res_logits"])
        assert_same(a["iou_predictions"], b["iou_predictions"])
        assert a["masks"].shape == b["masks"].shape


def test_resize_longest_side_matches_official():
    from samteach import ResizeLongestSide

    ref = official.load("utils.transforms").ResizeLongestSide(128)
    ours = ResizeLongestSide(128)
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ours.apply_image(image), ref.apply_image(image))
    coords = np.array([[10.0, 20.0], [299.0, 199.0]])
    np.testing.assert_array_equal(ours.apply_coords(coords, (200, 300)),
                                  ref.apply_coords(coords, (200, 300)))
    boxes = np.array([[10, 20, 150, 120]])
    np.testing.assert_array_equal(ours.apply_boxes(boxes, (200, 300)),
                                  ref.apply_boxes(boxes, (200, 300)))
    assert ResizeLongestSide.get_preprocess_shape(480, 640, 1024) == (768, 1024)


def test_apply_image_is_pil_bilinear_on_uint8():
    """The documented behaviour of torchvision's resize on a PIL image, checked directly."""
    from PIL import Image

    from samteach import ResizeLongestSide

    image = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((128, 85), Image.BILINEAR))
    np.testing.assert_array_equal(ResizeLongestSide(128).apply_image(image), expected)


def twin_predictors(twins, seed: int, fast: bool = True):
    """Predictors around both models, with the same random 300x200 (W x H) image set (ours
    resizing the masks in Meta's two steps, to compare full-size logits too)."""
    ours, theirs = twins
    image = np.random.default_rng(seed).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    p_ours = SamPredictor(use_fast_paths(ours, fast), resize="twice")
    p_ref = official.load("predictor").SamPredictor(theirs)
    p_ours.set_image(image)
    p_ref.set_image(image)
    return p_ours, p_ref


@PATHS
@pytest.mark.parametrize("multimask", [True, False])
def test_predictor_point_and_box_on_non_square_image(tiny_twins, multimask, fast):
    """The whole pipeline on a 300x200 (W x H) image: resize, encode, prompt, decode, upsample
    (the fast model answers one image's prompts with samteach.fast.click)."""
    p_ours, p_ref = twin_predictors(tiny_twins, seed=2, fast=fast)
    point, label, box = np.array([[120.0, 80.0]]), np.array([1]), np.array([60, 40, 220, 170])
    assert_same(p_ours.get_image_embedding(), p_ref.get_image_embedding())
    kwargs = dict(point_coords=point, point_labels=label, box=box, multimask_output=multimask)
    logits, iou, low = p_ours.predict(**kwargs, return_logits=True)
    logits_ref, iou_ref, low_ref = p_ref.predict(**kwargs, return_logits=True)
    assert logits.shape == logits_ref.shape == ((3 if multimask else 1), 200, 300)
    for a, b in [(logits, logits_ref), (iou, iou_ref), (low, low_ref)]:
        assert_same(torch.from_numpy(a), torch.from_numpy(b))
    masks, _, _ = p_ours.predict(**kwargs)
    masks_ref, _, _ = p_ref.predict(**kwargs)
    decided = np.abs(logits_ref) > 1e-3  # pixels not on the 0-logit boundary
    assert masks.dtype == masks_ref.dtype == bool
    np.testing.assert_array_equal(masks[decided], masks_ref[decided])


def test_predict_torch_many_prompts(tiny_twins):
    p_ours, p_ref = twin_predictors(tiny_twins, seed=3)
    boxes = torch.tensor([[10.0, 10.0, 200.0, 150.0], [100.0, 50.0, 290.0, 190.0]])
    boxes = p_ours.transform.apply_boxes_torch(boxes, (200, 300))
    out = p_ours.predict_torch(None, None, boxes=boxes, multimask_output=False)
    ref = p_ref.predict_torch(None, None, boxes=boxes, multimask_output=False)
    assert out[0].shape == ref[0].shape == (2, 1, 200, 300)
    assert_same(out[2], ref[2])
    assert_same(out[1], ref[1])


def test_vit_b_reduced_predictor(vit_b_twins):
    """The same pipeline on the vit_b-shaped model (windowed + global blocks, 256 channels)."""
    p_ours, p_ref = twin_predictors(vit_b_twins, seed=4)
    kwargs = dict(point_coords=np.array([[150.0, 100.0]]), point_labels=np.array([1]),
                  box=np.array([30, 20, 270, 180]), return_logits=True)
    for a, b in zip(p_ours.predict(**kwargs), p_ref.predict(**kwargs), strict=True):
        assert_same(torch.from_numpy(a), torch.from_numpy(b))


def test_tiny_preset_is_buildable_officially():
    """Without SAM 2's high-res path (which SAM 1 lacks) the tiny preset is a legal official
    configuration too (same keys, same shapes)."""
    theirs = official.build_official(get_config("tiny"))
    from samteach import build_sam

    ours = build_sam(official.sam1(get_config("tiny")))
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}


def test_resize_torch_paths_use_height_and_width():
    """Meta's pip release reads H, W from shape[0], shape[1] in apply_image_torch; we do not."""
    from samteach import ResizeLongestSide

    ref = official.load("utils.transforms").ResizeLongestSide(128)
    ours = ResizeLongestSide(128)
    image = torch.rand(2, 3, 200, 300)
    assert ours.apply_image_torch(image).shape == (2, 3, 85, 128)
    coords = torch.tensor([[[10.0, 20.0], [299.0, 199.0]]])
    assert_same(ours.apply_coords_torch(coords, (200, 300)),
                ref.apply_coords_torch(coords, (200, 300)))
    boxes = torch.tensor([[10.0, 20.0, 150.0, 120.0]])
    assert_same(ours.apply_boxes_torch(boxes, (200, 300)), ref.apply_boxes_torch(boxes, (200, 300)))
