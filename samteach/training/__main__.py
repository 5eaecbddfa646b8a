"""Train SAM interactively from the command line.

    python -m samteach.train --preset tiny --minutes 60 --rounds 3 --out runs/tiny
    python -m samteach.train --preset tiny --steps 8000 --rounds 1 --out runs/single
    torchrun --nproc_per_node 4 -m samteach.train --preset tiny --steps 8000 --out runs/ddp

``--minutes`` stops on a time budget (the schedule stretches over the steps that fit);
``--steps`` makes the run exactly repeatable; ``--stop-at`` ends it early at a given step
(the learning-rate schedule still spans ``--steps``); ``--start-at`` runs the rest of such a run
from its ``--init`` weights alone. ``--resume`` continues an interrupted run in
``--out``; ``--overwrite`` starts over. The folder ends with model.safetensors (load it with
``build_sam(checkpoint=...)``), summary.json and a log of evaluations.
"""

import argparse
import os
import shlex
import sys

from ..utils.cli import ArgumentParser, run
from .config import GRAD_ROUNDS, TrainConfig
from .samplers import FIRST_POINT_MODES
from .trainer import Trainer

__all__ = ["main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser("python -m samteach.train", __doc__, aliases={
        "max_steps": "--steps", "images_per_step": "--images", "masks_per_image": "--masks",
        "warmup_steps": "--warmup", "n_scenes": "--eval-scenes"})
    p.add_argument("--preset", default="tiny")
    p.add_argument("--out", required=True, help="the run's folder")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="training time budget")
    budget.add_argument("--steps", type=int, help="number of steps (exactly repeatable)")
    p.add_argument("--stop-at", type=int, metavar="STEP",
                   help="with --steps: end at this step, the schedule still spanning --steps")
    p.add_argument("--start-at", type=int, metavar="STEP",
                   help="with --steps and --init: begin at this step of the schedule, from the "
                        "weights a run stopped there left (a new optimiser, warmed up again)")
    p.add_argument("--rounds", type=int, default=TrainConfig.rounds,
                   help="1 first-prompt round + (rounds - 1) corrective-click rounds")
    p.add_argument("--no-click-rounds", type=int, default=TrainConfig.no_click_rounds,
                   help="rounds that only feed the mask back (the paper: 2)")
    p.add_argument("--grad-rounds", choices=GRAD_ROUNDS, default=TrainConfig.grad_rounds,
                   help="which rounds carry gradients")
    p.add_argument("--grad-sample", type=int, default=TrainConfig.grad_sample,
                   help="with --grad-rounds sample: round 1 and this many - 1 random others")
    p.add_argument("--point-mode", choices=FIRST_POINT_MODES, default=TrainConfig.point_mode,
                   help="first clicks: uniform in the mask, near its centre, or both")
    p.add_argument("--loss-resolution", choices=("low", "full"),
                   default=TrainConfig.loss_resolution)
    p.add_argument("--generic-share", type=float, default=TrainConfig.generic_share,
                   help="share of generic scenes (shapes of anything) among the images")
    p.add_argument("--nonsquare-share", type=float, default=TrainConfig.nonsquare_share,
                   help="share of non-square images (padded like SamPredictor pads)")
    p.add_argument("--text-share", type=float, default=TrainConfig.text_share,
                   help="share of first prompts that are the object's CLIP image embedding "
                        "(text prompts, SAM §7.5; 0: none)")
    p.add_argument("--clip", default=TrainConfig.clip,
                   help="with --text-share: the frozen CLIP (shipped name or file)")
    p.add_argument("--text-grounding", type=float, default=TrainConfig.text_grounding,
                   help="with --text-share: weight of the grounding loss (each text token "
                        "points at its object among the embedding's locations; 0: none)")
    p.add_argument("--text-captions", type=float, default=TrainConfig.text_captions,
                   help="with --text-share: share of text prompts that are a caption's CLIP "
                        "text embedding instead of the crop's image embedding (0: the paper's)")
    p.add_argument("--text-click", type=float, default=TrainConfig.text_click,
                   help="with --text-share: share of text prompts that also carry the model's "
                        "own click where the words point (predict(text_click=True); 0: none)")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="train the prompt encoder and decoder only (fine-tuning)")
    p.add_argument("--init", metavar="WEIGHTS",
                   help="warm restart: start from a checkpoint file or shipped weights")
    p.add_argument("--images", type=int, default=TrainConfig.images_per_step,
                   help="images per step (per process)")
    p.add_argument("--masks", type=int, default=TrainConfig.masks_per_image,
                   help="masks (prompts) per image")
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--warmup", type=int, default=TrainConfig.warmup_steps)
    p.add_argument("--p-box", type=float, default=TrainConfig.p_box)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--train-seed-start", type=int, default=TrainConfig.train_seed_start,
                   help="first scene seed of the training stream (e.g. past a warm start's)")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-scenes", type=int, default=10)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ship", metavar="NAME",
                   help="when done, copy the weights and summary into samteach/weights/NAME.*")
    p.add_argument("--final-eval-scenes", type=int, default=100,
                   help="held-out scenes of the final evaluation (default 100)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    config = TrainConfig(
        preset=args.preset, images_per_step=args.images, masks_per_image=args.masks,
        rounds=args.rounds, no_click_rounds=args.no_click_rounds, grad_rounds=args.grad_rounds,
        grad_sample=args.grad_sample, point_mode=args.point_mode,
        loss_resolution=args.loss_resolution, generic_share=args.generic_share,
        nonsquare_share=args.nonsquare_share,
        p_box=args.p_box, lr=args.lr, warmup_steps=args.warmup, seed=args.seed,
        train_seed_start=args.train_seed_start, text_share=args.text_share, clip=args.clip,
        text_grounding=args.text_grounding, text_captions=args.text_captions,
        text_click=args.text_click,
        freeze_encoder=args.freeze_encoder,
        # With a time budget the schedule follows the clock (Trainer), not max_steps.
        max_steps=args.steps if args.steps is not None else 10**9,
    )
    # The command that repeats the run from scratch: an interrupted run resumed with --resume
    # ends exactly where the uninterrupted one would, so the flag is not part of the recipe.
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m samteach.train " + shlex.join([a for a in given if a != "--resume"])
    if "OMP_NUM_THREADS" in os.environ:  # part of the command: a time budget depends on it
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    trainer = Trainer(config, args.out, minutes=args.minutes, resume=args.resume,
                      overwrite=args.overwrite, eval_every=args.eval_every,
                      eval_scenes=args.eval_scenes, progress=not args.no_progress,
                      command=command, init=args.init, stop_at=args.stop_at,
                      start_at=args.start_at)
    summary = trainer.fit()
    if trainer.rank == 0:
        figures = summary.get("evaluation", {})
        print(f"{trainer.step} steps in {trainer.elapsed:.0f} s -> {args.out}")
        for kind, values in figures.items():
            if isinstance(values, dict):
                print(f"  {kind} scenes: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        if args.ship:
            from ..course.release import ship  # release tooling: writes samteach/weights/

            summary = ship(args.out, args.ship, args.final_eval_scenes)
    return summary


if __name__ == "__main__":
    run(main)
