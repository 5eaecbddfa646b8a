"""Bad input gets a ValueError/TypeError at the public entry point, naming the argument.

(Checkpoint errors -- another preset, corrupt file, pickled code -- are in test_build.py.)
"""

import numpy as np
import pytest
import torch

from samteach import SamPredictor, build_sam
from samteach.utils.arguments import ImageNotSetError

IMAGE = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def predictor():
    predictor = SamPredictor(build_sam("tiny"))
    predictor.set_image(IMAGE)
    return predictor


@pytest.mark.parametrize("image, error, names", [
    (IMAGE.astype(np.float32) / 255, TypeError, "dtype uint8"),
    (IMAGE[..., 0], ValueError, r"shape \(H, W, 3\).*got shape \(200, 300\)"),
    (np.zeros((200, 300, 4), np.uint8), ValueError, r"3 colour channels.*\(200, 300, 4\)"),
    (IMAGE.tolist(), TypeError, "numpy array"),
    (torch.zeros(200, 300, 3, dtype=torch.uint8), TypeError, "set_torch_image"),
    (np.zeros((0, 10, 3), np.uint8), ValueError, "empty"),
])
def test_bad_images(image, error, names):
    predictor = SamPredictor(build_sam("tiny"))
    with pytest.raises(error, match=f"image .*{names}" if "image" not in names else names):
        predictor.set_image(image)


def test_bad_image_format():
    with pytest.raises(ValueError, match="image_format must be 'RGB' or 'BGR'; got 'rgb'"):
        SamPredictor(build_sam("tiny")).set_image(IMAGE, image_format="rgb")


