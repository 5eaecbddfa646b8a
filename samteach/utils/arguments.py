"""Validating what a caller hands to samteach's public entry points.

Each ``validate_*`` raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
wrong content) whose message names the argument, says what was expected and what arrived -- so
a student sees "point_labels has 3 entries but point_coords has 2 points", not a shape error
from deep inside torch. The functions return the input converted to a numpy array, a tensor or
a plain number. (Not to be confused with ``samteach.checks``: the labs' exercise checks.)
"""

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch

VALID_LABELS = (-1, 0, 1, 2, 3)  # padding, background, foreground, box top-left, bottom-right
# Points per prompt: SAM is prompted with a few clicks (training simulates up to ~10-20). Far
# more is almost surely every pixel of a mask passed as clicks, which the decoder's
# self-attention over the prompt tokens answers in time quadratic in their number.
MAX_POINTS = 1000
# Prompts may sit a little outside the image (a click on a canvas border, a box drawn past the
# edge); further out than this share of the image size they are surely in the wrong frame.
OUTSIDE_MARGIN = 0.1


class ImageNotSetError(RuntimeError, ValueError):
    """Prediction was asked for before ``set_image``.

    A ``RuntimeError`` like in Meta's predictor, and a ``ValueError`` like every other misuse.
    """


def as_array(value: object, name: str, expected: str) -> np.ndarray:
    """Any array-like of numbers -> float64 array, or a TypeError naming ``name``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise TypeError(f"{name} must be {expected}; got {type(value).__name__}")
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        kind = type(value).__name__
        raise TypeError(f"{name} must be {expected} (numbers); got {kind}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain finite numbers; got NaN or inf")
    return array


def shape_text(shape: Sequence[int]) -> str:
    """A shape as Python writes a tuple: (2,), (6, 1, 64)."""
    shape = tuple(int(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def describe(value: object) -> str:
    """What a wrong argument was, for an error message: its type, and its shape and dtype if it
    is an array or a tensor."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{type(value).__name__} of shape {shape_text(value.shape)}, dtype {value.dtype}"
    return type(value).__name__


def validate_int(value: object, name: str, low: int = 1, high: int | None = None,
                 what: str = "") -> int:
    """A whole number in [low, high] (bools are not numbers here) -> int.

    The message says "a positive int" for low 1, "an int >= low" or "an int in [low, high]"
    otherwise, followed by ``what`` (e.g. ", the number of scenes").
    """
    if high is not None:
        expected = f"an int in [{low}, {high}]"
    else:
        expected = "a positive int" if low == 1 else f"an int >= {low}"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be {expected}{what}; got {describe(value)}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {expected}{what}; got {value!r}")
    return int(value)


def validate_number(value: object, name: str, low: float | None = None,
                    high: float | None = None, low_open: bool = False,
                    expected: str | None = None, finite: bool = True) -> float:
    """A real number in [low, high] ((low, high] with ``low_open``) -> float; finite unless
    ``finite`` is False (infinity within the bounds is then allowed; NaN never is).

    ``expected`` replaces the generated description ("a number in [0, 1]", "a number >= 0",
    "a finite number") in the message.
    """
    if expected is None:
        if low is not None and high is not None:
            expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"
        elif low is not None:
            expected = f"a number {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            expected = f"a number <= {high:g}"
        else:
            expected = "a finite number"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {expected}; got {describe(value)}")
    below = low is not None and (value <= low if low_open else value < low)
    bad = math.isnan(value) or (finite and math.isinf(value))
    if bad or below or (high is not None and value > high):
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return float(value)


def validate_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def validate_mask_batch(masks: object, name: str = "masks", nonempty: bool = True,
                        hint: str = " -- e.g. labels == id") -> torch.Tensor:
    """A (B, H, W) bool tensor or numpy array -> tensor (numpy is shared, not copied)."""
    if not isinstance(masks, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a bool torch.Tensor or numpy array of shape (B, H, W); "
                        f"got {type(masks).__name__}")
    if masks.dtype not in (torch.bool, np.dtype(bool)):
        raise TypeError(f"{name} must have dtype bool (True inside the object); got "
                        f"{masks.dtype}{hint}")
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(np.ascontiguousarray(masks))
    if masks.dim() != 3 or 0 in masks.shape[1:]:
        extra = f" (one mask? use {name}[None])" if masks.dim() == 2 else ""
        raise ValueError(f"{name} must have shape (B, H, W), a batch of masks with H, W >= 1; "
                         f"got {shape_text(masks.shape)}{extra}")
    if nonempty:
        empty = ~masks.flatten(1).any(dim=1)  # (B,)
        if empty.any():
            first, count = int(empty.nonzero()[0, 0]), int(empty.sum())
            raise ValueError(f"{name}[{first}] is empty: every mask needs at least one pixel "
                             f"({count} of {len(masks)} empty)")
    return masks


