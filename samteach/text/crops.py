"""The crop SAM's text prompting was trained on (App. D.5): an object, as CLIP sees it.

At training time the prompt of an object is the CLIP *image* embedding of a crop around it: its
box grown by a random factor in [1, 2], cut as a square around the box's centre, resized to
CLIP's input size, and with probability 0.5 every pixel outside the object's mask zeroed -- so
that the embedding describes the object, sometimes with its surroundings, sometimes without.
"""

import torch
import torch.nn.functional as F

from ..utils.arguments import validate_int, validate_number
from ..utils.masks import mask_to_box

__all__ = ["object_crop", "sample_square"]


def object_crop(image: torch.Tensor, mask: torch.Tensor, size: int,
                generator: torch.Generator | None = None, grow: tuple[float, float] = (1.0, 2.0),
                zero_outside: float = 0.5) -> torch.Tensor:
    """(3, H, W) image and (H, W) bool mask -> the (3, size, size) crop of the object.

    The square's side is the box's longer side times a factor drawn uniformly in ``grow``;
    where it leaves the image the crop is zero (black), as padding. With probability
    ``zero_outside`` the pixels outside the mask are zeroed too.
    """
    validate_int(size, "size")
    low, high = (validate_number(g, "grow", low=1.0) for g in grow)
    validate_number(zero_outside, "zero_outside", 0, 1)
    if image.dim() != 3 or mask.shape != image.shape[1:] or mask.dtype != torch.bool:
        raise ValueError(f"image must be (3, H, W) and mask (H, W) bool of the same size; got "
                         f"{tuple(image.shape)} and {tuple(mask.shape)} {mask.dtype}")
    if not mask.any():
        raise ValueError("mask is empty: there is no object to crop")
    draws = torch.rand(2, generator=generator, device=mask.device)
    factor = low + (high - low) * float(draws[0])
    x0, y0, x1, y1 = (float(v) for v in mask_to_box(mask))
    cx, cy = (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2  # the box's centre, in pixel edges
    half = factor * max(x1 - x0 + 1, y1 - y0 + 1) / 2
    pixels = image.float()
    if float(draws[1]) < zero_outside:
        pixels = pixels * mask
    return sample_square(pixels, (cx, cy), half, size)


def sample_square(pixels: torch.Tensor, centre: tuple[float, float], half: float,
                  size: int) -> torch.Tensor:
    """(3, H, W) float pixels -> the (3, size, size) square of half-side ``half`` (in pixels)
    around ``centre`` = (x, y) (in pixel edges: pixel (0, 0) spans [0, 1] x [0, 1]), sampled
    bilinearly; where the square leaves the image it reads zeros."""
    cx, cy = centre
    H, W = pixels.shape[-2:]
    # grid_sample's coordinates: -1 and 1 are the image's outer edges (align_corners=False).
    steps = torch.arange(size, dtype=torch.float32, device=pixels.device)
    steps = (steps + 0.5) / size * 2 - 1  # the size output pixels' centres, in (-1, 1)
    xs = (cx + half * steps) / W * 2 - 1
    ys = (cy + half * steps) / H * 2 - 1
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)  # (size, size, 2)
    return F.grid_sample(pixels[None], grid[None], mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0]
