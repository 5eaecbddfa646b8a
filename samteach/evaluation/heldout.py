"""The held-out scenes and the score of a model on them (SAM paper §7.1, with RITM's clicker).

Two held-out sets (:data:`HELD_OUT_SETS`), seeds ``HELD_OUT_SEED`` onwards, a range no training
run draws from (training starts at seed 0 and would need a billion steps to get there):

* ``lab`` -- the lab scenes the course is about, square, at the model's input size;
* ``generic`` -- scenes of "anything" (:mod:`samteach.data.generic`); every other one is not
  square (long side at the input size, short side 50-100% of it), so the predictor pads it.

Every instance of every scene is one sample; the first click of each is SAM's multimask output,
keeping the mask with the highest predicted IoU (SAM paper §7.1), later clicks refine with the
previous low-res logits.
"""

from collections.abc import Iterator

import torch

from ..data.generic import make_generic_scene
from ..data.record import SegmentationRecord
from ..data.scenes import make_scene
from ..modeling import Sam
from ..predictor import SamPredictor
from ..utils.arguments import validate_choice, validate_int
from .metrics import STANDARD_CLICKS, EvaluationResult, evaluate, predictor_callable

__all__ = ["HELD_OUT_SEED", "HELD_OUT_SETS", "evaluate_model", "held_out_scenes"]

HELD_OUT_SEED = 1_000_000_000
HELD_OUT_SETS = ("lab", "generic")


def held_out_scenes(kind: str, n_scenes: int, size: int,
                    first_seed: int = HELD_OUT_SEED) -> Iterator[SegmentationRecord]:
    """The held-out scenes of set ``kind`` ("lab" or "generic") for a model of input ``size``."""
    validate_choice(kind, "kind", HELD_OUT_SETS)
    for seed in range(first_seed, first_seed + n_scenes):
        if kind == "lab":
            yield make_scene(seed, size)
        else:
            short = max(32, size * (50 + (seed * 37) % 51) // 100)  # 50-100%, fixed per seed
            shape = [(size, size), (short, size), (size, short)][seed % 4 % 3]
            yield make_generic_scene(seed, shape)


def evaluate_model(
    model: Sam, n_scenes: int = 100, first_seed: int = HELD_OUT_SEED, max_clicks: int = 20,
    progress: bool = True, kind: str = "lab",
) -> EvaluationResult:
    """Play RITM's clicker on every instance of ``n_scenes`` held-out scenes of set ``kind``.

    Scenes are drawn with their long side at the model's input size, so no resizing blurs the
    comparison (non-square ones are padded by the predictor, as any photo is).
    """
    validate_int(n_scenes, "n_scenes", what=", the number of scenes")
    validate_choice(kind, "kind", HELD_OUT_SETS)
    # Masks resized as Meta's predictor does (two steps): the protocol's figures, to the pixel.
    predictor = SamPredictor(model.eval(), resize="twice")

    def samples():
        for scene in held_out_scenes(kind, n_scenes, model.image_encoder.img_size, first_seed):
            for mask in scene.masks:
                yield scene.image, mask  # the same image object: encoded once per scene

    def make_predict(image):
        predictor.set_image(image)
        return predictor_callable(predictor)

    with torch.inference_mode():
        # Report the standard k of mIoU@k that were played (a short CLI run plays fewer).
        clicks = [k for k in STANDARD_CLICKS if k <= max_clicks] or [max_clicks]
        return evaluate(samples(), make_predict, max_clicks=max_clicks, clicks=clicks,
                        progress=progress)
