"""Scoring interactive segmentation: IoU, mIoU after k clicks, NoC and NoF.

An evaluation plays the robot user of ``samteach.evaluation.clicker`` against a model, one
ground-truth mask at a time: click, predict, threshold, measure the IoU, click again --
``max_clicks`` times
(20 in RITM and SimpleClick). That gives one IoU curve per mask, ``ious[s, c]`` = the IoU after
click ``c + 1`` on sample ``s``. Two families of numbers summarise the curves:

* **mIoU@k** (SAM paper §7.1): the mean over samples of the IoU after k clicks, for
  k in {1, 2, 3, 5, 9}. On the first click SAM scores its most confident of three masks. The
  paper averages per data set, then across data sets: one :func:`evaluate` per data set.
* **NoC@t** ("number of clicks", RITM): for each sample the first click whose IoU reaches t, or
  ``max_clicks`` if none does; the mean over samples, reported as NoC@85 and NoC@90.
  **NoF@t** ("number of failures", RITM's ">=20@t" column) counts the samples whose NoC is
  ``max_clicks``. RITM quirk, kept: a sample that reaches t exactly at the last click also has
  NoC = ``max_clicks`` and is counted as a failure.

The model is any callable ``predict(points, labels, mask_logits)``, so SAM, a student's model
or a test double plug in alike; :func:`predictor_callable` adapts a ``SamPredictor``. Logits
are thresholded at 0.0 (SAM's ``mask_threshold``; RITM thresholds probabilities at 0.49).

Shapes: S samples (ground-truth masks), C clicks, n clicks so far, N masks, H/W image height
and width, h/w SAM's low-res logits.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

from ..utils.arguments import validate_int, validate_number
from ..utils.masks import mask_iou
from .clicker import Clicker

__all__ = [
    "SIZE_BINS",
    "STANDARD_CLICKS",
    "EvaluationResult",
    "evaluate",
    "interactive_ious",
    "iou",
    "miou_at_clicks",
    "noc",
    "noc_nof",
    "predictor_callable",
]

# predict(points (n, 2) float (x, y), labels (n,) int, mask_logits) -> logits (H, W), or a pair
# (logits, feedback) whose feedback comes back as mask_logits with the next click.
PredictFn = Callable[[np.ndarray, np.ndarray, object], object]


def iou(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Intersection over union of boolean masks.

    Args:
        pred: (H, W) or (N, H, W) bool.
        gt: bool of the same shape, or (H, W) to compare each of N masks with one ground truth.

    Returns:
        A float for (H, W) masks, an (N,) float array for (N, H, W). Two empty masks agree
        perfectly: IoU 1 (RITM would divide 0 by 0; its ground truths are never empty).
    """
    pred, gt = _check_bool(pred, "pred"), _check_bool(gt, "gt")
    if pred.ndim not in (2, 3) or gt.shape not in (pred.shape, pred.shape[-2:]):
        raise ValueError(f"pred must be (H, W) or (N, H, W) and gt the same shape or (H, W); "
                         f"got pred {pred.shape} and gt {gt.shape}")
    result = mask_iou(pred, gt)
    return float(result) if pred.ndim == 2 else result


def interactive_ious(
    predict: PredictFn, gt_mask: np.ndarray, max_clicks: int = 20, threshold: float = 0.0
) -> np.ndarray:
    """Play RITM's robot user against ``predict`` and record the IoU after every click.

    Args:
        predict: ``predict(points, labels, mask_logits)`` with points (n, 2) float pixel (x, y),
            labels (n,) int (1 positive, 0 negative) and ``mask_logits`` None on the first
            click, later the feedback of the previous call. It returns logits (H, W) -- which
            are then the feedback -- or a tuple ``(logits, feedback)``, e.g. SAM's low-res
            logits to pass back as ``mask_input``.
        gt_mask: (H, W) bool, the object; at least one pixel.
        max_clicks: how many clicks to play; all of them are played, since mIoU@k needs every k.
        threshold: a pixel is predicted when its logit is strictly above this.

    Returns:
        (max_clicks,) float32 IoUs, like RITM (whose NoC compares thresholds in float32).
    """
    if not callable(predict):
        raise TypeError(f"predict must be a function predict(points, labels, mask_logits) -> "
                        f"logits; got {type(predict).__name__}")
    _check_max_clicks(max_clicks)
    threshold = validate_number(threshold, "threshold")
    clicker = Clicker(gt_mask)
    pred = np.zeros_like(clicker.gt_mask)  # (H, W): nothing predicted before the first click
    feedback = None
    ious = np.empty(max_clicks, dtype=np.float32)
    for c in range(max_clicks):
        clicker.make_next_click(pred)
        logits, feedback = _split_output(predict(clicker.points, clicker.labels, feedback))
        pred = _as_logits(logits, clicker.gt_mask.shape) > threshold
        ious[c] = iou(pred, clicker.gt_mask)
    return ious


