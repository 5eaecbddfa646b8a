"""samteach.fast.click: the decoder's math re-associated for a click is the decoder's math.

Criterion: low-res logits and IoUs within 1e-4 (fp32) of the readable decoder and of Meta's
predictor; full-size masks equal except on a small share of border pixels (one resize to the
image's size instead of two).
"""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from samteach import SamPredictor, build_sam
from samteach.data import make_scene
from samteach.evaluation import HELD_OUT_SEED
from samteach.fast import click as fast_click
from samteach.fast import use_fast_paths

from . import official
from .conftest import VIT_B_REDUCED, assert_same, randomize_, twins


@pytest.fixture(scope="module")
def vit_b_twins():
    """(readable samteach, official) with the same random weights."""
    return twins(VIT_B_REDUCED, seed=1, fast=False)


def _prompts(sam, K: int, with_masks: bool, size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(K, 3, 2, generator=g) * size
    labels = torch.tensor([[1, 0, 1]] * K)
    boxes = torch.tensor([[0.1, 0.2, 0.7, 0.9]] * K) * size
    masks = torch.randn(K, 1, *sam.prompt_encoder.mask_input_size, generator=g) * 4
    with torch.no_grad():
        return sam.prompt_encoder(points=(coords, labels), boxes=boxes,
                                  masks=masks if with_masks else None)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("with_masks", [False, True])
def test_fast_decoder_equals_the_readable_decoder(vit_b_twins, K, with_masks):
    """vit_b-width decoder, random weights: every mask token and the IoU head, K prompts with
    and without mask prompts (the cached and the uncached layer 0)."""
    sam = vit_b_twins[0]
    g = torch.Generator().manual_seed(5)
    embedding = torch.randn(1, 256, 20, 20, generator=g)
    pe = sam.prompt_encoder.get_dense_pe()
    no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    sparse, dense = _prompts(sam, K, with_masks, 320, seed=K)
    with torch.no_grad():
        expected = sam.mask_decoder.predict_masks(embedding, pe, sparse, dense)
        cache = fast_click.cache_image(sam.mask_decoder, embedding, pe, no_mask)
        actual = fast_click.predict_masks(sam.mask_decoder, cache, embedding, sparse,
                                          dense if with_masks else None)
    for a, b in zip(actual, expected, strict=True):
        assert a.shape == b.shape
        assert_same(a, b)


@pytest.mark.parametrize("depth", [1, 3])
def test_the_click_path_for_decoders_of_any_depth(depth):
    """The cached first layer and the re-associated layers after it, for decoders one and three
    layers deep (SAM's has two, tested above): random weights, two prompts, every mask."""
    config = replace(VIT_B_REDUCED,
                     mask_decoder=replace(VIT_B_REDUCED.mask_decoder, transformer_depth=depth))
    sam = randomize_(build_sam(config, fast=False), seed=depth)
    g = torch.Generator().manual_seed(depth)
    embedding = torch.randn(1, 256, 20, 20, generator=g)
    pe = sam.prompt_encoder.get_dense_pe()
    no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    sparse, dense = _prompts(sam, 2, False, 320, seed=depth)
    with torch.no_grad():
        expected = sam.mask_decoder.predict_masks(embedding, pe, sparse, dense)
        cache = fast_click.cache_image(sam.mask_decoder, embedding, pe, no_mask)
        actual = fast_click.predict_masks(sam.mask_decoder, cache, embedding, sparse, None)
    for a, b in zip(actual, expected, strict=True):
        assert_same(a, b)


@pytest.mark.parametrize("multimask", [True, False])
def test_fast_predictor_matches_meta(vit_b_twins, multimask):
    """The whole pipeline on a 300x200 image against Meta's predictor, same weights."""
    ours, theirs = vit_b_twins
    image = np.random.default_rng(4).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    fast = SamPredictor(use_fast_paths(copy.deepcopy(ours)))  # the default: resize="once"
    ref = official.load("predictor").SamPredictor(theirs)
    fast.set_image(image)
    ref.set_image(image)
    kwargs = dict(point_coords=np.array([[150.0, 100.0], [40.0, 30.0]]),
                  point_labels=np.array([1, 0]), box=np.array([30, 20, 270, 180]),
                  multimask_output=multimask)
    masks, iou, low = fast.predict(**kwargs)
    masks_ref, iou_ref, low_ref = ref.predict(**kwargs)
    assert_same(torch.from_numpy(low), torch.from_numpy(low_ref))
    assert_same(torch.from_numpy(iou), torch.from_numpy(iou_ref))
    assert masks.shape == masks_ref.shape and masks.dtype == bool
    # random weights leave wide bands of logits near 0, where one resize against two moves
    # the border by several pixels (measured: 0.7-1.0 % of the pixels)
    assert (masks != masks_ref).mean() < 0.02


def test_fast_predictor_on_the_shipped_tiny(trained_tiny):
    """With SAM 2's high-res path, a non-square lab scene larger than the model's input (so
    the resize matters), a first click, a corrective click with the mask fed back, and a box:
    the same answers as the readable predictor."""
    scene = make_scene(HELD_OUT_SEED + 5, (300, 400))
    fast = SamPredictor(trained_tiny)  # the default: a fast model, resize="once"
    readable = SamPredictor(use_fast_paths(copy.deepcopy(trained_tiny), False), resize="twice")
    fast.set_image(scene.image)
    readable.set_image(scene.image)
    first = dict(point_coords=np.array([[180.0, 150.0]]), point_labels=np.array([1]))
    answers = [(fast.predict(**first), readable.predict(**first))]
    low = answers[0][1][2][answers[0][1][1].argmax()][None]
    second = dict(point_coords=np.array([[180.0, 150.0], [60.0, 210.0]]),
                  point_labels=np.array([1, 0]), mask_input=low, multimask_output=False)
    answers.append((fast.predict(**second), readable.predict(**second)))
    answers.append((fast.predict(box=np.array([30, 60, 270, 240])),
                    readable.predict(box=np.array([30, 60, 270, 240]))))
    for (masks, iou, low), (masks_ref, iou_ref, low_ref) in answers:
        assert_same(torch.from_numpy(low), torch.from_numpy(low_ref))
        assert_same(torch.from_numpy(iou), torch.from_numpy(iou_ref))
        # border pixels of one resize against two (measured on lab scenes: 0.07 % on average)
        assert (masks != masks_ref).mean() < 0.005


def test_predictor_options_are_checked():
    with pytest.raises(TypeError, match="bf16 must be True or False"):
        SamPredictor(build_sam("tiny"), bf16="yes")
    with pytest.raises(ValueError, match="resize must be one of 'once', 'twice'; got 'thrice'"):
        SamPredictor(build_sam("tiny"), resize="thrice")


def test_bf16_encoder_gives_nearly_the_same_masks(trained_tiny):
    """bf16 autocast for the encoder (opt-in): an fp32 embedding close to fp32's, and first-click
    masks that mostly agree with fp32's."""
    scene = make_scene(HELD_OUT_SEED + 7)
    fp32, bf16 = SamPredictor(trained_tiny), SamPredictor(trained_tiny, bf16=True)
    fp32.set_image(scene.image)
    bf16.set_image(scene.image)
    a, b = fp32.get_image_embedding(), bf16.get_image_embedding()
    assert b.dtype == torch.float32 and not torch.equal(a, b)
    assert float((a - b).norm() / a.norm()) < 0.05
    for mask in scene.masks:
        ys, xs = np.nonzero(mask)
        click = dict(point_coords=np.array([[xs[len(xs) // 2], ys[len(ys) // 2]]], float),
                     point_labels=np.array([1]))
        assert (fp32.predict(**click)[0] != bf16.predict(**click)[0]).mean() < 0.05
