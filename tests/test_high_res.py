"""SAM 2's high-resolution mask path, as an optional flag: off in Meta's presets, exact where on."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from samteach import SamPredictor, build_sam, get_config
from samteach.data.scenes import make_scene
from samteach.training import SceneMasks, TrainConfig, interactive_step


def with_high_res(config, on: bool = True):
    return replace(config, image_encoder=replace(config.image_encoder, high_res_stem=on),
                   mask_decoder=replace(config.mask_decoder, use_high_res_features=on))


PLAIN = with_high_res(get_config("tiny"), on=False)  # the tiny model without the path


@pytest.fixture(scope="module")
def hr_sam():
    torch.manual_seed(0)
    return build_sam(with_high_res(get_config("tiny")))


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_off_in_meta_presets(name):
    config = get_config(name)
    assert not config.image_encoder.high_res_stem
    assert not config.mask_decoder.use_high_res_features


def test_the_tiny_preset_has_it():
    config = get_config("tiny")
    assert config.image_encoder.high_res_stem and config.mask_decoder.use_high_res_features


def test_flags_must_agree():
    with pytest.raises(ValueError, match="mask_decoder.use_high_res_features .* must equal "
                                         "image_encoder.high_res_stem"):
        replace(PLAIN, mask_decoder=replace(PLAIN.mask_decoder, use_high_res_features=True))


def test_keys_follow_sam2_names(hr_sam):
    keys = set(hr_sam.state_dict()) - set(build_sam(PLAIN).state_dict())
    assert {k.split(".")[1] for k in keys} == {"high_res_stem", "conv_s0", "conv_s1"}
    assert "mask_decoder.conv_s0.weight" in keys and "mask_decoder.conv_s1.weight" in keys


def test_stem_maps_have_the_upscaling_strides(hr_sam):
    x = torch.randn(2, 3, 128, 128)
    s0, s1 = hr_sam.image_encoder.high_res_stem(x)
    assert s0.shape == (2, 16, 64, 64) and s1.shape == (2, 32, 32, 32)  # C/4 at 4x, C/2 at 2x


def test_the_decoder_asks_for_what_it_was_built_with(hr_sam):
    predictor = SamPredictor(hr_sam)
    predictor.set_image(make_scene(0).image)
    sparse, dense = hr_sam.prompt_encoder(points=(torch.tensor([[[5.0, 5.0]]]),
                                                  torch.tensor([[1]])), boxes=None, masks=None)
    pe = hr_sam.prompt_encoder.get_dense_pe()
    with pytest.raises(ValueError, match="pass high_res_features=image_encoder.high_res_stem"):
        hr_sam.mask_decoder(predictor.features, pe, sparse, dense, True)
    plain = build_sam(PLAIN)
    with pytest.raises(ValueError, match="no high-res path"):
        plain.mask_decoder(plain.image_encoder(torch.zeros(1, 3, 128, 128)), pe, sparse, dense,
                           True, high_res_features=predictor.high_res_features)


def test_predictor_and_batched_forward_agree(hr_sam):
    image = make_scene(3, (96, 128)).image
    predictor = SamPredictor(hr_sam)
    predictor.set_image(image)
    masks, scores, low_res = predictor.predict(np.array([[60, 40]]), np.array([1]),
                                               return_logits=True)
    resized = torch.as_tensor(predictor.transform.apply_image(image)).permute(2, 0, 1)
    coords = predictor.transform.apply_coords(np.array([[[60.0, 40.0]]]), (96, 128))
    out = hr_sam([{"image": resized, "original_size": (96, 128),
                   "point_coords": torch.as_tensor(coords, dtype=torch.float),
                   "point_labels": torch.tensor([[1]])}], multimask_output=True)[0]
    torch.testing.assert_close(out["iou_predictions"][0], torch.as_tensor(scores))
    torch.testing.assert_close(out["low_res_logits"][0], torch.as_tensor(low_res))


def test_training_reaches_the_stem():
    data = SceneMasks(128, 2, generic_share=0.5)
    images, masks, sizes = (torch.stack(x) for x in zip(*(data[i] for i in range(2)),
                                                        strict=True))
    config = TrainConfig(images_per_step=2, masks_per_image=2, rounds=2, no_click_rounds=0,
                         grad_rounds="all")
    sam = build_sam(with_high_res(get_config("tiny"))).train()
    optimizer = torch.optim.SGD(sam.parameters(), lr=0.1)
    stem = list(sam.image_encoder.high_res_stem.parameters())
    for step in range(2):
        optimizer.zero_grad()
        out = interactive_step(sam, images, masks, config, torch.Generator().manual_seed(0),
                               input_sizes=sizes)
        out["loss"].backward()
        # The projections start at zero, so their own gradient moves them first (step 0);
        # from then on the stem behind them learns too.
        assert sam.mask_decoder.conv_s0.weight.grad.abs().sum() > 0
        reached = [p.grad is not None and p.grad.abs().sum() > 0 for p in stem]
        assert all(reached) == (step == 1)
        optimizer.step()


def test_adding_the_path_changes_no_other_initial_weight():
    """The optional modules draw their initial weights aside, so a seeded model with the path
    starts with exactly the weights of the same seeded model without it."""
    torch.manual_seed(0)
    plain = build_sam(PLAIN).state_dict()
    torch.manual_seed(0)
    with_path = build_sam(with_high_res(PLAIN)).state_dict()
    assert all(torch.equal(value, with_path[key]) for key, value in plain.items())
    assert len(with_path) > len(plain)
