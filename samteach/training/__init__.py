"""SAM's training, as the paper's App. A describes it (Meta never released the code).

* :mod:`~samteach.training.samplers` -- the prompts of training: first points (uniform or near
  the centre), noisy boxes, corrective clicks from the error region;
* :mod:`~samteach.training.losses` -- focal + dice on the best of the multimask outputs, MSE
  on the IoU head;
* :mod:`~samteach.training.step` -- one step of the interactive loop: first prompt, corrective
  rounds, the mask fed back;
* :mod:`~samteach.training.scenes` -- the training images (lab and generic scenes);
* :mod:`~samteach.training.config` -- :class:`TrainConfig` and the learning-rate schedule;
* :mod:`~samteach.training.trainer` -- the optimiser, checkpoints, resuming, DDP;
* ``python -m samteach.train`` (:mod:`samteach.training.__main__`) -- the command line.
"""

from .config import GRAD_ROUNDS, TrainConfig, lr_at
from .scenes import SceneMasks, scene_size
from .step import InteractiveSam, interactive_step, next_round_prompts, preprocess_batch, round_plan

__all__ = [
    "GRAD_ROUNDS",
    "InteractiveSam",
    "SceneMasks",
    "TrainConfig",
    "interactive_step",
    "lr_at",
    "next_round_prompts",
    "preprocess_batch",
    "round_plan",
    "scene_size",
]