def validate_image(image: object, image_format: str) -> np.ndarray:
    """An (H, W, 3) uint8 RGB/BGR image."""
    if image_format not in ("RGB", "BGR"):
        raise ValueError(f"image_format must be 'RGB' or 'BGR'; got {image_format!r}")
    if not isinstance(image, np.ndarray):
        kind = type(image).__name__
        hint = " (convert a PIL image with np.asarray(img.convert('RGB')))" if kind != "Tensor" \
            else " (use set_torch_image for tensors)"
        raise TypeError(f"image must be a numpy array of shape (H, W, 3), dtype uint8; got "
                        f"{kind}{hint}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must have dtype uint8 (pixel values 0..255); got {image.dtype}"
                        " -- for floats in [0, 1] use (image * 255).round().astype(np.uint8)")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3) with 3 colour channels; got shape "
                         f"{shape_text(image.shape)}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image must not be empty; got shape {shape_text(image.shape)}")
    return image


def validate_labels(labels: object, n_points: int, name: str = "point_labels") -> np.ndarray:
    """``n_points`` integer labels from {-1, 0, 1, 2, 3} (the last axis of ``labels``)."""
    array = as_array(labels, name, "an array of integer labels")
    if array.shape[-1:] != (n_points,):
        raise ValueError(f"{name} has {array.shape[-1] if array.ndim else 0} entries per prompt "
                         f"but point_coords has {n_points} points "
                         f"(shape {shape_text(array.shape)})")
    bad = sorted(set(array.ravel().tolist()) - set(VALID_LABELS))
    bad = [int(b) if float(b).is_integer() else b for b in bad]
    if bad:
        raise ValueError(f"{name} must be in {{-1, 0, 1, 2, 3}} (padding, background, "
                         f"foreground, box corners); got {bad}")
    return array.astype(np.int64)


