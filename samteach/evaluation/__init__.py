"""Scoring interactive segmentation as SAM's paper does (§7.1), with RITM's protocol.

* :mod:`~samteach.evaluation.clicker` -- RITM's robot user: where would a person click next?
* :mod:`~samteach.evaluation.metrics` -- IoU curves over clicks, mIoU@k, NoC@85/90, NoF, by
  instance size;
* :mod:`~samteach.evaluation.heldout` -- the held-out lab and generic scenes, and
  :func:`evaluate_model`;
* ``python -m samteach.evaluate`` (:mod:`samteach.evaluation.__main__`) -- the command line.
"""

from .clicker import Click, Clicker, distance_to_boundary, suggest_click
from .heldout import HELD_OUT_SEED, HELD_OUT_SETS, evaluate_model, held_out_scenes
from .metrics import (
    SIZE_BINS,
    STANDARD_CLICKS,
    EvaluationResult,
    evaluate,
    interactive_ious,
    iou,
    miou_at_clicks,
    noc,
    noc_nof,
    predictor_callable,
)

__all__ = [
    "HELD_OUT_SEED",
    "HELD_OUT_SETS",
    "SIZE_BINS",
    "STANDARD_CLICKS",
    "Click",
    "Clicker",
    "EvaluationResult",
    "distance_to_boundary",
    "evaluate",
    "evaluate_model",
    "held_out_scenes",
    "interactive_ious",
    "iou",
    "miou_at_clicks",
    "noc",
    "noc_nof",
    "predictor_callable",
    "suggest_click",
]
