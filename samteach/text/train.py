"""Train the tiny CLIP on (crop, caption) pairs of the synthetic scenes, and score it.

    python -m samteach.text.train --steps 1500 --out runs/clip
    python -m samteach.text.train --steps 1500 --out runs/clip --ship tiny_clip

Each step draws fresh training scenes (lab and generic, like SAM's training stream), crops
every large enough object the paper's way, gives each crop one of its captions at random, and
takes a step of the contrastive loss. At the end the crops of held-out scenes are matched
against every caption those scenes use (:func:`retrieval`); ``--ship`` copies the weights and
a JSON of the run into ``samteach/weights/clip/``. A run takes minutes: it is exactly repeatable
from ``--steps`` and ``--seed``, and not resumable (start it again).

Shapes: n pairs in a step, V captions in the vocabulary, D the shared embedding width.
"""

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..evaluation.heldout import HELD_OUT_SEED, HELD_OUT_SETS, held_out_scenes
from ..training.config import lr_at
from ..training.scenes import training_scene
from ..utils.arguments import validate_int, validate_number
from ..utils.cli import ArgumentParser, run
from ..utils.files import file_sha256, write_text_atomic
from .clip import CLIP_DIR, TinyClip, TinyClipConfig, load_clip, save_clip
from .pairs import CropPairs, scene_pairs

__all__ = ["ClipTrainConfig", "main", "retrieval", "ship_clip", "train_clip"]


@dataclass(frozen=True)
class ClipTrainConfig:
    """Everything a CLIP run depends on (recorded in its JSON)."""

    model: TinyClipConfig = field(default_factory=TinyClipConfig)
    scene_size: int = 128  # the tiny SAM's input: CLIP sees the objects as SAM's training does
    scenes_per_step: int = 32  # ~150-250 pairs: enough negatives for a 40-word vocabulary
    max_steps: int = 1500
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    generic_share: float = 0.5  # the same mixture as SAM's training stream
    nonsquare_share: float = 0.25
    seed: int = 0
    # Scene seeds of the stream; apart from SAM's training (0 on) and the held-out sets (1e9 on).
    train_seed_start: int = 500_000_000
    # Locked-image tuning (LiT, Zhai et al. 2022): a warm restart in which only the text tower
    # and the temperature learn. The image embeddings stay bit for bit those of the init, so a
    # SAM trained on them (its text token's training prompts) keeps its meaning, while the
    # captions move towards their crops.
    lock_image: bool = False

    def __post_init__(self) -> None:
        for name in ("scene_size", "scenes_per_step", "max_steps"):
            validate_int(getattr(self, name), name)
        for name in ("warmup_steps", "seed", "train_seed_start"):
            validate_int(getattr(self, name), name, low=0)
        validate_number(self.lr, "lr", low=0, low_open=True, expected="a positive learning rate")
        validate_number(self.weight_decay, "weight_decay", low=0)
        for name in ("generic_share", "nonsquare_share"):
            validate_number(getattr(self, name), name, 0, 1, expected="a share in [0, 1]")


def _batch(config: ClipTrainConfig, step: int, generator: torch.Generator) -> CropPairs:
    """The pairs of step ``step``: every large enough object of its scenes."""
    parts = []
    for i in range(config.scenes_per_step):
        seed = config.train_seed_start + step * config.scenes_per_step + i
        record, _ = training_scene(seed, config.scene_size, generic_share=config.generic_share,
                                   nonsquare_share=config.nonsquare_share)
        parts.append(scene_pairs(record, config.model.image_size, generator))
    return CropPairs(torch.cat([p.crops for p in parts]),
                     [c for p in parts for c in p.captions],
                     [i for p in parts for i in p.instances])


def _require_init_to_lock(config: ClipTrainConfig, init) -> None:
    if config.lock_image and init is None:
        raise ValueError("--lock-image (lock_image) tunes the text tower against the image "
                         "tower of --init (init): give the CLIP whose image tower to keep")


