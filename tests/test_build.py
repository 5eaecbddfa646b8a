"""Presets, the registry, and checkpoints: official .pth, samteach safetensors, resizing, errors."""

from dataclasses import replace

import pytest
import torch

from samteach import build_sam, get_config, sam_model_registry
from samteach.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from samteach.config import ImageEncoderConfig

from . import official
from .conftest import VIT_B_REDUCED, assert_same, randomize_

# Parameter counts of Meta's released models (segment_anything build_sam, checked on meta).
OFFICIAL_PARAMS = {"vit_b": 93_735_472, "vit_l": 312_342_832, "vit_h": 641_090_608}
OFFICIAL_KEYS = {"vit_b": 314, "vit_l": 482, "vit_h": 594}


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_state_dict_names_and_shapes_equal_official(name):
    builder = getattr(official.load("build_sam"), f"build_sam_{name}")
    with torch.device("meta"):  # no memory, no init cost: only names and shapes
        theirs, ours = builder(), build_sam(name)
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert list(shapes) == list(theirs.state_dict())  # even the order
    assert len(shapes) == OFFICIAL_KEYS[name]
    assert sum(p.numel() for p in ours.parameters()) == OFFICIAL_PARAMS[name]
    assert "pixel_mean" not in shapes  # non-persistent, as in the official model
    assert "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in shapes


def test_registry_has_official_names_and_tiny():
    assert set(sam_model_registry) == {"default", "vit_h", "vit_l", "vit_b", "tiny"}
    sam = sam_model_registry["tiny"]()
    assert sam.image_encoder.img_size == 128 and not sam.training


def test_official_pth_loads_strictly_with_weights_only(tmp_path):
    sam1 = official.sam1(get_config("tiny"))  # Meta's SAM 1 has no high-res path
    theirs = randomize_(official.build_official(sam1), seed=7)
    path = tmp_path / "official_tiny.pth"
    torch.save(theirs.state_dict(), path)  # how Meta's files were written: a plain state dict
    ours = build_sam(sam1, checkpoint=path)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert_same(ours.image_encoder(x), theirs.image_encoder(x))


def test_safetensors_round_trip_keeps_the_config(tmp_path):
    config = replace(get_config("tiny"), name="tiny-variant")
    sam = randomize_(build_sam(config), seed=8)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(sam, path)
    state_dict, stored = read_checkpoint(path)
    assert stored == config
    again = build_sam(None, checkpoint=path)  # config taken from the file
    assert again.config == config
    for key, value in sam.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    state = official.build_official(get_config("tiny")).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["mask_decoder.iou_token.weight"]
    state["mask_decoder.mask_tokens.weight"] = torch.zeros(3, 64)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as err:
        build_sam(official.sam1(get_config("tiny")), checkpoint=path)
    message = str(err.value)
    assert str(path) in message
    assert "missing keys (1):\n    mask_decoder.iou_token.weight" in message
    assert "unexpected keys (1):\n    extra.weight" in message
    assert "mask_decoder.mask_tokens.weight: (3, 64) vs (4, 64)" in message
    assert isinstance(err.value, ValueError)


def test_checkpoint_for_another_preset_is_named(tmp_path):
    with torch.device("meta"):
        vit_b_keys = {k: tuple(v.shape) for k, v in build_sam("vit_b").state_dict().items()}
    path = tmp_path / "vit_b_like.pth"
    # Stride-0 views: torch.save stores one float per tensor, yet the shapes are vit_b's.
    torch.save({k: torch.zeros(()).expand(s) for k, s in vit_b_keys.items()}, path)
    with pytest.raises(CheckpointMismatchError, match="looks like preset 'vit_b'.*model is 'tiny'"):
        build_sam("tiny", checkpoint=path)


def test_non_strict_loads_what_fits(tmp_path):
    sam = randomize_(build_sam("tiny"), seed=9)
    state = sam.state_dict()
    state.pop("mask_decoder.iou_token.weight")
    fresh = build_sam("tiny")
    path = tmp_path / "partial.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    load_checkpoint(fresh, path, strict=False)
    assert torch.equal(fresh.prompt_encoder.no_mask_embed.weight,
                       sam.prompt_encoder.no_mask_embed.weight)


@pytest.mark.parametrize("stored, pattern", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"name": "x"}', "not a samteach SamConfig"),
])
def test_a_checkpoint_whose_config_metadata_is_broken(tmp_path, stored, pattern):
    """The config a samteach safetensors carries in its metadata, damaged: a clear error naming
    the file, not a bare JSONDecodeError."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in build_sam("tiny").state_dict().items()}
    path = tmp_path / "damaged.safetensors"
    save_file(state, str(path), metadata={"format": "pt", "samteach_config": stored})
    with pytest.raises(ValueError, match=f"checkpoint {path}: .*{pattern}"):
        build_sam(checkpoint=path)


def test_loading_at_a_smaller_size_resizes_position_tables(tmp_path):
    """A vit_b-shaped checkpoint saved at 320 px, loaded into the same model at 160 px."""
    big = randomize_(build_sam(VIT_B_REDUCED), seed=10)
    path = tmp_path / "big.safetensors"
    save_checkpoint(big, path)
    small_config = replace(VIT_B_REDUCED.at_image_size(160),
                           image_encoder=replace(VIT_B_REDUCED.image_encoder, img_size=160))
    small = build_sam(small_config, checkpoint=path)
    enc_big, enc_small = big.image_encoder, small.image_encoder
    assert enc_small.pos_embed.shape == (1, 10, 10, 768)
    # the global block's tables shrink 39 -> 19 entries; windowed ones (27) are untouched
    assert enc_small.blocks[1].attn.rel_pos_h.shape == (19, 64)
    assert torch.equal(enc_small.blocks[0].attn.rel_pos_h, enc_big.blocks[0].attn.rel_pos_h)
    # The resized table is what Meta's own get_rel_pos would interpolate at run time.
    get_rel_pos = official.load("modeling.image_encoder").get_rel_pos
    from samteach.modeling.image_encoder import relative_table

    for axis in ("rel_pos_h", "rel_pos_w"):
        big_table = getattr(enc_big.blocks[1].attn, axis).detach()
        small_table = getattr(enc_small.blocks[1].attn, axis).detach()
        assert_same(relative_table(small_table, 10), get_rel_pos(10, 10, big_table))
    with torch.no_grad():
        out = small.image_encoder(torch.randn(1, 3, 160, 160))
    assert out.shape == (1, 256, 10, 10) and torch.isfinite(out).all()


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "payload": ImageEncoderConfig()}, path)
    with pytest.raises(ValueError, match="never unpickles code"):
        build_sam("tiny", checkpoint=path)


@pytest.mark.parametrize("content", [b"PK\x03\x04 definitely not a zip", b"\x00" * 64,
                                     b"garbage that is no checkpoint at all"])
def test_corrupt_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="checkpoint .*broken.pth"):
        build_sam("tiny", checkpoint=path)


def test_missing_file_and_wrong_types():
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        build_sam("tiny", checkpoint="/nonexistent/sam.pth")
    with pytest.raises(TypeError, match="config"):
        build_sam(42)
    with pytest.raises(ValueError, match="unknown preset 'vit_x'"):
        build_sam("vit_x")
    with pytest.raises(ValueError, match="config is None"):
        build_sam(None)
