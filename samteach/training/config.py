"""What a training run depends on (:class:`TrainConfig`) and its learning-rate schedule.

A run is repeatable from its config alone: it is saved in every checkpoint, so a run can be
resumed, and in the shipped JSON, so the shipped weights can be made again.
"""

import math
from dataclasses import dataclass, field

from ..data.generic import GenericSceneConfig
from ..data.scenes import SceneConfig
from ..utils.arguments import validate_choice, validate_int, validate_number
from .samplers import FIRST_POINT_MODES

__all__ = ["GRAD_ROUNDS", "TrainConfig", "lr_at"]

GRAD_ROUNDS = ("all", "last", "sample")  # which rounds carry gradients (samteach.training.step)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved in its checkpoints so it can be resumed or repeated."""

    preset: str = "tiny"
    images_per_step: int = 8  # B: images encoded once per step
    masks_per_image: int = 4  # K: prompts decoded per image ("one embedding, many prompts")
    # 1 first-prompt round + (rounds - 1) click rounds. The paper uses 1 + 8 (+ 2 no-click);
    # on a CPU each round costs a decoder forward (and backward, if it carries gradients).
    rounds: int = 9
    # Rounds that add no click and only feed the mask back (the paper: 2, one at a random place
    # among the click rounds and one at the end): the model learns to improve its own mask.
    no_click_rounds: int = 2
    # Which rounds backpropagate: "all", "last" or "sample" (see the module docstring). At
    # equal CPU time "sample" (3 of 11) matched "all" and runs ~1.6x more steps.
    grad_rounds: str = "sample"
    grad_sample: int = 3  # with grad_rounds="sample": round 1 and this many - 1 others
    p_box: float = 0.5  # first prompt: a box with this probability, else a point (App. A)
    # First points: "uniform" in the mask (App. A), near the "center" (where the evaluation's
    # robot and a lecturer click), or "both" (a coin per prompt).
    point_mode: str = "both"
    # AdamW; the paper uses 8e-4 at batch 256 from an MAE initialisation. 2e-3 is the shipped
    # tiny's (batch 8, from scratch and for its warm restart); not tuned beyond a few short runs.
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 200  # linear warm-up, then cosine decay to 5% at max_steps
    max_steps: int = 10_000
    grad_clip: float = 1.0
    # "full": logits upsampled to the image, as SAM 2's training does and as the masks are
    # scored -- at equal CPU time it gave better boundaries (lab NoC@85 7.6 vs 8.8); "low":
    # the decoder's low-res logits against the ground truth averaged down to their size.
    loss_resolution: str = "full"
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    seed: int = 0
    train_seed_start: int = 0  # training scenes are seeds train_seed_start + 0, 1, 2, ...
    scene: SceneConfig = field(default_factory=SceneConfig)
    # The data mixture: this share of the images are generic scenes (shapes of anything,
    # samteach.data.generic), the rest lab scenes; and this share of images are not square
    # (drawn with their long side at the input size, padded like SamPredictor pads).
    generic_share: float = 0.5
    nonsquare_share: float = 0.25
    generic: GenericSceneConfig = field(default_factory=GenericSceneConfig)
    # Text prompts (SAM §7.5): this share of the first prompts is the CLIP image embedding of
    # the object (objects large enough only), from the frozen CLIP ``clip`` names (shipped
    # weights or a file). 0: no text prompts, and the model has no text parts.
    text_share: float = 0.0
    clip: str = "tiny_clip"
    # With text prompts: the weight of :func:`~samteach.training.losses.grounding_loss` (not in
    # the paper): each text token must point at its object among its image's embedding
    # locations. 0: the paper's losses only.
    text_grounding: float = 0.0
    # With text prompts: this share of them is the CLIP *text* embedding of a caption that names
    # the object in its scene, the rest the paper's image embedding. The paper had no captions
    # (SA-1B has none); our generator has them, and training on some closes the modality gap.
    # 0: the paper's recipe.
    text_captions: float = 0.0
    # With text prompts: this share of them also carries the model's own click where the words
    # point (the peak of the grounding map, label 1) -- what ``predict(text_click=True)`` gives
    # at inference -- so the decoder learns to weigh a click that may be wrong against the
    # words. Not the paper's. 0: the words alone.
    text_click: float = 0.0
    # Fine-tuning: keep the image encoder (and SAM 2's high-res stem) as it is and train the
    # prompt encoder and decoder only -- a step costs about half, and the embedding every
    # prompt reads does not move.
    freeze_encoder: bool = False

    def __post_init__(self) -> None:
        # Every value checked here, where it is made, not at the first step that reads it.
        for name in ("images_per_step", "masks_per_image", "rounds", "max_steps", "grad_sample"):
            validate_int(getattr(self, name), name)
        for name in ("no_click_rounds", "warmup_steps", "seed", "train_seed_start"):
            validate_int(getattr(self, name), name, low=0)
        if not isinstance(self.freeze_encoder, bool):
            raise ValueError(f"freeze_encoder must be True or False; got {self.freeze_encoder!r}")
        validate_choice(self.loss_resolution, "loss_resolution", ("low", "full"))
        validate_choice(self.grad_rounds, "grad_rounds", GRAD_ROUNDS)
        validate_choice(self.point_mode, "point_mode", FIRST_POINT_MODES)
        validate_number(self.lr, "lr", low=0, low_open=True, expected="a positive learning rate")
        for name in ("weight_decay", "grad_clip", "focal_weight", "dice_weight", "iou_weight",
                     "text_grounding"):
            validate_number(getattr(self, name), name, low=0)
        for name in ("p_box", "generic_share", "nonsquare_share", "text_share", "text_captions",
                     "text_click"):
            validate_number(getattr(self, name), name, 0, 1, expected="a share in [0, 1]")

    @property
    def total_rounds(self) -> int:
        return self.rounds + self.no_click_rounds


def lr_at(step: int, config: TrainConfig, progress: float | None = None) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 5% of the peak.

    ``progress`` (0 -> 1) is how far the run is after its warm-up; by default the share of
    ``max_steps`` done. A run with a time budget passes the share of its time used instead.
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if progress is None:
        progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, max(0.0, progress))
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
