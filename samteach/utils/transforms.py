"""Resize images and prompts so the longest image side equals the model's input size.

SAM never distorts an image: it scales it so the longer side is ``img_size`` (1024), keeps the
aspect ratio, and later pads the short side (``Sam.preprocess``). Prompts given in original
pixel coordinates must be scaled the same way.

No torchvision: numpy images are resized with PIL's bilinear filter on uint8 -- exactly what
Meta's code does through torchvision -- so official checkpoints see the pixels they expect.
"""

import numpy as np
import torch
import torch.nn.functional as F


class ResizeLongestSide:
    """Scale images, coordinates and boxes so the longest image side is ``target_length``."""

    def __init__(self, target_length: int) -> None:
        self.target_length = target_length

    @staticmethod
    def get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
        """(H, W) after scaling the longest side to ``long_side_length``: 480x640 -> 768x1024."""
        scale = long_side_length * 1.0 / max(oldh, oldw)
        newh, neww = oldh * scale, oldw * scale
        return int(newh + 0.5), int(neww + 0.5)  # round half up, as the original code does

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (H', W', 3) uint8, PIL bilinear (antialiased when shrinking)."""
        from PIL import Image  # local: keeps `import samteach` light

        h, w = image.shape[:2]
        newh, neww = self.get_preprocess_shape(h, w, self.target_length)
        resized = Image.fromarray(image).resize((neww, newh), Image.Resampling.BILINEAR)
        return np.array(resized)  # a writable copy, so torch.as_tensor can share it safely

    def apply_coords(self, coords: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """(..., 2) pixel (x, y) in an image of ``original_size`` (H, W) -> resized frame."""
        old_h, old_w = original_size
        new_h, new_w = self.get_preprocess_shape(old_h, old_w, self.target_length)
        coords = np.array(coords, dtype=float)  # a float64 copy: never edit the caller's array
        coords[..., 0] *= new_w / old_w  # x scales with the width
        coords[..., 1] *= new_h / old_h  # y scales with the height
        return coords

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, ...]) -> np.ndarray:
        """(..., 4) boxes x0, y0, x1, y1 -> (N, 4) in the resized frame."""
        corners = self.apply_coords(np.asarray(boxes).reshape(-1, 2, 2), original_size)
        return corners.reshape(-1, 4)

    def apply_image_torch(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float -> (B, C, H', W'), antialiased bilinear.

        Close to, but not bit-equal with, ``apply_image``: use that one for official parity.
        (Meta's pip release reads H and W from the wrong axes here; this reads shape[2:].)
        """
        h, w = image.shape[2], image.shape[3]
        target = self.get_preprocess_shape(h, w, self.target_length)
        return F.interpolate(image, target, mode="bilinear", align_corners=False, antialias=True)

    def apply_coords_torch(
        self, coords: torch.Tensor, original_size: tuple[int, ...]
    ) -> torch.Tensor:
        """Like :meth:`apply_coords`, for a tensor (returns a new float tensor)."""
        old_h, old_w = original_size
        new_h, new_w = self.get_preprocess_shape(old_h, old_w, self.target_length)
        scale = torch.tensor([new_w / old_w, new_h / old_h], device=coords.device)
        return coords.to(torch.float) * scale

    def apply_boxes_torch(
        self, boxes: torch.Tensor, original_size: tuple[int, ...]
    ) -> torch.Tensor:
        """Like :meth:`apply_boxes`, for a tensor."""
        return self.apply_coords_torch(boxes.reshape(-1, 2, 2), original_size).reshape(-1, 4)
