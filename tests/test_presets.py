"""Configs and presets: validation, composition, and a forward/backward smoke test."""

import inspect
from dataclasses import asdict, fields, replace

import pytest
import torch

from samteach import PRESETS, SamConfig, build_sam, get_config
from samteach.config import (
    ImageEncoderConfig,
    MaskDecoderConfig,
    PromptEncoderConfig,
    config_from_dict,
    config_to_dict,
)
from samteach.modeling import ImageEncoderViT, PromptEncoder


def test_official_numbers():
    for name, (dim, depth, heads, glob) in {
        "vit_b": (768, 12, 12, (2, 5, 8, 11)),
        "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
        "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
    }.items():
        enc = get_config(name).image_encoder
        assert (enc.embed_dim, enc.depth, enc.num_heads, enc.global_attn_indexes) == \
            (dim, depth, heads, glob)
        assert (enc.img_size, enc.patch_size, enc.window_size) == (1024, 16, 14)
    assert get_config("default") == get_config("vit_h")


@pytest.mark.parametrize("config_cls, module", [
    (ImageEncoderConfig, ImageEncoderViT), (PromptEncoderConfig, PromptEncoder)])
def test_component_configs_are_the_constructor_arguments(config_cls, module):
    params = set(inspect.signature(module).parameters)
    assert {f.name for f in fields(config_cls)} == params


def test_configs_are_frozen_and_round_trip():
    config = get_config("tiny")
    with pytest.raises(AttributeError):
        config.name = "other"
    assert config_from_dict(config_to_dict(config)) == config
    with pytest.raises(ValueError, match="not a samteach SamConfig"):
        config_from_dict({"name": "x"})


@pytest.mark.parametrize("make, pattern", [
    (lambda: ImageEncoderConfig(img_size=100, patch_size=16), "multiple of patch_size"),
    (lambda: ImageEncoderConfig(embed_dim=100, num_heads=12), "divisible by num_heads"),
    (lambda: ImageEncoderConfig(depth=2, global_attn_indexes=(5,)), "outside the 2 blocks"),
    (lambda: ImageEncoderConfig(depth=0), "depth must be a positive int"),
    (lambda: MaskDecoderConfig(transformer_dim=64, transformer_num_heads=5), "divisible"),
    (lambda: PromptEncoderConfig(embed_dim=63), "must be even"),
    (lambda: SamConfig(prompt_encoder=PromptEncoderConfig(embed_dim=128)),
     r"prompt_encoder.embed_dim \(128\) must equal image_encoder.out_chans \(256\)"),
    (lambda: SamConfig(image_encoder=ImageEncoderConfig(img_size=512)),
     "prompt_encoder.image_embedding_size"),
    (lambda: SamConfig(fast="yes"), "fast must be True or False"),
])
def test_inconsistent_configs_are_rejected(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_at_image_size_keeps_the_parts_consistent():
    config = get_config("vit_b").at_image_size(512)
    assert config.prompt_encoder.image_embedding_size == (32, 32)
    assert config.prompt_encoder.input_image_size == (512, 512)
    assert config.prompt_encoder.mask_input_size == (128, 128)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_with_the_right_shapes(name):
    config = get_config(name)
    with torch.device("meta"):
        sam = build_sam(name)
        grid = config.image_encoder.embedding_size
        x = torch.zeros(1, 3, config.image_encoder.img_size, config.image_encoder.img_size)
        assert sam.image_encoder(x).shape == (1, config.image_encoder.out_chans, grid, grid)


def test_tiny_forward_backward_is_finite():
    sam = build_sam("tiny").train()
    x = torch.randn(2, 3, 128, 128)
    embeddings = sam.image_encoder(x)
    points = (torch.rand(4, 2, 2) * 128, torch.tensor([[1, 0]] * 4))
    sparse, dense = sam.prompt_encoder(points=points, boxes=None,
                                       masks=torch.randn(4, 1, 64, 64))
    fine = sam.image_encoder.high_res_stem(x)  # the tiny preset has SAM 2's high-res path
    masks, iou = sam.mask_decoder(embeddings, sam.prompt_encoder.get_dense_pe(), sparse, dense,
                                  multimask_output=True, high_res_features=fine)
    assert masks.shape == (4, 3, 64, 64) and iou.shape == (4, 3)
    (masks.mean() + iou.mean()).backward()
    unused = {"prompt_encoder.no_mask_embed.weight"}  # a mask prompt was given
    grads = {n: p.grad for n, p in sam.named_parameters() if n not in unused}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())


def test_fast_override_leaves_architecture_alone():
    config = get_config("tiny")
    sam = build_sam(config, fast=False)
    assert sam.config == replace(config, fast=False)
    assert asdict(sam.config.image_encoder) == asdict(config.image_encoder)
