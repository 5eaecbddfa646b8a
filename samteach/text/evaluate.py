"""How well SAM segments what it is told: text prompts scored on held-out scenes.

The SAM paper shows text prompting only in pictures (Fig. 12) and calls it "not entirely
robust" (§8); these measurements are the course's own. A *sample* is one caption that names
exactly one instance of a held-out scene (:func:`unique_captions`) whose object is large enough
for text prompting (the paper's minimum, :data:`MIN_OBJECT_SHARE`). On every sample:

* ``text`` -- the caption's CLIP text embedding alone (three masks, the most confident kept);
* ``text+1`` -- then one corrective click from RITM's robot, the text kept, the previous
  low-res logits fed back (the paper: text is the first interaction, clicks follow);
* ``peak`` / ``peak+1`` -- the same with the model's own click where the words point added to
  the caption alone (``text_click``, :mod:`~samteach.text.grounding`; samteach's, not the
  paper's), kept as the first click when the corrective one comes;
* ``pick`` / ``pick+1`` -- the same with the own click where CLIP points instead: SAM proposes
  masks, CLIP picks the one whose crop matches the words (SAM's predicted IoU and the text
  token's grounding helping), the click goes to its centre (:mod:`~samteach.text.choose`;
  samteach's, not the paper's);
* ``image`` / ``image+1`` -- the same with the CLIP *image* embedding of the object's crop, the
  prompt the model was trained with (an oracle: it needs the object to be known);
* ``point@1`` / ``point@2`` -- the model's own point-prompt mIoU@1 and @2 on the same objects
  (RITM's clicker, the usual protocol), the yardstick of the bars;
* ``point@1+text`` -- RITM's first click (the object's centre) with the caption: what the words
  add to a well-placed click, and the most the own click could reach were its peak always there.

Every figure is a mean IoU over samples; ``hit`` is the share of samples whose ``text`` IoU is
above 0.5 (the mask lands on the named object), and ``peak_hit``, ``image_hit``, ``point_hit``
``pick_hit`` and ``point_text_hit`` the same for ``peak``, ``image``, ``point@1``, ``pick`` and
``point@1+text``.
"""

from collections.abc import Iterable

import numpy as np
import torch

from ..evaluation.clicker import Clicker
from ..evaluation.heldout import HELD_OUT_SEED, HELD_OUT_SETS, held_out_scenes
from ..evaluation.metrics import interactive_ious, iou, predictor_callable
from ..modeling import Sam
from ..predictor import SamPredictor
from .captions import unique_captions
from .choose import clip_click, propose
from .crops import object_crop
from .pairs import large_enough

__all__ = ["HITS", "TEXT_FIGURES", "evaluate_text", "text_then_click"]

TEXT_FIGURES = ("text", "text+1", "peak", "peak+1", "pick", "pick+1", "image", "image+1",
                "point@1", "point@2", "point@1+text")
HITS = {"hit": "text", "peak_hit": "peak", "pick_hit": "pick", "image_hit": "image",
        "point_hit": "point@1", "point_text_hit": "point@1+text"}


