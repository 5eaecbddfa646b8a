"""Meta's API where users expect it: code written for ``segment_anything`` runs on samteach.

The tutorial below is the core of Meta's ``predictor_example`` and
``automatic_mask_generator_example`` notebooks, with only the image, the prompts' coordinates and
the model type fitted to the course's tiny model. It runs with ``samteach`` in place of
``segment_anything`` and nothing else changed.
"""

import numpy as np
import pytest
import torch

from samteach import build_sam, get_config
from samteach.data.scenes import make_scene

from . import official

TUTORIAL = '''
import numpy as np
import torch

from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.utils.amg import batched_mask_to_box, calculate_stability_score
from segment_anything.utils.transforms import ResizeLongestSide

sam = sam_model_registry[model_type](checkpoint=sam_checkpoint)
sam.to(device=device)

predictor = SamPredictor(sam)
predictor.set_image(image)
input_point = np.array([[60, 40]])
input_label = np.array([1])
masks, scores, logits = predictor.predict(
    point_coords=input_point, point_labels=input_label, multimask_output=True)
mask_input = logits[np.argmax(scores), :, :]  # choose the model's best mask
masks_2, _, _ = predictor.predict(
    point_coords=np.array([[60, 40], [90, 70]]), point_labels=np.array([1, 1]),
    mask_input=mask_input[None, :, :], multimask_output=False)
input_box = np.array([10, 10, 100, 90])
masks_box, _, _ = predictor.predict(
    point_coords=None, point_labels=None, box=input_box[None, :], multimask_output=False)

input_boxes = torch.tensor([[10, 10, 100, 90], [20, 30, 60, 80]], device=predictor.device)
transformed_boxes = predictor.transform.apply_boxes_torch(input_boxes, image.shape[:2])
masks_boxes, _, _ = predictor.predict_torch(
    point_coords=None, point_labels=None, boxes=transformed_boxes, multimask_output=False)

resize_transform = ResizeLongestSide(sam.image_encoder.img_size)


def prepare_image(image, transform, device):
    image = transform.apply_image(image)
    image = torch.as_tensor(image, device=device.device)
    return image.permute(2, 0, 1).contiguous()


batched_input = [{
    "image": prepare_image(image, resize_transform, sam),
    "boxes": resize_transform.apply_boxes_torch(input_boxes, image.shape[:2]),
    "original_size": image.shape[:2],
}]
batched_output = sam(batched_input, multimask_output=False)

mask_generator = SamAutomaticMaskGenerator(sam)
records = mask_generator.generate(image)
mask_generator_2 = SamAutomaticMaskGenerator(
    model=sam, points_per_side=8, pred_iou_thresh=0.5, stability_score_thresh=0.8,
    crop_n_layers=1, crop_n_points_downscale_factor=2, min_mask_region_area=10)
records_2 = mask_generator_2.generate(image)
boxes = batched_mask_to_box(masks_boxes[:, 0])
stability = calculate_stability_score(torch.as_tensor(logits), 0.0, 1.0)
'''


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The shipped tiny model saved the way Meta saved theirs: a plain state dict, .pth."""
    path = tmp_path_factory.mktemp("ckpt") / "sam_tiny.pth"
    torch.save(build_sam("tiny", pretrained=True).state_dict(), path)
    return path


def test_a_tutorial_for_meta_s_package_runs_on_samteach(checkpoint):
    image = make_scene(3, (96, 128)).image
    scope = {"model_type": "tiny", "sam_checkpoint": str(checkpoint), "device": "cpu",
             "image": image}
    exec(compile(TUTORIAL.replace("segment_anything", "samteach"), "tutorial", "exec"), scope)
    assert scope["masks"].shape == (3, 96, 128) and scope["scores"].shape == (3,)
    assert scope["logits"].shape == (3, 64, 64)
    assert scope["masks_2"].shape == scope["masks_box"].shape == (1, 96, 128)
    assert scope["masks_boxes"].shape == (2, 1, 96, 128)
    assert scope["batched_output"][0]["masks"].shape == (2, 1, 96, 128)
    assert isinstance(scope["records"], list) and scope["records_2"]
    assert set(scope["records_2"][0]) == {"segmentation", "area", "bbox", "predicted_iou",
                                          "point_coords", "stability_score", "crop_box"}
    assert scope["boxes"].shape == (2, 4) and scope["stability"].shape == (3,)


def test_build_sam_takes_a_checkpoint_path_first(checkpoint, tmp_path):
    sam = build_sam(str(checkpoint))  # Meta: build_sam(checkpoint) -- the preset is read off it
    assert sam.config.name == "tiny" and sam.image_encoder.high_res_stem is not None
    sam1 = official.sam1(get_config("tiny"))  # a SAM 1 file (Meta's format, no high-res path)
    path = tmp_path / "sam1_tiny.pth"
    torch.save(official.build_official(sam1).state_dict(), path)
    plain = build_sam(path)
    assert plain.image_encoder.high_res_stem is None and plain.config.image_encoder.depth == 4
    odd = tmp_path / "odd.pth"
    torch.save({"something.else": torch.zeros(1)}, odd)
    with pytest.raises(ValueError, match="matches no preset"):
        build_sam(odd)


def test_the_generator_takes_meta_s_positional_arguments():
    from samteach import SamAutomaticMaskGenerator

    sam = build_sam("tiny")
    by_position = SamAutomaticMaskGenerator(sam, 16, 32, 0.8, 0.9)
    config = by_position.config
    assert (config.points_per_side, config.points_per_batch, config.pred_iou_thresh,
            config.stability_score_thresh) == (16, 32, 0.8, 0.9)
    assert SamAutomaticMaskGenerator(sam, "cpu_lab").config.points_per_side == 16
    with pytest.raises(TypeError, match="given twice"):
        SamAutomaticMaskGenerator(sam, 16, points_per_side=8)


def test_meta_s_utility_names_are_samteach_s_functions():
    from samteach import amg
    from samteach.utils import amg as meta_names
    from samteach.utils.masks import mask_to_box

    assert meta_names.batched_mask_to_box is mask_to_box
    assert meta_names.calculate_stability_score is amg.stability_score
    assert meta_names.mask_to_rle_pytorch is amg.mask_to_rle
    masks = torch.rand(3, 10, 12) > 0.5
    assert np.array_equal(meta_names.rle_to_mask(meta_names.mask_to_rle_pytorch(masks)[1]),
                          masks[1].numpy())
    assert [b.shape for (b,) in meta_names.batch_iterator(2, np.arange(5))] == [(2,), (2,), (1,)]