def _split_output(output: object) -> tuple[object, object]:
    """What ``predict`` returned -> (logits, feedback for the next call)."""
    if isinstance(output, tuple):
        if len(output) != 2:
            raise ValueError(f"predict must return logits or a pair (logits, feedback); got a "
                             f"tuple of {len(output)} items")
        return output
    return output, output  # logits alone: they are their own feedback


def _as_logits(logits: object, shape: tuple[int, int]) -> np.ndarray:
    """The logits ``predict`` returned -> an (H, W) numpy array, checked against gt_mask."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().cpu().numpy()
    if not isinstance(logits, np.ndarray) or not (
            np.issubdtype(logits.dtype, np.number) or logits.dtype == bool):
        raise TypeError(f"predict must return (H, W) logits as a numpy array or tensor; got "
                        f"{type(logits).__name__}")
    if logits.shape != shape:
        raise ValueError(f"predict returned logits of shape {logits.shape}; they must have the "
                         f"shape of gt_mask, {shape} (one mask, e.g. masks[best], not all)")
    if not np.isfinite(logits).all():
        raise ValueError("predict returned logits containing NaN or inf")
    return logits


def predictor_callable(predictor, multimask_first: bool = True) -> PredictFn:
    """Adapt a ``SamPredictor`` (samteach's or Meta's) whose image is set into a ``predict``.

    SAM's interactive protocol (SAM paper §7.1, App. A): with a single click SAM answers three
    masks and the one with the highest *predicted* IoU is kept; with more clicks it answers one
    mask and gets the previous low-res logits back as ``mask_input`` to refine.

    Args:
        predictor: has ``predict(point_coords, point_labels, box, mask_input, multimask_output,
            return_logits)`` and an image already set with ``set_image``.
        multimask_first: three masks on the first click (SAM's evaluation) or one.

    Returns:
        ``predict(points, labels, mask_logits) -> (logits (H, W), low-res logits (1, h, w))``.
    """
    if not callable(getattr(predictor, "predict", None)):
        raise TypeError(f"predictor must be a SamPredictor (with a predict method); got "
                        f"{type(predictor).__name__}")

    def predict(points: np.ndarray, labels: np.ndarray, mask_logits: np.ndarray | None):
        first = mask_logits is None
        masks, scores, low_res = predictor.predict(
            point_coords=points, point_labels=labels, mask_input=mask_logits,
            multimask_output=first and multimask_first, return_logits=True)
        best = int(np.argmax(scores))  # the most confident mask; the only one after click 1
        return masks[best], low_res[best][None]  # (H, W), (1, h, w)

    return predict


def miou_at_clicks(ious: np.ndarray, clicks: Sequence[int] = (1, 2, 3, 5, 9)) -> dict[int, float]:
    """Mean IoU over samples after k clicks, for each k (the SAM paper's curves).

    Args:
        ious: (S, C) IoU after each click of each sample.
        clicks: the k to report, each between 1 and C.

    Returns:
        {k: mean of ious[:, k - 1]}.
    """
    ious = _check_ious(ious)
    ks = _check_clicks(clicks, ious.shape[1])
    return {k: float(ious[:, k - 1].mean(dtype=np.float64)) for k in ks}


def noc(ious: np.ndarray, threshold: float, max_clicks: int = 20) -> np.ndarray:
    """Number of clicks each sample needs to reach IoU ``threshold`` (RITM's NoC).

    Args:
        ious: (S, max_clicks) IoU after each click of each sample.
        threshold: the IoU target, e.g. 0.85 or 0.9.
        max_clicks: the clicks that were played; a sample that never reaches the target counts
            this many.

    Returns:
        (S,) int: the 1-based index of the first click with IoU >= threshold, else max_clicks.
    """
    _check_max_clicks(max_clicks)
    ious = _check_ious(ious, max_clicks)
    threshold = _check_iou_threshold(threshold)
    # A Python float compares in the IoUs' own dtype: float32 for interactive_ious, like RITM.
    reached = ious >= threshold  # (S, C)
    first = np.argmax(reached, axis=1) + 1  # argmax finds the first True
    return np.where(reached.any(axis=1), first, max_clicks).astype(np.int64)


def noc_nof(
    ious: np.ndarray, thresholds: Sequence[float] = (0.85, 0.9), max_clicks: int = 20
) -> dict[str, dict[float, float]]:
    """Mean NoC and NoF (samples at ``max_clicks``) for each IoU threshold.

    Args:
        ious: (S, max_clicks) IoU after each click of each sample.
        thresholds: the IoU targets.
        max_clicks: the clicks that were played.

    Returns:
        {"noc": {t: mean NoC}, "nof": {t: number of samples with NoC == max_clicks}}. Like RITM,
        a sample reaching t only at the last click counts as a failure too.
    """
    counts = {float(t): noc(ious, t, max_clicks) for t in _check_thresholds(thresholds)}
    return {"noc": {t: float(n.mean()) for t, n in counts.items()},
            "nof": {t: int((n == max_clicks).sum()) for t, n in counts.items()}}


STANDARD_CLICKS = (1, 2, 3, 5, 9)  # the k of mIoU@k that RITM-style papers report

# Instance sizes as shares of the image area: small < 1% <= medium < 10% <= large. (COCO's
# 32^2 and 96^2 pixel limits are shares 0.3% and 3% of a 640x480 photo; our images are smaller
# and hold bigger things, and a share does not change when an image is resized.)
SIZE_BINS = {"small": (0.0, 0.01), "medium": (0.01, 0.1), "large": (0.1, 1.0)}


@dataclass
class EvaluationResult:
    """The scores of :func:`evaluate`.

    Attributes:
        ious: (S, max_clicks) IoU after each click of each sample.
        miou: {k: mean IoU after k clicks}.
        noc: {IoU threshold: mean number of clicks to reach it}.
        nof: {IoU threshold: number of samples that never reached it within max_clicks}.
        areas: (S,) each ground truth's share of its image's pixels (None if unknown).
        clicks: the k of mIoU@k, thresholds: the IoU targets of NoC/NoF (for :meth:`by_size`).
    """

    ious: np.ndarray
    miou: dict[int, float]
    noc: dict[float, float]
    nof: dict[float, int]
    areas: np.ndarray | None = None
    clicks: tuple[int, ...] = STANDARD_CLICKS
    thresholds: tuple[float, ...] = (0.85, 0.9)

    @property
    def max_clicks(self) -> int:
        return self.ious.shape[1]

    def figures(self, digits: int = 4) -> dict[str, float | int]:
        """The scores as one flat dict ("mIoU@1", "NoC@90", "NoF@90", "samples"), for JSON."""
        out: dict[str, float | int] = {f"mIoU@{k}": round(v, digits) for k, v in self.miou.items()}
        out |= {f"NoC@{_percent(t)}": round(v, digits) for t, v in self.noc.items()}
        out |= {f"NoF@{_percent(t)}": int(v) for t, v in self.nof.items()}
        out["samples"] = len(self.ious)
        return out

    def by_size(self) -> "dict[str, EvaluationResult]":
        """The same scores for small, medium and large instances (:data:`SIZE_BINS`); bins
        without samples are left out."""
        if self.areas is None:
            raise ValueError("this result has no instance areas (evaluate() records them)")
        parts = {}
        for name, (low, high) in SIZE_BINS.items():
            keep = (self.areas >= low) & (self.areas < high) if high < 1 else self.areas >= low
            if keep.any():
                parts[name] = _scores(self.ious[keep], self.max_clicks, self.clicks,
                                      self.thresholds, self.areas[keep])
        return parts

    def size_table(self) -> str:
        """mIoU@k and NoC per instance size, one line per size (3 decimals)."""
        rows = {name: part.figures(digits=12) for name, part in self.by_size().items()}
        if not rows:
            return ""
        keys = [k for k in next(iter(rows.values())) if k.startswith(("mIoU", "NoC"))]
        keys.append("samples")
        cells = {name: [f"{f[k]:.3f}" if k != "samples" else str(f[k]) for k in keys]
                 for name, f in rows.items()}
        width = [max(len(k), *(len(c[i]) for c in cells.values())) for i, k in enumerate(keys)]
        first = max(len("size"), *(len(n) for n in cells))

        def line(label: str, values: list[str]) -> str:
            return label.ljust(first) + "  " + "  ".join(
                v.rjust(w) for v, w in zip(values, width, strict=True))

        return "\n".join([line("size", keys)] + [line(n, v) for n, v in cells.items()])

    def summary(self) -> str:
        """A short text table, numbers rounded to 3 decimals (the same text for the same run)."""
        figures = self.figures(digits=12)  # the names once; rounded to 3 here
        miou = {k: f"{v:.3f}" for k, v in figures.items() if k.startswith("mIoU")}
        clicks = {k: f"{v:.3f}" if k.startswith("NoC") else str(v)
                  for k, v in figures.items() if k.startswith(("NoC", "NoF"))}
        footer = f"({len(self.ious)} samples, {self.max_clicks} clicks each)"
        return "\n\n".join([_table(miou), _table(clicks), footer])


def _percent(threshold: float) -> str:
    return f"{round(threshold * 100, 4):g}"  # 0.85 -> "85", as RITM's NoC@85


def _table(row: dict[str, str]) -> str:
    """One header line and one value line, right-aligned columns."""
    widths = {k: max(len(k), len(v)) for k, v in row.items()}
    header = "  ".join(k.rjust(widths[k]) for k in row)
    values = "  ".join(v.rjust(widths[k]) for k, v in row.items())
    return header + "\n" + values


def evaluate(
    samples: Iterable[tuple[np.ndarray, np.ndarray]],
    make_predict: Callable[[np.ndarray], PredictFn],
    max_clicks: int = 20,
    threshold: float = 0.0,
    clicks: Sequence[int] = STANDARD_CLICKS,
    thresholds: Sequence[float] = (0.85, 0.9),
    progress: bool = True,
) -> EvaluationResult:
    """Interactive evaluation of a model over a data set: mIoU@k, NoC@t and NoF@t.

    Consecutive samples that share one image object (the masks of one record, e.g.
    ``((r.image, m) for r in records for m in r.masks)``) share one ``make_predict`` call, so
    the image is encoded once -- SAM's "one embedding, many prompts". ``predict`` must therefore
    keep no state between masks; everything it needs comes back through ``mask_logits``.

    Args:
        samples: yields (image, gt_mask) pairs, gt_mask (H, W) bool.
        make_predict: image -> ``predict`` callable, e.g.
            ``lambda image: (predictor.set_image(image), predictor_callable(predictor))[1]``.
        max_clicks: clicks per sample.
        threshold: logit threshold for a predicted pixel.
        clicks: the k of mIoU@k, each at most max_clicks.
        thresholds: the IoU targets of NoC and NoF.
        progress: show a progress bar.

    Returns:
        The per-click IoUs and their summaries.
    """
    from tqdm.auto import tqdm  # lazily: `import samteach` stays light

    if not callable(make_predict):
        raise TypeError(f"make_predict must be a function image -> predict; got "
                        f"{type(make_predict).__name__}")
    _check_max_clicks(max_clicks)
    _check_clicks(clicks, max_clicks)  # before the slow part, not after it
    _check_thresholds(thresholds)
    rows, areas, image, predict = [], [], None, None
    for s, sample in enumerate(tqdm(samples, desc="evaluate", unit="mask", disable=not progress)):
        new_image, gt_mask = _unpack(sample, s)
        if isinstance(gt_mask, np.ndarray) and gt_mask.size:
            areas.append(float(np.count_nonzero(gt_mask)) / gt_mask.size)
        if new_image is not image:
            image, predict = new_image, make_predict(new_image)
        try:
            rows.append(interactive_ious(predict, gt_mask, max_clicks, threshold))
        except (ValueError, TypeError) as err:
            if type(err) not in (ValueError, TypeError):  # a subclass may want other arguments
                raise
            raise type(err)(f"sample {s}: {err}") from err  # which mask of the data set
    if not rows:
        raise ValueError("samples is empty: it must yield at least one (image, gt_mask) pair")
    return _scores(np.stack(rows), max_clicks, clicks, thresholds, np.array(areas))


def _scores(ious: np.ndarray, max_clicks: int, clicks: Sequence[int],
            thresholds: Sequence[float], areas: np.ndarray | None) -> EvaluationResult:
    """(S, max_clicks) IoUs -> their mIoU@k, NoC and NoF."""
    scores = noc_nof(ious, thresholds, max_clicks)
    return EvaluationResult(ious=ious, miou=miou_at_clicks(ious, clicks), noc=scores["noc"],
                            nof=scores["nof"], areas=areas, clicks=tuple(clicks),
                            thresholds=tuple(float(t) for t in thresholds))


def _unpack(sample: object, s: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(sample, (tuple, list)) or len(sample) != 2:
        raise TypeError(f"samples must yield (image, gt_mask) pairs; sample {s} is "
                        f"{type(sample).__name__}")
    return sample[0], sample[1]


# ---------------------------------------------------------------- checks
def _check_bool(mask: object, name: str) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype != bool:
        kind = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"{name} must be a numpy bool array (e.g. logits > 0); got {kind}")
    return mask


def _check_max_clicks(max_clicks: object) -> None:
    validate_int(max_clicks, "max_clicks")


def _check_iou_threshold(threshold: object, name: str = "threshold") -> float:
    return validate_number(threshold, name, 0.0, 1.0, low_open=True,
                           expected="an IoU target in (0, 1], e.g. 0.85")


def _check_thresholds(thresholds: object) -> list[float]:
    if isinstance(thresholds, Real) or not isinstance(thresholds, Sequence) or not thresholds:
        raise TypeError(f"thresholds must be a non-empty sequence of IoU targets, e.g. "
                        f"(0.85, 0.9); got {thresholds!r}")
    return [_check_iou_threshold(t, "thresholds") for t in thresholds]


def _check_clicks(clicks: object, n_clicks: int) -> list[int]:
    if not isinstance(clicks, Sequence) or not clicks:
        raise TypeError(f"clicks must be a non-empty sequence of click counts, e.g. "
                        f"(1, 2, 3, 5, 9); got {clicks!r}")
    bad = [k for k in clicks if not isinstance(k, Integral) or not 1 <= k <= n_clicks]
    if bad:
        raise ValueError(f"clicks must be whole numbers from 1 to {n_clicks} (the clicks "
                         f"played); got {bad[0]!r} -- play more clicks or report fewer")
    return [int(k) for k in clicks]


def _check_ious(ious: object, max_clicks: int | None = None) -> np.ndarray:
    """(S, C) IoUs in [0, 1]; C == max_clicks when given. Float dtypes are kept."""
    if isinstance(ious, torch.Tensor):
        ious = ious.detach().cpu().numpy()
    try:
        ious = np.asarray(ious)
        if not np.issubdtype(ious.dtype, np.floating):
            ious = ious.astype(np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"ious must be an (S, C) array of numbers; got "
                        f"{type(ious).__name__}") from None
    expected = f"(S, {max_clicks})" if max_clicks is not None else "(S, C)"
    if ious.ndim != 2 or ious.size == 0 or (max_clicks is not None and ious.shape[1] != max_clicks):
        hint = f" -- pass max_clicks={ious.shape[1]} if that many were played" \
            if ious.ndim == 2 and ious.size else ""
        raise ValueError(f"ious must be {expected}: one IoU per click (columns) for each sample "
                         f"(rows); got shape {ious.shape}{hint}")
    if not (np.isfinite(ious).all() and (ious >= 0).all() and (ious <= 1).all()):
        raise ValueError("ious must hold IoUs between 0 and 1")
    return ious