def text_then_click(predictor: SamPredictor, prompt: str | torch.Tensor, gt: np.ndarray,
                    own_click: np.ndarray | None = None
                    ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """IoU of the prompt alone and after one corrective click, and the two masks.

    ``prompt`` is a caption or a (D,) CLIP embedding; ``gt`` (H, W) bool. The first answer is
    the most confident of the three masks; the click is RITM's (the centre of the largest
    error), answered with one mask, the text kept and the first answer's logits fed back.
    ``own_click`` (1, 2) pixel (x, y): a click the model gives itself (where the words point,
    ``predictor.ground_text(prompt)[1]``, or where CLIP points, :mod:`~samteach.text.choose`),
    with the text in the first answer and kept as the first click of the second, as a click of
    the user's would be.
    """
    own = np.zeros((0, 2)) if own_click is None else np.asarray(own_click, float).reshape(1, 2)
    labels = np.ones(len(own), dtype=np.int64)
    masks, scores, low_res = predictor.predict(own if len(own) else None,
                                               labels if len(own) else None, text=prompt)
    best = int(np.argmax(scores))
    first = masks[best]
    clicker = Clicker(gt)
    clicker.make_next_click(first)
    points = np.concatenate([own, clicker.points])
    labels = np.concatenate([labels, clicker.labels])
    masks, _, _ = predictor.predict(points, labels, mask_input=low_res[best][None],
                                    multimask_output=False, text=prompt)
    return iou(first, gt), iou(masks[0], gt), first, masks[0]


@torch.no_grad()
def evaluate_text(model: Sam, clip, n_scenes: int = 100, first_seed: int = HELD_OUT_SEED,
                  kinds: Iterable[str] = HELD_OUT_SETS, progress: bool = True) -> dict:
    """The figures above on ``n_scenes`` held-out scenes of each set, per set and over all.

    ``clip`` embeds the captions and the oracle's crops (the CLIP the model was trained with).
    Returns {"all": {...}, "lab": {...}, "generic": {...}}, each with the mean of every figure
    of :data:`TEXT_FIGURES`, the hit rates of :data:`HITS` and ``samples``.
    """
    from tqdm.auto import tqdm

    predictor = SamPredictor(model.eval(), resize="twice", text_encoder=clip)
    size = model.image_encoder.img_size
    generator = torch.Generator().manual_seed(0)  # the oracle's crops: fixed draws
    rows: dict[str, list[dict]] = {}
    kinds = tuple(kinds)
    bar = tqdm(total=n_scenes * len(kinds), desc="text prompts", disable=not progress)
    for kind in kinds:
        rows[kind] = []
        for record in held_out_scenes(kind, n_scenes, size, first_seed):
            proposals = propose(predictor, record.image)  # SAM's masks; the image is set
            image = torch.from_numpy(record.image).permute(2, 0, 1)
            masks = torch.from_numpy(record.masks)
            keep = large_enough(masks, max(record.image.shape[:2]))
            for i, captions in enumerate(unique_captions(record)):
                if not captions or not keep[i]:
                    continue
                gt = record.masks[i]
                points = interactive_ious(predictor_callable(predictor), gt, max_clicks=2)
                centre = Clicker(gt)
                centre.make_next_click(np.zeros_like(gt))  # RITM's first click: the centre
                crop = object_crop(image, masks[i], clip.config.image_size, generator)
                oracle = clip.embed_images(crop[None])[0]
                image_ious = text_then_click(predictor, oracle, gt)[:2]
                for caption in captions:
                    words = predictor.embed_text(caption)[0]  # (D,): embedded once for every figure
                    text_ious = text_then_click(predictor, words, gt)[:2]
                    peak = predictor.ground_text(words)[1]
                    pick = clip_click(predictor, proposals, words)[0]
                    peak_ious = text_then_click(predictor, words, gt, peak)[:2]
                    pick_ious = text_then_click(predictor, words, gt, pick)[:2]
                    answers, scores, _ = predictor.predict(centre.points, centre.labels,
                                                           text=words)
                    rows[kind].append({"text": text_ious[0], "text+1": text_ious[1],
                                       "peak": peak_ious[0], "peak+1": peak_ious[1],
                                       "pick": pick_ious[0], "pick+1": pick_ious[1],
                                       "image": image_ious[0], "image+1": image_ious[1],
                                       "point@1": float(points[0]), "point@2": float(points[1]),
                                       "point@1+text": iou(answers[int(np.argmax(scores))], gt)})
            bar.update(1)
    bar.close()
    rows["all"] = [r for kind in kinds for r in rows[kind]]
    return {kind: _summary(found) for kind, found in rows.items()}


def _summary(rows: list[dict]) -> dict:
    if not rows:
        return {"samples": 0}
    out = {name: round(float(np.mean([r[name] for r in rows])), 4) for name in TEXT_FIGURES}
    for hit, name in HITS.items():
        out[hit] = round(float(np.mean([r[name] > 0.5 for r in rows])), 4)
    out["samples"] = len(rows)
    return out
