"""Automatic mask generation: SAM segments everything, prompted by a grid of points.

The data engine's fully automatic stage (SAM paper §4, App. B), with the parameters, defaults
and record format of Meta's ``SamAutomaticMaskGenerator``, so its notebooks and SA-1B's files
read the same. For each crop of the image (the whole image, then optional zoomed-in crops):

1. encode the crop once; prompt it with a grid of single foreground points, a batch at a time,
   three masks per point (one point is ambiguous: part, object, whole);
2. keep the confident (predicted IoU > ``pred_iou_thresh``) and stable (stability score >=
   ``stability_score_thresh``) masks; drop those cut by the crop's border (a bigger crop sees
   the object whole);
3. non-maximum suppression within the crop (``box_nms_thresh``);
then across crops, NMS again (``crop_nms_thresh``) preferring masks from smaller crops, and
optionally remove small islands and holes (``min_mask_region_area``).

Shapes: P points, N masks, H/W image height and width; boxes x0, y0, x1, y1.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from ..modeling import Sam
from ..predictor import SamPredictor, as_predictor
from ..utils.arguments import validate_image, validate_int, validate_number
from ..utils.masks import box_xyxy_to_xywh, mask_to_box
from .filters import box_area, nms, stability_score
from .grids import (
    build_all_layer_point_grids,
    generate_crop_boxes,
    is_box_near_crop_edge,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from .rle import area_from_rle, coco_encode_rle, mask_to_rle, remove_small_regions, rle_to_mask

__all__ = ["AMG_PRESETS", "AMGConfig", "SamAutomaticMaskGenerator", "batch_iterator"]

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


def batch_iterator(batch_size: int, *args: Any) -> Iterator[list[Any]]:
    """Slices of ``batch_size`` items of every argument at once (all of the same length), as
    Meta's ``utils.amg.batch_iterator``: the generator decodes its grid of points this way."""
    if not args or any(len(a) != len(args[0]) for a in args):
        raise ValueError("batch_iterator needs arguments, all of the same length")
    for start in range(0, len(args[0]), batch_size):
        yield [a[start:start + batch_size] for a in args]


@dataclass(frozen=True)
class AMGConfig:
    """The generator's settings; defaults are Meta's (SAM App. B)."""

    points_per_side: int | None = 32  # grid of 32 x 32 prompts on the whole image
    points_per_batch: int = 64  # prompts decoded together: memory vs speed, no effect on output
    pred_iou_thresh: float = 0.88  # keep masks the model itself rates above this IoU
    stability_score_thresh: float = 0.95  # ... and whose border barely moves with the threshold
    stability_score_offset: float = 1.0  # the threshold moves by +/- this many logits
    box_nms_thresh: float = 0.7  # one mask per object within a crop
    crop_n_layers: int = 0  # 0: the whole image only; 1: plus 2x2 crops; 2: plus 4x4 ...
    crop_nms_thresh: float = 0.7  # one mask per object across crops
    crop_overlap_ratio: float = 512 / 1500  # neighbouring crops overlap (share of short side)
    crop_n_points_downscale_factor: int = 1  # grid side divided by this per crop layer
    point_grids: tuple[np.ndarray, ...] | None = field(default=None, compare=False)
    min_mask_region_area: int = 0  # > 0: remove islands and fill holes smaller than this
    output_mode: str = "binary_mask"  # or "uncompressed_rle", "coco_rle" (SA-1B's)

    def __post_init__(self) -> None:
        if (self.points_per_side is None) == (self.point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids; got "
                             + ("both" if self.points_per_side is not None else "neither"))
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh",
                     "crop_nms_thresh", "crop_overlap_ratio"):
            validate_number(getattr(self, name), name, 0.0, 1.0)
        validate_int(self.points_per_batch, "points_per_batch")
        validate_int(self.crop_n_points_downscale_factor, "crop_n_points_downscale_factor")
        validate_int(self.crop_n_layers, "crop_n_layers", 0)
        validate_int(self.min_mask_region_area, "min_mask_region_area", 0)
        if self.points_per_side is not None:
            validate_int(self.points_per_side, "points_per_side")
        else:
            self._check_grids()
        validate_number(self.stability_score_offset, "stability_score_offset", 0.0)
        if self.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}; got "
                             f"{self.output_mode!r}")

    def _check_grids(self) -> None:
        grids = self.point_grids
        if not isinstance(grids, (list, tuple)) or len(grids) != self.crop_n_layers + 1:
            raise ValueError(f"point_grids must be a list of crop_n_layers + 1 = "
                             f"{self.crop_n_layers + 1} arrays of (P, 2) points in [0, 1]")
        for i, grid in enumerate(grids):
            grid = np.asarray(grid)
            if grid.ndim != 2 or grid.shape[1] != 2 or grid.size == 0 \
                    or not ((grid >= 0) & (grid <= 1)).all():
                raise ValueError(f"point_grids[{i}] must be (P, 2) points (x, y) in [0, 1]; got "
                                 f"shape {grid.shape}")

    def grids(self) -> list[np.ndarray]:
        """One (P, 2) grid of normalised points per crop layer."""
        if self.point_grids is not None:
            return [np.asarray(g, dtype=np.float64) for g in self.point_grids]
        return build_all_layer_point_grids(self.points_per_side, self.crop_n_layers,
                                           self.crop_n_points_downscale_factor)


