"""SAM's data engine in small: the three stages that made SA-1B (SAM paper §4).

1. **Assisted-manual**: annotators click foreground/background points in a browser tool with
   SAM in the loop, one object at a time, until the mask is good (paper: 4.3 M masks,
   34 -> 14 s per mask as the model improved, 20 -> 44 masks per image).
2. **Semi-automatic**: the model first proposes the masks it is confident about; annotators
   add the objects it missed (5.9 M more masks; 72 masks per image, more of them small).
3. **Fully automatic**: the model alone, prompted with a 32 x 32 grid, filtered for
   confidence, stability and duplicates (1.1 B masks on 11 M images).

Here the annotator is RITM's robot user (``samteach.evaluation.clicker``) clicking towards a known
ground-truth mask, the model is any samteach SAM, and each stage reports what the paper does:
masks per image, clicks per hand-made mask, and -- what only a synthetic world can tell --
recall: the share of the true objects that some mask found (IoU >= ``match_iou``).

Shapes: G ground-truth masks, N annotated masks, H/W image height and width.
"""

from dataclasses import dataclass

import numpy as np

from ..data.record import SegmentationRecord
from ..demo.session import PromptSession
from ..predictor import SamPredictor, as_predictor
from ..utils.arguments import validate_int, validate_number
from ..utils.masks import mask_iou_matrix
from .generator import SamAutomaticMaskGenerator

__all__ = ["STAGES", "StageResult", "assisted_manual", "fully_automatic",
           "run_data_engine", "semi_automatic"]

STAGES = ("assisted-manual", "semi-automatic", "fully automatic")


@dataclass(frozen=True, eq=False)
class StageResult:
    """What one stage produced for one image.

    Attributes:
        stage: one of ``STAGES``.
        masks: (N, H, W) bool, every mask the stage annotated.
        clicks: (N,) clicks spent on each mask (0 for the generator's).
        automatic: (N,) bool, True where the generator made the mask.
        recall: share of the G true objects matched by some mask at IoU >= match_iou.
        objects: G, the number of true objects.
    """

    stage: str
    masks: np.ndarray
    clicks: np.ndarray
    automatic: np.ndarray
    recall: float
    objects: int

    @property
    def masks_per_image(self) -> int:
        return len(self.masks)

    @property
    def clicks_per_mask(self) -> float:
        """Mean clicks per hand-made mask (0.0 when the stage made none by hand)."""
        manual = self.clicks[~self.automatic]
        return float(manual.mean()) if len(manual) else 0.0


def assisted_manual(predictor: SamPredictor, record: SegmentationRecord, iou_target: float = 0.9,
                    max_clicks: int = 10, match_iou: float = 0.5) -> StageResult:
    """The annotator segments every object by clicking, with the model in the loop."""
    _check_stage_args(iou_target, max_clicks, match_iou)
    session = PromptSession(predictor, record.image)  # one image embedding for all objects
    masks, clicks = _annotate(session, record.masks, iou_target, max_clicks)
    return _result(STAGES[0], record, masks, clicks, np.zeros(len(masks), bool), match_iou)


def semi_automatic(generator: SamAutomaticMaskGenerator, predictor: SamPredictor,
                   record: SegmentationRecord, iou_target: float = 0.9, max_clicks: int = 10,
                   match_iou: float = 0.5) -> StageResult:
    """The generator pre-fills its confident masks; the annotator clicks the missed objects."""
    _check_stage_args(iou_target, max_clicks, match_iou)
    proposals = _proposals(generator, record)
    found = _matched(record.masks, proposals, match_iou)  # (G,) objects already covered
    session = PromptSession(predictor, record.image)
    manual, clicks = _annotate(session, record.masks[~found], iou_target, max_clicks)
    masks = np.concatenate([proposals, manual])
    automatic = np.arange(len(masks)) < len(proposals)
    clicks = np.concatenate([np.zeros(len(proposals), int), clicks])
    return _result(STAGES[1], record, masks, clicks, automatic, match_iou)


