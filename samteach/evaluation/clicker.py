"""The "robot user" of interactive-segmentation benchmarks: where would a person click next?

Interactive models (RITM, SimpleClick, SAM) are scored without people: a deterministic program
looks at the ground truth and the current prediction and places the next click. SAM's zero-shot
point evaluation (SAM paper §7.1 and App. D) uses the protocol of RITM (Sofiiuk et al., 2022),
and this module reproduces RITM's clicker exactly, so our numbers are comparable with theirs:

1. The errors. False negatives ``FN = gt & ~pred`` (object pixels the model missed) and false
   positives ``FP = ~gt & pred`` (background it wrongly took).
2. How deep inside each error a pixel lies: the Euclidean distance transform, the distance of
   every error pixel to the nearest non-error pixel. Both maps are padded by one pixel of
   "no error" first, so the image border counts as an error's boundary too.
3. Pixels already clicked get distance 0: the robot never clicks the same place twice.
4. The click goes to the deepest point of the error region that reaches deepest -- not the
   largest one: a thin sliver of many pixels loses to a compact blob. It is *positive* (add
   this) when the deepest FN is strictly deeper than the deepest FP, *negative* (remove this)
   otherwise, so a tie gives a negative click.
5. Among equally deep pixels, the first in row-major order (smallest row, then column) wins.

The first click is made against an empty prediction, so it lands on the "centre" of the object,
the point farthest from its boundary -- SAM's first evaluation point.

RITM quirk, kept on purpose: when the prediction is perfect there is no error, both maps are 0,
the tie rule says "negative", and the first pixel with distance 0 is (0, 0). So the robot clicks
"background" at the top-left corner -- even when that pixel belongs to the object. RITM's
evaluation seldom gets there (it stops once the IoU target is reached);
``samteach.evaluation.metrics`` always plays every click (mIoU after 9 clicks needs them all),
so a model that is perfect early may be handed this odd click. A faithful copy must do the same
to give the same numbers.

This is for *evaluation*. Training samples its clicks at random over the error region (SAM
App. A); the two are kept apart on purpose (see ``samteach.evaluation.metrics`` for the scores).

Shapes: H/W image height and width, n clicks so far.
"""

from dataclasses import dataclass

import numpy as np

from ..data.record import validate_mask
from ..utils.masks import distance_transform

__all__ = ["Click", "Clicker", "distance_to_boundary", "suggest_click"]


@dataclass(frozen=True)
class Click:
    """One simulated click.

    Attributes:
        x: column of the clicked pixel.
        y: row of the clicked pixel.
        is_positive: True for foreground ("add this"), False for background ("remove this").
    """

    x: int
    y: int
    is_positive: bool


class Clicker:
    """RITM's robot user for one ground-truth mask.

    Args:
        gt_mask: (H, W) bool, the object the robot wants; at least one pixel.

    Example::

        clicker = Clicker(gt_mask)
        pred = np.zeros_like(gt_mask)
        for _ in range(20):
            clicker.make_next_click(pred)
            masks, _, _ = predictor.predict(clicker.points, clicker.labels, ...)
            pred = masks[0]
    """

    def __init__(self, gt_mask: np.ndarray) -> None:
        self.gt_mask = validate_mask(gt_mask, "gt_mask")
        self.reset()

    def reset(self) -> None:
        """Forget every click: the next one is a first click again."""
        self.clicks: list[Click] = []
        self._not_clicked = np.ones(self.gt_mask.shape, dtype=bool)  # (H, W)

    def make_next_click(self, pred_mask: np.ndarray) -> Click:
        """Place, record and return the next click against the current prediction.

        Args:
            pred_mask: (H, W) bool, the model's current mask (all False before the first click).

        Returns:
            The new click, also appended to ``clicks``.
        """
        pred_mask = validate_mask(pred_mask, "pred_mask", self.gt_mask.shape, allow_empty=True)
        click = _next_click(self.gt_mask, pred_mask, self._not_clicked)
        self.clicks.append(click)
        self._not_clicked[click.y, click.x] = False
        return click

    @property
    def points(self) -> np.ndarray:
        """(n, 2) float pixel (x, y) of the clicks so far, as ``SamPredictor.predict`` wants."""
        return np.array([(c.x, c.y) for c in self.clicks], dtype=float).reshape(-1, 2)

    @property
    def labels(self) -> np.ndarray:
        """(n,) int labels of the clicks so far: 1 positive (foreground), 0 negative."""
        return np.array([int(c.is_positive) for c in self.clicks], dtype=np.int64)


def suggest_click(
    gt_mask: np.ndarray, pred_mask: np.ndarray, clicked: np.ndarray | None = None
) -> Click:
    """The click RITM's robot would make next, without a ``Clicker`` keeping score.

    For a caller that keeps its own list of clicks, like the interactive demo's teaching mode.

    Args:
        gt_mask: (H, W) bool, the object wanted; at least one pixel.
        pred_mask: (H, W) bool, the current prediction.
        clicked: (n, 2) pixel (x, y) of the clicks made so far (never clicked again); rounded
            to the nearest pixel, and those outside the image are ignored.

    Returns:
        The next click.
    """
    gt_mask = validate_mask(gt_mask, "gt_mask")
    pred_mask = validate_mask(pred_mask, "pred_mask", gt_mask.shape, allow_empty=True)
    not_clicked = np.ones(gt_mask.shape, dtype=bool)  # (H, W)
    if clicked is not None:
        xy = np.rint(np.asarray(clicked, dtype=float).reshape(-1, 2)).astype(int)  # (n, 2)
        inside = (xy >= 0).all(axis=1) & (xy[:, 0] < gt_mask.shape[1]) & (
            xy[:, 1] < gt_mask.shape[0])
        not_clicked[xy[inside, 1], xy[inside, 0]] = False
    return _next_click(gt_mask, pred_mask, not_clicked)


def _next_click(gt_mask: np.ndarray, pred_mask: np.ndarray, not_clicked: np.ndarray) -> Click:
    """Steps 1-5 of the module docstring on checked (H, W) bool arrays."""
    fn_depth = distance_to_boundary(gt_mask & ~pred_mask) * not_clicked  # missed object
    fp_depth = distance_to_boundary(~gt_mask & pred_mask) * not_clicked  # wrong background
    # Strictly deeper FN -> positive; a tie (perfect prediction included) -> negative.
    is_positive = bool(fn_depth.max() > fp_depth.max())
    y, x = _first_argmax(fn_depth if is_positive else fp_depth)
    return Click(x=x, y=y, is_positive=is_positive)


def distance_to_boundary(region: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) float32: each region pixel's Euclidean distance to the nearest
    pixel outside it, where everything beyond the image border counts as outside.

    RITM calls ``cv2.distanceTransform(region, DIST_L2, 0)`` (0 = the exact transform, float32)
    on the region padded by one False pixel: :func:`samteach.utils.masks.distance_transform`
    gives the same float32 values (which matters when two depths compare equal).
    """
    return distance_transform(region[None])[0].numpy()  # (H, W)


def _first_argmax(depth: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first maximum in row-major order."""
    # np.argmax returns the first occurrence in C order: RITM's np.where(dt == max)[0][0].
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(row), int(col)