def validate_points(
    coords: object, labels: object, image_size: tuple[int, int], frame: str = "image"
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) pixel (x, y) coordinates inside the (H, W) image, and N labels."""
    if labels is None:
        raise ValueError("point_labels must be given with point_coords (1 = foreground, "
                         "0 = background)")
    array = as_array(coords, "point_coords", "an (N, 2) array of pixel (x, y) coordinates")
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise ValueError(f"point_coords must be (N, 2) pixel (x, y) coordinates with N >= 1; "
                         f"got shape {shape_text(array.shape)}")
    _check_point_count(array.shape[0])
    validate_inside(array, image_size, "point_coords", frame)
    return array, validate_labels(labels, array.shape[0])


def validate_box(box: object, image_size: tuple[int, int], frame: str = "image") -> np.ndarray:
    """One box x0, y0, x1, y1 with x0 <= x1 and y0 <= y1, inside the image -> (4,)."""
    array = as_array(box, "box", "4 numbers x0, y0, x1, y1")
    if array.size != 4:
        raise ValueError(f"box must be 4 numbers x0, y0, x1, y1; got shape "
                         f"{shape_text(array.shape)}")
    return validate_boxes(array.reshape(1, 4), image_size, frame, name="box")[0]


def validate_boxes(
    boxes: np.ndarray, image_size: tuple[int, int], frame: str = "image", name: str = "boxes"
) -> np.ndarray:
    """(..., 4) boxes, each x0, y0, x1, y1 with x0 <= x1 and y0 <= y1, inside the image."""
    flipped = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
    if flipped.any():
        first = boxes.reshape(-1, 4)[flipped.ravel()][0].tolist()
        raise ValueError(f"{name} must be x0, y0, x1, y1 with x0 <= x1 and y0 <= y1 (top-left "
                         f"corner first); got {first}")
    validate_inside(boxes.reshape(*boxes.shape[:-1], 2, 2), image_size, name, frame)
    return boxes


def validate_mask_input(mask_input: object, size: tuple[int, int], leading: tuple[int, ...]):
    """Low-res mask logits of shape ``leading + (1, *size)`` -> float array."""
    expected = leading + (1, *size)
    array = as_array(mask_input, "mask_input", f"an array of shape {shape_text(expected)}")
    if array.shape != expected:
        raise ValueError(
            f"mask_input must have shape {shape_text(expected)}: the low-res logits of an earlier "
            f"prediction (e.g. low_res_masks[best][None]); got {shape_text(array.shape)}")
    return array


def validate_inside(xy: np.ndarray, image_size: tuple[int, int], name: str, frame: str) -> None:
    """(..., 2) pixel (x, y) coordinates inside the (H, W) image, up to the outside margin."""
    h, w = image_size
    mx, my = OUTSIDE_MARGIN * w, OUTSIDE_MARGIN * h
    x, y = xy[..., 0], xy[..., 1]
    outside = (x < -mx) | (x > w + mx) | (y < -my) | (y > h + my)
    if outside.any():
        first = xy.reshape(-1, 2)[outside.ravel()][0].tolist()
        raise ValueError(
            f"{name} must be pixel (x, y) coordinates inside the {w}x{h} (W x H) {frame}; got "
            f"{first} -- are x and y swapped, or the coordinates from another image size?")


def validate_prompt_tensors(
    point_coords, point_labels, boxes, mask_input, input_size: tuple[int, int],
    mask_size: tuple[int, int], text=None,
) -> None:
    """The batched tensors of ``predict_torch`` (already in the resized input frame)."""
    batch = {}
    if text is not None:
        _tensor(text, "text")
        if text.dim() != 2:
            raise ValueError(f"text must be a (B, D) tensor of CLIP embeddings; got "
                             f"{shape_text(tuple(text.shape))}")
        batch["text"] = text.shape[0]
    if point_coords is not None:
        _tensor(point_coords, "point_coords")
        if point_coords.dim() != 3 or point_coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be a (B, N, 2) tensor; got "
                             f"{shape_text(tuple(point_coords.shape))}")
        if point_labels is None:
            raise ValueError("point_labels must be given with point_coords")
        _tensor(point_labels, "point_labels")
        if tuple(point_labels.shape) != tuple(point_coords.shape[:2]):
            expected = shape_text(tuple(point_coords.shape[:2]))
            raise ValueError(f"point_labels must be (B, N) = {expected} to match point_coords; "
                             f"got {shape_text(tuple(point_labels.shape))}")
        _check_point_count(point_coords.shape[1])
        validate_labels(point_labels, point_coords.shape[1])
        validate_inside(point_coords.detach().cpu().numpy(), input_size, "point_coords",
                      "resized input frame")
        batch["point_coords"] = point_coords.shape[0]
    if boxes is not None:
        _tensor(boxes, "boxes")
        if boxes.dim() != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be a (B, 4) tensor; got {shape_text(tuple(boxes.shape))}")
        validate_boxes(boxes.detach().cpu().numpy(), input_size, "resized input frame")
        batch["boxes"] = boxes.shape[0]
    if mask_input is not None:
        _tensor(mask_input, "mask_input")
        if mask_input.dim() != 4 or tuple(mask_input.shape[1:]) != (1, *mask_size):
            raise ValueError(f"mask_input must be a (B, 1, {mask_size[0]}, {mask_size[1]}) tensor;"
                             f" got {shape_text(tuple(mask_input.shape))}")
        batch["mask_input"] = mask_input.shape[0]
    if len(set(batch.values())) > 1:
        raise ValueError(f"prompt tensors must share the batch size B; got {batch}")


def _check_point_count(n: int) -> None:
    if n > MAX_POINTS:
        raise ValueError(f"point_coords holds {n} points per prompt; SAM takes a few clicks "
                         f"(at most {MAX_POINTS} here). To prompt with a region, pass a box or "
                         f"a mask_input, not its pixels as points")


def _tensor(value: object, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor here; got {type(value).__name__}")


def validate_batched_input(batched_input: object, img_size: int) -> None:
    """The list of dicts that ``Sam.forward`` takes."""
    if not isinstance(batched_input, Sequence) or isinstance(batched_input, (str, dict)):
        kind = type(batched_input).__name__
        raise TypeError(f"batched_input must be a list of dicts; got {kind}")
    for i, record in enumerate(batched_input):
        if not isinstance(record, dict) or "image" not in record or "original_size" not in record:
            raise ValueError(f"batched_input[{i}] must be a dict with 'image' and 'original_size'")
        image = record["image"]
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"batched_input[{i}]['image'] must be a (3, H, W) tensor")
        if max(image.shape[1:]) != img_size:
            raise ValueError(f"batched_input[{i}]['image'] must be resized so its longest side "
                             f"is {img_size} (ResizeLongestSide); got {tuple(image.shape)}")
        if ("point_coords" in record) != ("point_labels" in record):
            raise ValueError(f"batched_input[{i}] needs both 'point_coords' and 'point_labels'")