def fully_automatic(generator: SamAutomaticMaskGenerator, record: SegmentationRecord,
                    match_iou: float = 0.5) -> StageResult:
    """The generator alone."""
    _check_stage_args(0.5, 1, match_iou)
    proposals = _proposals(generator, record)
    n = len(proposals)
    return _result(STAGES[2], record, proposals, np.zeros(n, int), np.ones(n, bool), match_iou)


def run_data_engine(sam, records: list[SegmentationRecord], config="cpu_lab",
                    iou_target: float = 0.9, max_clicks: int = 10,
                    match_iou: float = 0.5) -> list[dict]:
    """All three stages on every record -> one summary row per stage (for a table).

    Each row: ``stage``, ``masks_per_image`` (mean), ``clicks_per_mask`` (over hand-made
    masks), ``clicks_per_image``, ``recall`` (pooled over every true object), ``automatic``
    (share of masks the generator made).
    """
    from tqdm.auto import tqdm

    predictor = as_predictor(sam, "sam")
    generator = SamAutomaticMaskGenerator(predictor, config)
    results = {stage: [] for stage in STAGES}
    for record in tqdm(records, desc="data engine", leave=False):
        results[STAGES[0]].append(assisted_manual(predictor, record, iou_target, max_clicks,
                                                  match_iou))
        results[STAGES[1]].append(semi_automatic(generator, predictor, record, iou_target,
                                                 max_clicks, match_iou))
        results[STAGES[2]].append(fully_automatic(generator, record, match_iou))
    return [_summary(stage, rs) for stage, rs in results.items()]


# ---------------------------------------------------------------------------- internals


def _annotate(session: PromptSession, targets: np.ndarray, iou_target: float, max_clicks: int):
    """Click (as RITM's robot) on each target until IoU >= iou_target or max_clicks."""
    masks, clicks = [], []
    for target in targets:
        session.reset()
        session.set_target(target)
        for _ in range(max_clicks):
            click = session.suggest_click("ritm")
            if click is None:  # already perfect
                break
            session.add_point(click.x, click.y, foreground=click.is_positive)
            if session.target_iou() >= iou_target:
                break
        masks.append(session.mask.copy())
        clicks.append(len(session.points))
    h, w = session.size
    return np.array(masks, dtype=bool).reshape(-1, h, w), np.array(clicks, dtype=int)


def _proposals(generator: SamAutomaticMaskGenerator, record: SegmentationRecord) -> np.ndarray:
    if generator.config.output_mode != "binary_mask":
        raise ValueError("the data engine needs a generator with output_mode='binary_mask'")
    h, w = record.size
    found = [r["segmentation"] for r in generator.generate(record.image)]
    return np.array(found, dtype=bool).reshape(-1, h, w)  # (N, H, W)


def _matched(truth: np.ndarray, masks: np.ndarray, match_iou: float) -> np.ndarray:
    """(G,) bool: true objects that some mask matches at IoU >= match_iou."""
    if len(truth) == 0 or len(masks) == 0:
        return np.zeros(len(truth), dtype=bool)
    return mask_iou_matrix(truth, masks).max(axis=1) >= match_iou


def _result(stage, record, masks, clicks, automatic, match_iou) -> StageResult:
    found = _matched(record.masks, masks, match_iou)
    recall = float(found.mean()) if len(found) else 1.0
    return StageResult(stage, masks, clicks, automatic, recall, len(record.masks))


def _summary(stage: str, results: list[StageResult]) -> dict:
    manual = np.concatenate([r.clicks[~r.automatic] for r in results]) if results else []
    masks = sum(r.masks_per_image for r in results)
    objects = sum(r.objects for r in results)
    return {
        "stage": stage,
        "masks_per_image": masks / max(len(results), 1),
        "clicks_per_mask": float(np.mean(manual)) if len(manual) else 0.0,
        "clicks_per_image": float(np.sum(manual)) / max(len(results), 1),
        "recall": sum(r.recall * r.objects for r in results) / max(objects, 1),
        "automatic": sum(int(r.automatic.sum()) for r in results) / max(masks, 1),
    }


def _check_stage_args(iou_target: float, max_clicks: int, match_iou: float) -> None:
    for name, value in (("iou_target", iou_target), ("match_iou", match_iou)):
        validate_number(value, name, 0.0, 1.0, low_open=True)
    validate_int(max_clicks, "max_clicks")
