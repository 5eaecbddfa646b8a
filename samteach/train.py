"""Train SAM interactively from the command line.

    python -m samteach.train --preset tiny --minutes 60 --rounds 3 --out runs/tiny
    python -m samteach.train --preset tiny --steps 8000 --rounds 1 --out runs/single
    torchrun --nproc_per_node 4 -m samteach.train --preset tiny --steps 8000 --out runs/ddp

``--minutes`` stops on a time budget (the schedule stretches over the steps that fit);
``--steps`` makes the run exactly repeatable. ``--resume`` continues an interrupted run in
``--out``; ``--overwrite`` starts over. The folder ends with model.safetensors (load it with
``build_sam(checkpoint=...)``), summary.json and a log of evaluations.
"""

import argparse
import os
import shlex
import sys

from .prompts import FIRST_POINT_MODES
from .trainer import Trainer
from .training import GRAD_ROUNDS, TrainConfig

__all__ = ["CHECK_SCENES", "main", "parse_args", "ship", "weights_readme"]

CHECK_SCENES = 5  # the shipped JSON's "evaluation_check": a subset the tests re-evaluate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m samteach.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--out", required=True, help="the run's folder")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="training time budget")
    budget.add_argument("--steps", type=int, help="number of steps (exactly repeatable)")
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
        train_seed_start=args.train_seed_start,
        # With a time budget the schedule follows the clock (Trainer), not max_steps.
        max_steps=args.steps if args.steps is not None else 10**9,
    )
    command = "python -m samteach.train " + shlex.join(argv if argv is not None else sys.argv[1:])
    if "OMP_NUM_THREADS" in os.environ:  # part of the command: a time budget depends on it
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    trainer = Trainer(config, args.out, minutes=args.minutes, resume=args.resume,
                      overwrite=args.overwrite, eval_every=args.eval_every,
                      eval_scenes=args.eval_scenes, progress=not args.no_progress,
                      command=command, init=args.init)
    summary = trainer.fit()
    if trainer.rank == 0:
        figures = summary.get("evaluation", {})
        print(f"{trainer.step} steps in {trainer.elapsed:.0f} s -> {args.out}")
        for kind, values in figures.items():
            if isinstance(values, dict):
                print(f"  {kind} scenes: " + ", ".join(f"{k} {v}" for k, v in values.items()))
        if args.ship:
            summary = ship(args.out, args.ship, args.final_eval_scenes)
    return summary


def ship(out_dir: str, name: str, n_scenes: int) -> dict:
    """Copy a finished run into samteach/weights/ as NAME.safetensors + NAME.json.

    The JSON holds the run's summary, its learning curve (the log of held-out evaluations), a
    fresh evaluation on ``n_scenes`` scenes of each held-out set (with the scores by instance
    size), and the same on the first ``CHECK_SCENES`` of them, which the tests reproduce.
    """
    import json
    import shutil
    from pathlib import Path

    from .build import WEIGHTS_DIR, build_sam
    from .evaluate import HELD_OUT_SEED, HELD_OUT_SETS, evaluate_model
    from .trainer import LOG, MODEL, SUMMARY
    from .utils.files import atomic_write, write_text_atomic

    out = Path(out_dir)
    summary = json.loads((out / SUMMARY).read_text())
    if (out / LOG).exists():
        summary["learning_curve"] = [json.loads(line) for line in (out / LOG).open()]
    model = build_sam(None, checkpoint=out / MODEL)
    summary["evaluation"] = {"first_seed": HELD_OUT_SEED, "scenes": n_scenes}
    summary["evaluation_check"] = {"first_seed": HELD_OUT_SEED, "scenes": CHECK_SCENES}
    for kind in HELD_OUT_SETS:
        result = evaluate_model(model, n_scenes, kind=kind)
        summary["evaluation"][kind] = {
            **result.figures(),
            "by_size": {size: part.figures() for size, part in result.by_size().items()}}
        summary["evaluation_check"][kind] = evaluate_model(
            model, CHECK_SCENES, progress=False, kind=kind).figures()
    WEIGHTS_DIR.mkdir(exist_ok=True)
    atomic_write(WEIGHTS_DIR / f"{name}.safetensors",
                 lambda tmp: shutil.copyfile(out / MODEL, tmp))
    write_text_atomic(WEIGHTS_DIR / f"{name}.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(WEIGHTS_DIR / "README.md", weights_readme(WEIGHTS_DIR))
    for kind in HELD_OUT_SETS:
        figures = {k: v for k, v in summary["evaluation"][kind].items() if k != "by_size"}
        print(f"shipped {name}, {kind} scenes: " + ", ".join(f"{k} {v}" for k, v in
                                                              figures.items()))
    return summary


def weights_readme(folder) -> str:
    """The README beside the shipped weights, made from their JSON files (so it cannot drift)."""
    import json
    from pathlib import Path

    infos = {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
    lines = ["# Shipped weights", "",
             "Trained by samteach itself on its synthetic scenes; each was made by the command",
             "below, and `python -m samteach.train ... --ship NAME` rewrites this file. Load one",
             "with `build_sam(\"tiny\", pretrained=\"NAME\")`. Figures: RITM clicker on the",
             "held-out lab scenes and generic scenes (`python -m samteach.evaluate`, seeds from",
             "1,000,000,000), first click = the multimask output with the highest predicted IoU.",
             ""]
    names = ["mIoU@1", "mIoU@2", "mIoU@3", "mIoU@5", "mIoU@9", "NoC@85", "NoC@90", "NoF@90"]
    lines += ["| weights | scenes | " + " | ".join(names) + " | samples |",
              "|---" * (len(names) + 3) + "|"]
    for name, info in infos.items():
        for kind, figures in info["evaluation"].items():
            if not isinstance(figures, dict):
                continue
            lines.append(f"| `{name}` | {kind} | " + " | ".join(
                f"{figures[k]:.3f}" if k.startswith(("mIoU", "NoC")) else str(figures[k])
                for k in names) + f" | {figures['samples']} |")
    for name, info in infos.items():
        config = info["config"]
        warm = (f" Warm restart from `{info['init']['init']}` (SHA-256 "
                f"{info['init']['sha256'][:12]}...)." if info.get("init") else "")
        lines += ["", f"## {name}", "", "```console", info["command"], "```", "",
                  f"preset {info['preset']}, seed {info['seed']}, {info['steps']} steps in "
                  f"{info['wall_time_s'] / 60:.1f} min on {info['processes']} {info['device']} "
                  f"process(es) of {info.get('threads', '?')} thread(s); {config['rounds']} "
                  f"round(s) + {config.get('no_click_rounds', 0)} no-click round(s) per step, "
                  f"gradients on {config.get('grad_rounds', 'all')} rounds; "
                  f"{config.get('generic_share', 0.0):.0%} generic scenes.{warm}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
