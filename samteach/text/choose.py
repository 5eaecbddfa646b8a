"""SAM proposes, CLIP chooses: find the object the words name among the masks SAM finds alone.

Not in the paper (samteach's own; the usual way SAM is paired with CLIP in practice). The text
token asks SAM to read the words inside its own image embedding; where that reading is weak
(:mod:`~samteach.text.grounding`), a second way asks CLIP, in CLIP's own space:

1. **Propose**: the automatic mask generator's grid of clicks (:data:`PROPOSALS`: Meta's grid,
   with lower bars so that fewer objects are missed) gives every mask SAM finds without being
   told what to look for.
2. **Look at each as CLIP was trained to**: the paper's crop of each mask
   (:func:`~samteach.text.crops.object_crop`, its box grown 1.5 times, the middle of the
   paper's [1, 2]) twice -- with its surroundings and with them zeroed, the two views the
   paper's crops take -- and the mean of the two cosines with the words' text embedding.
   Crop against text is the comparison CLIP is trained for, so the modality gap that the text
   token must bridge does not stand in the way here.
3. **Choose** the mask with the best cosine, plus a little of SAM's own predicted IoU
   (:data:`QUALITY_WEIGHT`): among masks that look alike to CLIP, a whole object beats a
   scrap of one; and a little of where the text token points (:data:`GROUNDING_WEIGHT`, the
   mean of its grounding map inside the mask, :mod:`~samteach.text.grounding`): the two ways
   of reading the words, CLIP's and SAM's, vote together.

The chosen mask's centre (the point farthest from its boundary, RITM's first click) is then a
click the model gives itself, with the words::

    found = propose(predictor, image)  # once per image
    point, _ = clip_click(predictor, found, "the blue liquid")  # found.choose, all three votes
    masks, scores, _ = predictor.predict(point, np.array([1]), text="the blue liquid")

Shapes: N proposals, H/W the image, D CLIP's width, S CLIP's input size.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..amg.generator import AMGConfig, SamAutomaticMaskGenerator
from ..evaluation.clicker import suggest_click
from ..predictor import SamPredictor
from .crops import object_crop

__all__ = ["GROUNDING_WEIGHT", "PROPOSALS", "QUALITY_WEIGHT", "Proposals", "clip_click",
           "pixel_grounding", "propose"]

# Meta's grid (32 x 32 clicks, no crops) with far lower bars than Meta's 0.88 / 0.95 or the
# data engine's cpu_lab (16 x 16, 0.6 / 0.8): CLIP sorts out the extra masks, and only a mask
# that is proposed can be chosen. On 20 scenes per set outside the held-out figures (seeds from
# 1.5e9), tiny_text proposes a mask (IoU > 0.5) for 0.95 (lab) / 0.81 (generic) of the named
# objects, against 0.77 / 0.52 with cpu_lab's bars on the same grid, and 0.93 / 0.79 with these
# bars on cpu_lab's 16 x 16 grid; the own click then hits 0.89 / 0.60 (16 x 16: 0.87 / 0.57).
PROPOSALS = AMGConfig(points_per_side=32, pred_iou_thresh=0.3, stability_score_thresh=0.5)
# How much SAM's predicted IoU (in [0, 1]) adds to CLIP's cosine (in [-1, 1]). Chosen with
# tiny_text on 15 held-out scenes per set: from 0 to 0.25 the chosen mask hits its object in
# 0.79 of lab samples instead of 0.77, 0.40 of generic ones instead of 0.32; 0.5 is alike.
# Checked on 20 other scenes per set (from seed 1.5e9, 16 x 16 grid): 0.85 / 0.56 instead of
# 0.79 / 0.53, and 0.5 (0.84 / 0.51) no better.
QUALITY_WEIGHT = 0.25
# How much the text token's grounding (a cosine in [-1, 1], its mean inside the mask) adds.
# Chosen with tiny_text on 30 scenes per set from seed 1.5e9 (outside the held-out figures;
# 0.1 / 0.25 / 0.5 / 1): the own click hits 0.792 of 578 samples instead of 0.765 (CLIP and
# the predicted IoU alone); checked on 30 other scenes per set (from seed 1.6e9): 0.690 of 613
# instead of 0.672, better in both sets.
GROUNDING_WEIGHT = 0.25


@dataclass(frozen=True)
class Proposals:
    """The masks SAM finds in one image without being told what to look for, as CLIP sees them.

    Made once per image by :func:`propose`; :meth:`choose` then answers any number of captions.
    """

    masks: np.ndarray  # (N, H, W) bool
    quality: np.ndarray  # (N,) SAM's predicted IoU of each
    crops: torch.Tensor  # (2, N, D) unit CLIP embeddings: with surroundings, zeroed outside

    def scores(self, words: torch.Tensor, grounding: np.ndarray | None = None) -> np.ndarray:
        """(D,) CLIP text embedding -> (N,): the mean cosine of each mask's two crops with the
        words, plus :data:`QUALITY_WEIGHT` x its predicted IoU, plus (with ``grounding``, the
        text token's (H, W) map over the image, :func:`pixel_grounding`) :data:`GROUNDING_WEIGHT`
        x the map's mean inside the mask."""
        if words.shape != self.crops.shape[-1:]:
            raise ValueError(f"words must be a ({self.crops.shape[-1]},) CLIP text embedding; "
                             f"got shape {tuple(words.shape)}")
        words = F.normalize(words.detach().float(), dim=-1).to(self.crops.device)
        cosine = (self.crops @ words).mean(dim=0)  # (N,)
        scores = cosine.cpu().numpy() + QUALITY_WEIGHT * self.quality
        if grounding is not None:
            if np.shape(grounding) != self.masks.shape[1:]:
                raise ValueError(f"grounding must be the {self.masks.shape[1:]} map over the "
                                 f"image (pixel_grounding); got shape {np.shape(grounding)}")
            masks = self.masks.reshape(len(self.masks), -1)  # (N, H*W)
            inside = masks @ np.asarray(grounding, float).reshape(-1) / np.maximum(masks.sum(1), 1)
            scores = scores + GROUNDING_WEIGHT * inside
        return scores

    def choose(self, words: torch.Tensor, grounding: np.ndarray | None = None
               ) -> tuple[np.ndarray, int | None]:
        """(D,) CLIP text embedding (and the (H, W) ``grounding`` of :meth:`scores`) -> the
        click (1, 2) pixel (x, y) at the centre of the best mask (the point farthest from its
        boundary, RITM's first click), and its index; the image's centre and None when SAM
        proposed nothing."""
        if len(self.masks) == 0:
            h, w = self.masks.shape[1:]
            return np.array([[(w - 1) / 2, (h - 1) / 2]]), None
        best = int(np.argmax(self.scores(words, grounding)))
        click = suggest_click(self.masks[best], np.zeros_like(self.masks[best]))
        return np.array([[click.x, click.y]], dtype=float), best


@torch.no_grad()
def propose(predictor: SamPredictor, image: np.ndarray) -> Proposals:
    """SAM's proposals for ``image`` ((H, W, 3) uint8 RGB), and CLIP's view of each.

    The automatic generator runs with :data:`PROPOSALS`; the crops are embedded by the
    predictor's ``text_encoder`` (the shipped ``tiny_clip`` if it has none, as for
    ``predict(text=...)``). The predictor's image is ``image`` on return.
    """
    records = SamAutomaticMaskGenerator(predictor, PROPOSALS).generate(image)
    records = [r for r in records if r["segmentation"].any()]
    predictor.set_image(image)  # the generator resets the image it encodes (as Meta's does)
    masks = np.array([r["segmentation"] for r in records], dtype=bool).reshape(
        -1, *image.shape[:2])  # (N, H, W)
    quality = np.array([r["predicted_iou"] for r in records], dtype=float)
    clip = predictor.clip()
    if len(masks) == 0:
        return Proposals(masks, quality, torch.zeros(2, 0, clip.config.embed_dim))
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # (3, H, W)
    views = []
    for zero_outside in (0.0, 1.0):  # the growth is fixed, so the crop's draws change nothing
        crops = torch.stack([object_crop(pixels, torch.from_numpy(mask), clip.config.image_size,
                                         torch.Generator().manual_seed(0), (1.5, 1.5),
                                         zero_outside) for mask in masks])  # (N, 3, S, S)
        views.append(F.normalize(clip.embed_images(crops.to(predictor.device)).float(), dim=-1))
    return Proposals(masks, quality, torch.stack(views))


def pixel_grounding(predictor: SamPredictor, grounding: np.ndarray) -> np.ndarray:
    """The (h, w) grounding map of ``predictor.ground_text`` (over the padded input) -> (H, W)
    over the predictor's image, scaled up as its masks are (``Sam.postprocess_masks``)."""
    grid = torch.as_tensor(np.asarray(grounding, dtype=np.float32))[None, None]  # (1, 1, h, w)
    pixels = predictor.model.postprocess_masks(grid.to(predictor.device), predictor.input_size,
                                               predictor.original_size)
    return pixels[0, 0].cpu().numpy()


def clip_click(predictor: SamPredictor, proposals: Proposals, text: str | torch.Tensor
               ) -> tuple[np.ndarray, int | None]:
    """The model's own click where CLIP points: :meth:`Proposals.choose` with the words' CLIP
    embedding and the text token's grounding on the predictor's image (the proposals' image).

    ``text`` is a caption or its (D,) CLIP embedding; returns the (1, 2) click and the index of
    the chosen proposal (None when there is none).
    """
    words = predictor.embed_text(text)[0] if isinstance(text, str) else text  # (D,)
    grounding = pixel_grounding(predictor, predictor.ground_text(words)[0])  # (H, W)
    return proposals.choose(words, grounding)
