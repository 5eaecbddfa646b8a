"""Pictures as SAM wants them: (H, W, 3) uint8 RGB, from whatever a user has at hand.

One loader for the whole library: the click session and widget, the dataset readers and the
plots all take an image through :func:`load_image`.
"""

from pathlib import Path

import numpy as np
import torch

__all__ = ["load_image"]


def load_image(image: object, name: str = "image") -> np.ndarray:
    """A picture as SAM wants it: (H, W, 3) uint8 RGB.

    Accepts the path of an image file (str or Path); a PIL image; a numpy array or torch
    tensor (H, W, 3), (H, W, 4) (alpha dropped), (H, W) grayscale or a (3, H, W) tensor, in
    uint8 or floats in [0, 1]. Errors name the argument (``name``).
    """
    if isinstance(image, (str, Path)):
        return _read(Path(image), name)
    if type(image).__module__.startswith("PIL."):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.dim() == 3 and tensor.shape[0] == 3 and tensor.shape[2] != 3:
            tensor = tensor.permute(1, 2, 0)  # (3, H, W) -> (H, W, 3)
        image = tensor.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (H, W, 3), a PIL image or a file path; "
                        f"got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)  # grayscale -> (H, W, 3)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"{name} must have shape (H, W, 3) (or (H, W) gray, (H, W, 4) RGBA); "
                         f"got shape {image.shape}")
    image = image[..., :3]
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all() or image.min() < -1e-3 or image.max() > 1 + 1e-3:
            raise ValueError(f"{name} as floats must lie in [0, 1]; divide 0..255 pixels by "
                             f"255, or undo a normalisation (x * pixel_std + pixel_mean) first")
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (0..255) or float (0..1); got "
                        f"{image.dtype}")
    return np.ascontiguousarray(image)


def _read(path: Path, name: str) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB, or a ValueError naming the argument and the file."""
    from PIL import Image, UnidentifiedImageError  # lazily: `import samteach` stays light

    if not path.is_file():
        raise ValueError(f"{name} {path} does not exist (no file at {str(path)!r})")
    try:
        with Image.open(path) as opened:
            return np.asarray(opened.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{name} {path} is not a readable image, not an image file PIL can "
                         f"read ({error})") from None