# "cpu_lab": the course's laptop setting -- a 16 x 16 grid, no crops (4x fewer prompts), and
# thresholds the small 128 px model can meet: it is less sure of itself than SAM ViT-H, and
# Meta's 0.88 / 0.95 keep none of its masks on a lab scene. On held-out scenes these keep ~8
# masks per image and find ~70 % of the objects (32 x 32 points: no more found, 3x the time).
AMG_PRESETS = {
    "official": AMGConfig(),
    "cpu_lab": AMGConfig(points_per_side=16, pred_iou_thresh=0.6, stability_score_thresh=0.8),
}


@dataclass
class _Candidates:
    """Masks kept so far, as parallel columns."""

    rles: list[dict]
    boxes: torch.Tensor  # (N, 4) long
    iou_preds: torch.Tensor  # (N,)
    points: torch.Tensor  # (N, 2) float64 pixel (x, y)
    stability: torch.Tensor  # (N,)
    crop_boxes: torch.Tensor  # (N, 4) long

    def filter(self, keep: torch.Tensor) -> "_Candidates":
        index = torch.as_tensor(keep, device=self.boxes.device)
        if index.dtype == torch.bool:
            index = index.nonzero().squeeze(1)
        columns = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "rles"}
        return _Candidates(rles=[self.rles[i] for i in index.tolist()], **columns)

    @staticmethod
    def cat(parts: list["_Candidates"], device: torch.device) -> "_Candidates":
        if not parts:
            return _Candidates([], torch.zeros(0, 4, dtype=torch.long, device=device),
                               torch.zeros(0, device=device),
                               torch.zeros(0, 2, dtype=torch.float64, device=device),
                               torch.zeros(0, device=device),
                               torch.zeros(0, 4, dtype=torch.long, device=device))
        columns = {f.name: torch.cat([getattr(p, f.name) for p in parts])
                   for f in fields(_Candidates) if f.name != "rles"}
        return _Candidates(rles=[r for p in parts for r in p.rles], **columns)


# AMGConfig's fields are the parameters of Meta's SamAutomaticMaskGenerator, in its order.
META_ORDER = tuple(f.name for f in fields(AMGConfig))