def train_clip(config: ClipTrainConfig, progress: bool = True,
               init: str | Path | None = None) -> tuple[TinyClip, list[float]]:
    """Train a TinyClip from scratch, or on from the CLIP file ``init`` (a warm restart: a new
    schedule, new scenes); returns it (eval mode) and its loss per step."""
    from tqdm.auto import tqdm

    _require_init_to_lock(config, init)
    torch.manual_seed(config.seed)
    model = TinyClip(config.model)
    if init is not None:
        start = load_clip(init)
        if start.config != config.model:
            raise ValueError(f"init {init} is a CLIP of another shape ({start.config}); this "
                             f"run trains {config.model}")
        model.load_state_dict(start.state_dict())
    if config.lock_image:
        for name in model.IMAGE_SIDE:
            getattr(model, name).requires_grad_(False)
        model.image_tower.eval()  # its batch norms keep their running statistics
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]  # not biases, norms, temperature
    rest = [p for p in trained if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    for step in tqdm(range(config.max_steps), desc="tiny CLIP", disable=not progress):
        pairs = _batch(config, step, generator)
        pick = torch.randint(0, 1 << 30, (len(pairs),), generator=generator).tolist()
        chosen = [found[k % len(found)] for found, k in zip(pairs.captions, pick, strict=True)]
        tokens = model.tokenizer.encode(chosen, config.model.context)  # (n, L)
        # [i, j]: caption j is true of crop i ("liquid" is true of every liquid in the batch)
        positives = torch.tensor([[c in found for c in chosen] for found in pairs.captions])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        loss = model(pairs.crops, tokens, positives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # CLIP clips the temperature's scale at 100
            model.log_scale.clamp_(max=4.6052)
        losses.append(float(loss.detach()))
    return model.eval(), losses


@torch.no_grad()
def retrieval(model: TinyClip, n_scenes: int = 100, first_seed: int = HELD_OUT_SEED,
              size: int = 128, kinds: tuple[str, ...] = HELD_OUT_SETS) -> dict:
    """Zero-shot crop -> caption retrieval on held-out scenes.

    Every large enough object of ``n_scenes`` scenes of each held-out set is cropped the
    paper's way (growth in [1, 2], half of them with the outside zeroed; fixed draws); its
    embedding is matched against every caption the scenes use, and the top caption counts as
    right when it is true of the object. Returns top-1 accuracy per set and over all, and the
    number of crops and captions.
    """
    generator = torch.Generator().manual_seed(0)
    result, crops, truths = {}, [], []
    for kind in kinds:
        for record in held_out_scenes(kind, n_scenes, size, first_seed):
            pairs = scene_pairs(record, model.config.image_size, generator)
            crops.append(pairs.crops)
            truths += [(kind, found) for found in pairs.captions]
    vocabulary = sorted({c for _, found in truths for c in found})
    texts = model.embed_text(vocabulary)  # (V, D)
    images = model.embed_images(torch.cat(crops))  # (n, D)
    top = (images @ texts.T).argmax(dim=1).tolist()  # (n,)
    right = [vocabulary[t] in found for t, (_, found) in zip(top, truths, strict=True)]
    for kind in kinds:
        hits = [r for r, (k, _) in zip(right, truths, strict=True) if k == kind]
        result[kind] = round(sum(hits) / max(1, len(hits)), 4)
    result.update(top1=round(sum(right) / max(1, len(right)), 4), crops=len(right),
                  vocabulary=len(vocabulary), scenes_per_set=n_scenes)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser("python -m samteach.text.train", __doc__,
                       aliases={"max_steps": "--steps", "scenes_per_step": "--scenes"})
    p.add_argument("--out", required=True, help="the run's folder")
    p.add_argument("--steps", type=int, default=ClipTrainConfig.max_steps)
    p.add_argument("--scenes", type=int, default=ClipTrainConfig.scenes_per_step,
                   help="scenes per step (each gives all its large enough objects)")
    p.add_argument("--lr", type=float, default=ClipTrainConfig.lr)
    p.add_argument("--seed", type=int, default=ClipTrainConfig.seed)
    p.add_argument("--image-size", type=int, default=TinyClipConfig.image_size,
                   help="side of the crops the image tower sees, in pixels")
    p.add_argument("--image-width", type=int, default=TinyClipConfig.image_width,
                   help="channels of the image tower's first stage (doubled at each stage)")
    p.add_argument("--init", metavar="CLIP", help="warm restart from this CLIP file")
    p.add_argument("--lock-image", action="store_true",
                   help="train only the text tower (and temperature); needs --init")
    p.add_argument("--train-seed-start", type=int, default=ClipTrainConfig.train_seed_start,
                   help="first scene seed of the training stream (past a warm start's)")
    p.add_argument("--eval-scenes", type=int, default=100,
                   help="held-out scenes of each set for the retrieval score")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--ship", metavar="NAME",
                   help="copy the weights and JSON into samteach/weights/clip/NAME.*")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    validate_int(args.eval_scenes, "eval_scenes")
    model = TinyClipConfig(image_size=args.image_size, image_width=args.image_width)
    config = ClipTrainConfig(model=model, max_steps=args.steps, scenes_per_step=args.scenes,
                             lr=args.lr, seed=args.seed, train_seed_start=args.train_seed_start,
                             lock_image=args.lock_image)
    _require_init_to_lock(config, args.init)  # before the run's folder is made
    out = Path(args.out)
    if (out / "summary.json").exists() and not args.overwrite:
        raise FileExistsError(f"{out} holds a finished run; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    given = argv if argv is not None else sys.argv[1:]
    command = "python -m samteach.text.train " + shlex.join(given)
    if "OMP_NUM_THREADS" in os.environ:
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    start = time.perf_counter()
    init = None
    if args.init is not None:
        init = ({"init": args.init, "sha256": file_sha256(args.init)}
                if Path(args.init).is_file() else {"init": args.init})
    model, losses = train_clip(config, progress=not args.no_progress, init=args.init)
    wall = time.perf_counter() - start
    save_clip(model, out / "model.safetensors")
    summary = {"command": command, "config": asdict(config), "init": init,
               "wall_time_s": round(wall, 1),
               "threads": torch.get_num_threads(),
               "loss": [round(v, 4) for v in losses[:: max(1, len(losses) // 100)]],
               "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
               "temperature": round(float(model.log_scale.detach().exp()), 2),
               "retrieval": retrieval(load_clip(out / "model.safetensors"), args.eval_scenes)}
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    r = summary["retrieval"]
    print(f"{config.max_steps} steps in {wall:.0f} s -> {out}; held-out retrieval top-1 "
          f"{r['top1']:.3f} ({', '.join(f'{k} {r[k]:.3f}' for k in HELD_OUT_SETS)}; "
          f"{r['crops']} crops, {r['vocabulary']} captions)")
    if args.ship:
        summary = ship_clip(out, args.ship)
    return summary


def ship_clip(out_dir: str | Path, name: str) -> dict:
    """Copy a finished CLIP run into samteach/weights/clip/NAME.safetensors + NAME.json, with
    the retrieval on the first CHECK_SCENES held-out scenes, which the tests reproduce."""
    from ..course.release import CHECK_SCENES, publish

    out = Path(out_dir)
    summary = json.loads((out / "summary.json").read_text())
    init = summary.get("init") or {}
    if init.get("init"):  # a warm restart: how its start was made (its run's or shipped JSON)
        start = Path(init["init"])
        for earlier in (start.parent / "summary.json", start.with_suffix(".json")):
            if earlier.is_file():
                made = json.loads(earlier.read_text())
                init["command"] = made.get("command")
                if made.get("init"):
                    init["init_of_init"] = made["init"]
                break
    model = load_clip(out / "model.safetensors")
    summary["retrieval_check"] = retrieval(model, CHECK_SCENES)
    publish(out / "model.safetensors", CLIP_DIR, name, summary)
    print(f"shipped {name}: held-out retrieval top-1 {summary['retrieval']['top1']:.3f}")
    return summary


def reevaluate_clip(name: str, reason: str) -> dict:
    """A shipped CLIP's retrieval remade on today's held-out scenes (after a change to the scene
    generators), on as many scenes as before; the weights stay, ``reevaluated`` says why."""
    from ..course.release import CHECK_SCENES, reevaluation_reason

    reason = reevaluation_reason(reason)
    path = CLIP_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no shipped CLIP named {name!r}; shipped: "
                         f"{sorted(p.stem for p in CLIP_DIR.glob('*.json'))}")
    summary = json.loads(path.read_text())
    clip = load_clip(name)
    summary["retrieval"] = retrieval(clip, summary["retrieval"]["scenes_per_set"])
    summary["retrieval_check"] = retrieval(clip, CHECK_SCENES)
    summary["reevaluated"] = [*summary.get("reevaluated", []), reason]
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    run(main)