def test_predict_before_set_image():
    predictor = SamPredictor(build_sam("tiny"))
    for call in (lambda: predictor.predict(np.array([[1, 1]]), np.array([1])),
                 lambda: predictor.predict_torch(None, None),
                 predictor.get_image_embedding):
        with pytest.raises(ImageNotSetError, match=r"call set_image\(image\) first"):
            call()
    # As in Meta's predictor it is a RuntimeError; like every misuse here, a ValueError.
    assert issubclass(ImageNotSetError, RuntimeError) and issubclass(ImageNotSetError, ValueError)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(point_coords=np.array([10, 20]), point_labels=np.array([1])), ValueError,
     r"point_coords must be \(N, 2\) .*got shape \(2,\)"),
    (dict(point_coords=np.zeros((2, 3)), point_labels=np.array([1, 1])), ValueError,
     r"point_coords must be \(N, 2\).*\(2, 3\)"),
    (dict(point_coords=np.array([[10, 20], [30, 40]]), point_labels=np.array([1, 0, 1])),
     ValueError, "point_labels has 3 entries per prompt but point_coords has 2 points"),
    (dict(point_coords=np.array([[10, 20]]), point_labels=np.array([5])), ValueError,
     r"point_labels must be in \{-1, 0, 1, 2, 3\}.*got \[5\]"),
    (dict(point_coords=np.array([[10, 20]]), point_labels=np.array([0.5])), ValueError,
     r"point_labels must be in .*got \[0.5\]"),
    (dict(point_coords=np.array([[10, 20]])), ValueError, "point_labels must be given"),
    (dict(point_labels=np.array([1])), ValueError, "point_coords must be given"),
    (dict(point_coords=np.array([[900, 20]]), point_labels=np.array([1])), ValueError,
     r"point_coords must be pixel \(x, y\) coordinates inside the 300x200"),
    (dict(point_coords=np.array([[np.nan, 20]]), point_labels=np.array([1])), ValueError,
     "point_coords must contain finite numbers"),
    (dict(point_coords="10,20", point_labels=np.array([1])), TypeError, "point_coords must be"),
    # every pixel of a mask passed as clicks: refused at once, not a minute of attention
    (dict(point_coords=np.argwhere(np.ones((200, 300)))[:, ::-1].astype(float),
          point_labels=np.ones(60000)), ValueError,
     "point_coords holds 60000 points per prompt; SAM takes a few clicks"),
    (dict(box=np.array([10, 20, 30])), ValueError, r"box must be 4 numbers.*\(3,\)"),
    (dict(box=np.array([100, 20, 30, 80])), ValueError, "box must be x0, y0, x1, y1 with x0 <= x1"),
    (dict(box=np.array([10, 20, 30, 800])), ValueError, "box must be pixel .* inside"),
    (dict(mask_input=np.zeros((256, 256))), ValueError,
     r"mask_input must have shape \(1, 64, 64\).*got \(256, 256\)"),
])
def test_bad_prompts(predictor, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        predictor.predict(**kwargs)


def test_points_slightly_outside_are_accepted(predictor):
    """A click on the border of a canvas may land a pixel outside: that is not an error."""
    masks, _, _ = predictor.predict(np.array([[300.5, -1.0]]), np.array([1]))
    assert masks.shape == (3, 200, 300)


@pytest.mark.parametrize("args, pattern", [
    ((torch.zeros(2, 2), torch.ones(2, 1)), r"point_coords must be a \(B, N, 2\) tensor"),
    ((torch.zeros(2, 1, 2), torch.ones(2, 3)), r"point_labels must be \(B, N\) = \(2, 1\)"),
    ((np.zeros((1, 1, 2)), np.ones((1, 1))), "point_coords must be a torch.Tensor"),
    ((None, None, torch.zeros(1, 5)), r"boxes must be a \(B, 4\) tensor"),
    ((None, None, None, torch.zeros(1, 256, 256)), r"mask_input must be a \(B, 1, 64, 64\)"),
    ((torch.zeros(1, 5000, 2), torch.ones(1, 5000)), "holds 5000 points per prompt"),
    ((torch.zeros(2, 1, 2), torch.ones(2, 1), torch.tensor([[0.0, 0, 9, 9]])),
     "prompt tensors must share the batch size"),
])
def test_bad_predict_torch_tensors(predictor, args, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        predictor.predict_torch(*args)


def test_bad_predict_batch(predictor):
    with pytest.raises(ValueError, match=r"point_coords must be \(B, K, N, 2\) with B = 1"):
        predictor.predict_batch(np.zeros((2, 1, 1, 2)), np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match=r"boxes must be \(B, K, 4\)"):
        predictor.predict_batch(boxes=np.zeros((1, 4)))
    with pytest.raises(ValueError, match="same number K of prompts per image"):
        predictor.predict_batch(np.ones((1, 3, 1, 2)), np.ones((1, 3, 1)),
                                boxes=np.array([[[0, 0, 9, 9]] * 2]))
    with pytest.raises(ValueError, match="point_coords must be pixel .* inside the 300x200"):
        predictor.predict_batch(np.array([[[[10, 20]], [[10, 900]]]]), np.ones((1, 2, 1)))
    with pytest.raises(ValueError, match="boxes must be x0, y0, x1, y1 with x0 <= x1"):
        predictor.predict_batch(boxes=np.array([[[0, 0, 9, 9], [50, 0, 9, 9]]]))
    with pytest.raises(ValueError, match="predict_batch needs prompts"):
        predictor.predict_batch()
    with pytest.raises(ValueError, match=r"mask_input must have shape \(1, 3, 1, 64, 64\)"):
        predictor.predict_batch(np.ones((1, 3, 1, 2)), np.ones((1, 3, 1)),
                                mask_input=np.zeros((1, 2, 1, 64, 64)))


def test_predictor_needs_a_sam():
    with pytest.raises(TypeError, match="sam_model must be a samteach Sam"):
        SamPredictor("vit_b")


def test_set_torch_image_checks_its_tensor():
    predictor = SamPredictor(build_sam("tiny"))
    with pytest.raises(ValueError, match=r"transformed_image must be \(1, 3, H', W'\) with "
                                         "longest side 128"):
        predictor.set_torch_image(torch.zeros(1, 3, 200, 300), (200, 300))


def test_sam_forward_checks_batched_input():
    sam = build_sam("tiny")
    with pytest.raises(TypeError, match="batched_input must be a list of dicts"):
        sam({"image": torch.zeros(3, 128, 128)}, multimask_output=True)
    with pytest.raises(ValueError, match=r"batched_input\[0\]\['image'\] must be resized"):
        sam([{"image": torch.zeros(3, 200, 300), "original_size": (200, 300)}], True)
