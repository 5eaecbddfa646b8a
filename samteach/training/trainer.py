"""Run a :class:`~samteach.training.TrainConfig`: optimiser, schedule, progress, evaluation,
resumable checkpoints -- on one CPU, one GPU, or many processes under ``torchrun``.

An output folder holds everything a run needs to be inspected or resumed::

    out/model.safetensors   the weights (with their SamConfig; build_sam(checkpoint=...) reads it)
    out/state.pt            optimiser, step, clocks, random generators (torch.load weights_only)
    out/log.jsonl           one line per evaluation (both held-out sets: the learning curve)
    out/summary.json        the command, settings, steps, wall time and final figures

Multi-process: launched by ``torchrun --nproc_per_node N``, each process trains on its own
scenes (a DistributedSampler splits them), DistributedDataParallel averages the gradients (gloo
on CPUs, nccl on GPUs), and rank 0 evaluates and writes the files.
"""

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist

from ..build import build_sam
from ..checkpoint import load_state_dict, save_checkpoint
from ..config import get_config, with_text_prompts
from ..data.generic import GenericSceneConfig
from ..data.scenes import SceneConfig
from ..utils.arguments import validate_int
from ..utils.files import atomic_write, file_sha256, write_text_atomic
from .config import TrainConfig, lr_at
from .scenes import SceneMasks
from .step import InteractiveSam

__all__ = ["Trainer", "config_from_state", "default_device"]

STATE, MODEL, LOG, SUMMARY = "state.pt", "model.safetensors", "log.jsonl", "summary.json"
# With overwrite, the run being replaced waits here until the new one finishes: an interrupted
# overwrite loses nothing, and the folder never mixes two runs' files.
REPLACED = ".replaced"


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def config_from_state(data: dict) -> TrainConfig:
    """A TrainConfig back from its dict in a state file (or a shipped JSON)."""
    nested = {"scene": SceneConfig(**data["scene"])}
    if "generic" in data:
        nested["generic"] = GenericSceneConfig(**data["generic"])
    return TrainConfig(**{**data, **nested})