class SamAutomaticMaskGenerator:
    """Segment everything in an image with any samteach SAM (the tiny one included).

    Args:
        model: a samteach ``Sam`` or ``SamPredictor``.
        config: an ``AMGConfig`` (or a name from ``AMG_PRESETS``); Meta's defaults when None.
            Or, as in Meta's class, the options themselves by position: ``points_per_side``,
            ``points_per_batch``, ``pred_iou_thresh``, ... (:data:`META_ORDER`).
        **options: any ``AMGConfig`` field, overriding ``config`` -- so
            ``SamAutomaticMaskGenerator(sam, points_per_side=16)`` reads like Meta's.

    Example::

        generator = SamAutomaticMaskGenerator(sam, "cpu_lab")
        records = generator.generate(image)  # a list of dicts, one per mask
    """

    def __init__(self, model: Sam | SamPredictor, *args, **options) -> None:
        model = as_predictor(model, "model")
        config = None
        if args and (args[0] is None or isinstance(args[0], (str, AMGConfig))):
            config, args = args[0], args[1:]
        if len(args) > len(META_ORDER) or (config is not None and args):
            raise TypeError(f"after model, give an AMGConfig (or a preset name), or the options "
                            f"in Meta's order {META_ORDER}; got {len(args)} more arguments")
        for name, value in zip(META_ORDER, args, strict=False):  # Meta's positional order
            if name in options:
                raise TypeError(f"{name} given twice, by position and by name")
            options[name] = value
        if isinstance(config, str):
            if config not in AMG_PRESETS:
                raise ValueError(f"config must be an AMGConfig or one of {list(AMG_PRESETS)}; "
                                 f"got {config!r}")
            config = AMG_PRESETS[config]
        config = config if config is not None else AMGConfig()
        unknown = set(options) - {f.name for f in fields(AMGConfig)}
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; the options are the fields "
                            f"of AMGConfig: {[f.name for f in fields(AMGConfig)]}")
        if "point_grids" in options and "points_per_side" not in options:
            options["points_per_side"] = None  # a grid given replaces the default side
        self.config = replace(config, **options)
        if model.resize != "twice":  # masks resized as Meta's generator does, to the pixel: its
            # stability scores and filters see the same logits
            model = SamPredictor(model.model, resize="twice", bf16=model.bf16)
        self.predictor = model

    @torch.no_grad()
    def generate(self, image: np.ndarray) -> list[dict]:
        """(H, W, 3) uint8 RGB -> one record per mask, in Meta's format.

        Each record: ``segmentation`` (an (H, W) bool array, or an RLE dict per
        ``output_mode``), ``area`` (pixels), ``bbox`` [x, y, w, h], ``predicted_iou``,
        ``point_coords`` [[x, y]] (the prompt), ``stability_score``, ``crop_box`` [x, y, w, h].
        """
        image = validate_image(image, "RGB")
        found = self._generate_masks(image)
        if self.config.min_mask_region_area > 0:
            found = self._remove_small_regions(found, self.config.min_mask_region_area)
        return [self._record(found, i) for i in range(len(found.rles))]

    # ------------------------------------------------------------------ the pipeline
    def _generate_masks(self, image: np.ndarray) -> _Candidates:
        size = image.shape[:2]
        crop_boxes, layers = generate_crop_boxes(size, self.config.crop_n_layers,
                                                 self.config.crop_overlap_ratio)
        grids = self.config.grids()
        found = _Candidates.cat([self._process_crop(image, box, grids[layer], size)
                                 for box, layer in zip(crop_boxes, layers, strict=True)],
                                self.predictor.device)
        if len(crop_boxes) > 1 and len(found.rles):
            # The same object seen in several crops: keep the one from the smallest crop,
            # which saw it at the highest resolution.
            scores = 1.0 / box_area(found.crop_boxes.float())
            found = found.filter(nms(found.boxes.float(), scores, self.config.crop_nms_thresh))
        return found

    def _process_crop(self, image, crop_box: list[int], grid: np.ndarray,
                      orig_size: tuple[int, int]) -> _Candidates:
        x0, y0, x1, y1 = crop_box
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        self.predictor.set_image(crop)  # one encoder pass serves every prompt of the crop
        points = grid * np.array([[x1 - x0, y1 - y0]], dtype=np.float64)  # (P, 2) crop pixels
        parts = [self._process_batch(batch, crop.shape[:2], crop_box, orig_size)
                 for (batch,) in batch_iterator(self.config.points_per_batch, points)]
        self.predictor.reset_image()
        found = _Candidates.cat(parts, self.predictor.device)
        found = found.filter(nms(found.boxes.float(), found.iou_preds,
                                 self.config.box_nms_thresh))
        found.boxes = uncrop_boxes_xyxy(found.boxes, crop_box)
        found.points = uncrop_points(found.points, crop_box)
        found.crop_boxes = torch.tensor([crop_box], device=found.boxes.device).expand(
            len(found.rles), 4)
        return found

    def _process_batch(self, points: np.ndarray, crop_size: tuple[int, int],
                       crop_box: list[int], orig_size: tuple[int, int]) -> _Candidates:
        cfg, predictor, device = self.config, self.predictor, self.predictor.device
        coords = torch.as_tensor(predictor.transform.apply_coords(points, crop_size),
                                 dtype=torch.float, device=device)  # (P, 2) resized frame
        labels = torch.ones(len(points), dtype=torch.int, device=device)
        logits, iou_preds, _ = predictor.predict_torch(coords[:, None, :], labels[:, None],
                                                       multimask_output=True, return_logits=True)
        logits, iou_preds = logits.flatten(0, 1), iou_preds.flatten(0, 1)  # (3P, h, w), (3P,)
        point_of_mask = torch.as_tensor(np.repeat(points, logits.shape[0] // len(points), 0),
                                        device=device)  # (3P, 2): each point's three masks
        threshold = predictor.model.mask_threshold
        stability = stability_score(logits, threshold, cfg.stability_score_offset)
        keep = torch.ones(len(logits), dtype=torch.bool, device=device)
        if cfg.pred_iou_thresh > 0:
            keep &= iou_preds > cfg.pred_iou_thresh
        if cfg.stability_score_thresh > 0:
            keep &= stability >= cfg.stability_score_thresh
        masks = logits[keep] > threshold  # (N, h, w)
        boxes = mask_to_box(masks)  # (N, 4) in the crop
        h, w = orig_size
        inside = ~is_box_near_crop_edge(boxes, crop_box, [0, 0, w, h])
        masks = uncrop_masks(masks[inside], crop_box, h, w)
        return _Candidates(rles=mask_to_rle(masks), boxes=boxes[inside],
                           iou_preds=iou_preds[keep][inside],
                           points=point_of_mask[keep][inside],
                           stability=stability[keep][inside],
                           crop_boxes=torch.zeros(int(inside.sum()), 4, dtype=torch.long,
                                                  device=device))

    def _remove_small_regions(self, found: _Candidates, min_area: int) -> _Candidates:
        """Fill small holes and drop small islands; NMS again, preferring untouched masks."""
        if not found.rles:
            return found
        masks, untouched = [], []
        for rle in found.rles:
            mask, holes = remove_small_regions(rle_to_mask(rle), min_area, "holes")
            mask, islands = remove_small_regions(mask, min_area, "islands")
            masks.append(torch.as_tensor(mask))
            untouched.append(float(not (holes or islands)))
        masks_t = torch.stack(masks).to(found.boxes.device)  # (N, H, W)
        boxes = mask_to_box(masks_t)
        keep = nms(boxes.float(), torch.tensor(untouched, device=boxes.device),
                   self.config.box_nms_thresh)
        for i in keep.tolist():
            if untouched[i] == 0.0:  # the mask changed: its RLE and box follow
                found.rles[i] = mask_to_rle(masks_t[i:i + 1])[0]
                found.boxes[i] = boxes[i]
        return found.filter(keep)

    def _record(self, found: _Candidates, i: int) -> dict:
        rle = found.rles[i]
        if self.config.output_mode == "coco_rle":
            segmentation = coco_encode_rle(rle)
        elif self.config.output_mode == "uncompressed_rle":
            segmentation = rle
        else:
            segmentation = rle_to_mask(rle)
        return {
            "segmentation": segmentation,
            "area": area_from_rle(rle),
            "bbox": box_xyxy_to_xywh([int(v) for v in found.boxes[i]]),  # Meta's XYWH
            "predicted_iou": float(found.iou_preds[i]),
            "point_coords": [found.points[i].tolist()],
            "stability_score": float(found.stability[i]),
            "crop_box": box_xyxy_to_xywh([int(v) for v in found.crop_boxes[i]]),
        }