class Trainer:
    """Train SAM interactively and keep the results in ``out_dir``.

    Args:
        config: the run's settings.
        out_dir: where the checkpoint, state, log and summary go.
        minutes: stop after this much training time (counted across resumes); the learning-rate
            schedule then follows the share of this time used, and max_steps is ignored.
        stop_at: end at this step although the schedule spans ``max_steps`` (a run cut short
            on purpose, e.g. to ship what a compute budget allowed; still exactly repeatable).
        start_at: begin at this step of the ``max_steps`` schedule with the ``init`` weights:
            the rest of a run of which only the weights are left (a run cut short by
            ``stop_at`` and shipped, its state gone). The scenes continue where that run's
            stopped; the optimiser is new, so the learning rate warms up again over
            ``warmup_steps`` before it rejoins the schedule.
        resume: continue the run saved in ``out_dir``.
        overwrite: start afresh even if ``out_dir`` holds a run. That run's files move to
            ``out_dir/.replaced/`` when training starts and are deleted when the new run
            finishes, so an interrupted overwrite leaves the old run intact there.
        eval_every: evaluate (RITM clicker, ``eval_scenes`` held-out scenes) every so many steps.
        device: defaults to CUDA when present.
        progress: show a tqdm bar.
        command: the command line, recorded in summary.json.
        init: start from these weights (a checkpoint file, or the name of shipped weights)
            instead of the seeded random ones: a warm restart, recorded in summary.json.
        dataset: a map-style dataset of (image (3, H, W) uint8, masks (K, H, W) bool) at the
            preset's input size, optionally with a third item, the (h, w) the image fills (the
            rest is padding); defaults to synthetic scenes (:class:`SceneMasks`).
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path, *, minutes: float | None = None,
                 resume: bool = False, overwrite: bool = False, eval_every: int = 1000,
                 eval_scenes: int = 10, device: torch.device | None = None,
                 progress: bool = True, command: str = "",
                 dataset: torch.utils.data.Dataset | None = None,
                 init: str | Path | None = None, stop_at: int | None = None,
                 start_at: int | None = None) -> None:
        if minutes is not None and not minutes > 0:
            raise ValueError(f"minutes must be a positive time budget; got {minutes}")
        if stop_at is not None and (minutes is not None or isinstance(stop_at, bool)
                                    or not isinstance(stop_at, int)
                                    or not 0 < stop_at <= config.max_steps):
            raise ValueError(f"stop_at must be a step of the schedule, an int in 1..max_steps "
                             f"({config.max_steps}), and needs a step budget, not minutes; "
                             f"got {stop_at!r}")
        self.stop_at = stop_at
        if start_at is not None and (init is None or minutes is not None
                                     or isinstance(start_at, bool) or not isinstance(start_at, int)
                                     or not 0 < start_at < (stop_at or config.max_steps)):
            raise ValueError(f"start_at must be a step of the schedule before its last, an int in "
                             f"1..{(stop_at or config.max_steps) - 1}, and needs the weights to "
                             f"start from (init) and a step budget, not minutes; got {start_at!r}")
        self.start_at = start_at
        if dataset is not None:
            _check_dataset(dataset, get_config(config.preset).image_encoder.img_size)
            if config.text_share > 0 and config.text_captions > 0:  # else silently unused
                raise ValueError("text_captions needs captions, which only the synthetic "
                                 "scenes carry: train on them (dataset=None) or set it to 0")
        self.dataset = dataset
        self.config, self.out = config, Path(out_dir)
        # Checked now, not at the first evaluation a whole training later.
        validate_int(eval_every, "eval_every", low=0,
                     what=", the steps between evaluations (0: none)")
        validate_int(eval_scenes, "eval_scenes", what=", the held-out scenes per evaluation")
        self.minutes, self.eval_every, self.eval_scenes = minutes, eval_every, eval_scenes
        self.progress, self.command = progress, command
        self._check_out_dir(resume, overwrite)
        self.overwrite = overwrite
        self.rank, self.world, self.device = _init_distributed(device or default_device())
        model_config, self.clip = get_config(config.preset), None
        if config.text_share > 0:  # SAM with a text token, taught by a frozen CLIP
            from ..text.clip import load_clip

            self.clip = load_clip(config.clip).to(self.device).requires_grad_(False)
            model_config = with_text_prompts(model_config, self.clip.config.embed_dim)
        with torch.random.fork_rng(devices=[]):  # the seed fixes the initial weights too
            torch.manual_seed(config.seed)
            self.sam = build_sam(model_config)
        self.init = None if init is None else _warm_start(self.sam, init)
        self.sam = self.sam.to(self.device).train()
        if config.freeze_encoder:
            self.sam.image_encoder.requires_grad_(False)
        self.model = InteractiveSam(self.sam, config, self.clip)
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(self.model)
        self.optimizer = torch.optim.AdamW([p for p in self.sam.parameters() if p.requires_grad],
                                           lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.generator = torch.Generator(self.device).manual_seed(config.seed * 1000 + self.rank)
        self.step, self.elapsed = start_at or 0, 0.0
        self._last_evaluation: dict | None = None
        if resume:
            self._load_state()

    def _check_out_dir(self, resume: bool, overwrite: bool) -> None:
        has_run = (self.out / STATE).exists() or (self.out / MODEL).exists()
        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other: choose one")
        if resume and not (self.out / STATE).exists():
            raise ValueError(f"resume: {self.out} holds no run to resume ({STATE} is missing)")
        if has_run and not (resume or overwrite):
            raise ValueError(f"out_dir {self.out} already holds a checkpoint: pass resume=True "
                             "(--resume) to continue it or overwrite=True (--overwrite)")
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out_dir {self.out} exists and is not a folder")

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict:
        """Train until ``max_steps`` or the time budget; returns the final summary."""
        from tqdm.auto import tqdm

        config = self.config
        size = get_config(config.preset).image_encoder.img_size
        per_step = config.images_per_step * self.world
        if self.dataset is None:
            # Resuming continues with the next unseen scenes: shift the scenes, not the sampler.
            data = SceneMasks(size, config.masks_per_image, config.train_seed_start
                              + self.step * per_step, scene=config.scene,
                              generic=config.generic, generic_share=config.generic_share,
                              nonsquare_share=config.nonsquare_share,
                              captions=config.text_share > 0 and config.text_captions > 0)
        else:
            skip = range(self.step * per_step % len(self.dataset), len(self.dataset))
            data = torch.utils.data.Subset(self.dataset, skip)
        sampler = torch.utils.data.DistributedSampler(
            data, num_replicas=self.world, rank=self.rank, shuffle=False)
        loader = torch.utils.data.DataLoader(data, batch_size=config.images_per_step,
                                             sampler=sampler)
        bar = tqdm(total=None if self.minutes else self._last_step(), initial=self.step,
                   desc="training", disable=not self.progress or self.rank != 0)
        start = time.perf_counter() - self.elapsed
        if self.overwrite and self.rank == 0:
            self._set_old_run_aside()
        try:
            self._loop(loader, bar, start)
        except KeyboardInterrupt:  # Ctrl-C: keep what was learnt, so --resume can continue
            if self.rank == 0:
                self.out.mkdir(parents=True, exist_ok=True)
                _save_state(self._state(), self.out / STATE)
                save_checkpoint(self.sam, self.out / MODEL)
            raise
        bar.close()
        return self._checkpoint(evaluate=True, final=True)

    def _loop(self, loader, bar, start: float) -> None:
        for images, masks, *more in loader:  # (B, 2) input sizes and B captions, if given
            if self._should_stop(start):
                break
            sizes = more[0].to(self.device) if more else None
            captions = [c for joined in more[1] for c in joined.split("\n")] if len(
                more) > 1 else None  # (P,) one per mask, image-major like the prompts
            stats = self._train_step(images.to(self.device), masks.to(self.device), sizes,
                                     captions)
            self.step += 1
            self.elapsed = time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", iou=f"{stats['iou']:.3f}")
            if self.eval_every and self.step % self.eval_every == 0:
                self._checkpoint(evaluate=True)

    def _progress(self) -> float | None:
        """The share of a time budget used (None for a run of max_steps steps)."""
        return None if self.minutes is None else self.elapsed / (self.minutes * 60)

    def _last_step(self) -> int:
        return self.config.max_steps if self.stop_at is None else self.stop_at

    def _should_stop(self, start: float) -> bool:
        if self.minutes is None:
            stop = self.step >= self._last_step()
        else:
            stop = time.perf_counter() - start >= self.minutes * 60
        if self.world > 1:  # every process must stop at the same step: rank 0 decides
            flag = torch.tensor([int(stop)], device=self.device)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        return stop

    def _train_step(self, images: torch.Tensor, masks: torch.Tensor,
                    input_sizes: torch.Tensor | None, captions: list[str] | None = None) -> dict:
        lr = lr_at(self.step, self.config, self._progress())
        if self.start_at is not None:  # a new optimiser's first steps: warm it up again
            lr *= min(1.0, (self.step - self.start_at + 1) / max(1, self.config.warmup_steps))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            out = self.model(images, masks, self.generator, input_sizes, captions)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.sam.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return {"loss": float(out["loss"].detach()), "iou": out["round_iou"][-1]}

    # ------------------------------------------------------------------ files
    def _checkpoint(self, evaluate: bool, final: bool = False) -> dict:
        summary = {}
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            save_checkpoint(self.sam, self.out / MODEL)
            _save_state(self._state(), self.out / STATE)
            if evaluate:  # a run whose last step was just evaluated is not evaluated twice
                last = self._last_evaluation
                summary = last if last and last["step"] == self.step else self._evaluate()
            if final:
                summary = self._write_summary(summary)
                shutil.rmtree(self.out / REPLACED, ignore_errors=True)  # replaced for good
        if self.world > 1:
            dist.barrier()
        return summary

    def _set_old_run_aside(self) -> None:
        """Move the files of the run being overwritten to ``.replaced/`` (an earlier overwrite
        that never finished already put the last finished run there: keep that one)."""
        aside = self.out / REPLACED
        keep = not aside.exists()
        aside.mkdir(parents=True, exist_ok=True)
        for name in (STATE, MODEL, LOG, SUMMARY):  # the state first: no half run to resume
            if (self.out / name).exists():
                if keep:
                    os.replace(self.out / name, aside / name)
                else:
                    (self.out / name).unlink()

    def _state(self) -> dict:
        return {
            "config": asdict(self.config),
            "model": self.sam.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "generator": self.generator.get_state(),
        }

    def _load_state(self) -> None:
        try:
            state = torch.load(self.out / STATE, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, ValueError) as err:  # truncated, not a torch file
            raise ValueError(f"resume: {self.out / STATE} cannot be read ({err}); it is damaged "
                             "or was not written by samteach: start over with overwrite=True "
                             "(--overwrite)") from None
        saved = config_from_state(state["config"])
        if saved != self.config:
            raise ValueError(f"resume: {self.out} was trained with a different configuration; "
                             f"saved {saved}, asked {self.config}")
        load_state_dict(self.sam, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        if self.rank == 0:  # other ranks' generators differ by seed; rank 0 carries on exactly
            self.generator.set_state(state["generator"])

    def _evaluate(self) -> dict:
        from ..evaluation.heldout import HELD_OUT_SETS, evaluate_model

        was_training = self.sam.training
        entry = {"step": self.step, "elapsed_s": round(self.elapsed, 1)}
        for kind in HELD_OUT_SETS:  # both held-out sets: {"lab": {...}, "generic": {...}}
            entry[kind] = evaluate_model(self.sam, n_scenes=self.eval_scenes, progress=False,
                                         kind=kind).figures()
        self.sam.train(was_training)
        with open(self.out / LOG, "a") as log:
            log.write(json.dumps(entry) + "\n")
        self._last_evaluation = entry
        return entry

    def _write_summary(self, figures: dict) -> dict:
        summary = {
            "command": self.command,
            "preset": self.config.preset,
            "seed": self.config.seed,
            "steps": self.step,
            "schedule_steps": None if self.minutes else self.config.max_steps,
            "wall_time_s": round(self.elapsed, 1),
            "processes": self.world,
            "threads": torch.get_num_threads(),  # per process; a time budget depends on it
            "device": self.device.type,
            "config": asdict(self.config),
            "init": self.init,
            "start_at": self.start_at,
            "evaluation": figures,
        }
        write_text_atomic(self.out / SUMMARY, json.dumps(summary, indent=2) + "\n")
        return summary


def _save_state(state: dict, path: Path) -> None:
    def write(tmp: str) -> None:
        try:
            torch.save(state, tmp)
        except RuntimeError as err:  # torch's I/O failure (a full disk): an OSError to callers
            raise OSError(f"could not write {path}: {err}") from None

    atomic_write(path, write)


# Parts a warm start may add to the model it continues: SAM 2's high-res path, whose
# projections start at zero, so the continued model begins exactly where the old one was.
# The text prompt's projection and type embedding are new too (the decoder first meets them as
# it is fine-tuned).
_NEW_PARTS = ("image_encoder.high_res_stem.", "mask_decoder.conv_s0.", "mask_decoder.conv_s1.",
              "prompt_encoder.text_")


def _warm_start(sam, init: str | Path) -> dict:
    """Load the weights ``init`` names (a checkpoint path or shipped weights) into ``sam``.

    Every weight of the checkpoint must fit; the model may have the high-res path on top
    (its zero-initialised projections keep the old model's outputs until it learns). Returns
    what summary.json records: the name given and the file's SHA-256, which pins the weights
    even after shipped weights of that name are replaced.
    """
    from ..checkpoint import CheckpointMismatchError, read_checkpoint, shipped_weights

    path = Path(init)
    if not path.exists():
        if str(init) not in shipped_weights():
            raise ValueError(f"init must be a checkpoint file or shipped weights "
                             f"{shipped_weights()}; got {str(init)!r}")
        path = shipped_weights(str(init))
    state_dict, _ = read_checkpoint(path)
    expected = sam.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.startswith(_NEW_PARTS)]
    wrong = [k for k, v in state_dict.items() if k not in expected
             or v.shape != expected[k].shape]
    if missing or wrong:
        raise CheckpointMismatchError(
            f"init {path} does not fit the model being trained: missing {missing[:5]}, "
            f"unexpected or mis-shaped {wrong[:5]} ({len(missing)} and {len(wrong)} in all)")
    sam.load_state_dict(state_dict, strict=False)
    return {"init": str(init), "sha256": file_sha256(path)}


def _init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device): torchrun sets WORLD_SIZE/RANK; a plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def _check_dataset(dataset, size: int) -> None:
    """Fail before training, not mid-run: the first item must be a usable (image, masks)."""
    if len(dataset) == 0:
        raise ValueError("dataset is empty: it must hold (image, masks) items")
    item = dataset[0]
    if not (isinstance(item, (tuple, list)) and len(item) in (2, 3)):
        raise ValueError("dataset items must be (image, masks) pairs, or (image, masks, "
                         "input_size) triples")
    image, masks = item[:2]
    if len(item) == 3:
        input_size = torch.as_tensor(item[2])
        if input_size.shape != (2,) or not (0 < input_size).all() or (input_size > size).any():
            raise ValueError(f"dataset input sizes must be (h, w) with 0 < h, w <= {size}; got "
                             f"{item[2]!r}")
    if tuple(image.shape) != (3, size, size) or image.dtype != torch.uint8:
        raise ValueError(f"dataset images must be (3, {size}, {size}) uint8 tensors; got "
                         f"{tuple(image.shape)} {image.dtype}")
    if masks.dim() != 3 or masks.dtype != torch.bool or tuple(masks.shape[1:]) != (size, size):
        raise ValueError(f"dataset masks must be (K, {size}, {size}) bool tensors; got "
                         f"{tuple(masks.shape)} {masks.dtype}")
    if len(masks) == 0 or not masks.flatten(1).any(1).all():
        raise ValueError("dataset has no masks to train on: item 0 holds "
                         f"{len(masks)} masks, and every mask needs at least one pixel")
