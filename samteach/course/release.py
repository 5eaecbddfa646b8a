"""Shipping trained weights with the package: ``samteach/weights/NAME.safetensors`` with the
run's JSON (command, config, learning curve, held-out figures) and a README made from the JSONs.

    python -m samteach.train ... --out runs/tiny --ship tiny   # trains, then calls ship()
"""

import json
import shutil
from pathlib import Path

import torch

from ..build import build_sam
from ..checkpoint import WEIGHTS_DIR
from ..evaluation.heldout import HELD_OUT_SEED, HELD_OUT_SETS, evaluate_model
from ..training.trainer import LOG, MODEL, SUMMARY
from ..utils.files import atomic_write, file_sha256, write_text_atomic

__all__ = ["CHECK_SCENES", "held_out_figures", "join_earlier_runs", "publish", "reevaluate",
           "reevaluation_reason", "ship", "shipped_clip", "weights_readme"]

CHECK_SCENES = 5  # the shipped JSON's "evaluation_check": a subset the tests re-evaluate


def ship(out_dir: str, name: str, n_scenes: int) -> dict:
    """Copy a finished run into samteach/weights/ as NAME.safetensors + NAME.json.

    The JSON holds the run's summary, its learning curve (the log of held-out evaluations), a
    fresh evaluation on ``n_scenes`` scenes of each held-out set (with the scores by instance
    size), and the same on the first ``CHECK_SCENES`` of them, which the tests reproduce.
    """
    out = Path(out_dir)
    summary = json.loads((out / SUMMARY).read_text())
    if (out / LOG).exists():
        summary["learning_curve"] = [json.loads(line) for line in (out / LOG).open()]
    if summary.get("start_at"):
        join_earlier_runs(summary, name)
    model = build_sam(None, checkpoint=out / MODEL)
    if model.prompt_encoder.has_text_prompts:
        summary["clip"] = shipped_clip(summary["config"]["clip"])
    held_out_figures(model, summary, n_scenes)
    publish(out / MODEL, WEIGHTS_DIR, name, summary)
    write_text_atomic(WEIGHTS_DIR / "README.md", weights_readme(WEIGHTS_DIR))
    for kind in HELD_OUT_SETS:
        figures = {k: v for k, v in summary["evaluation"][kind].items() if k != "by_size"}
        print(f"shipped {name}, {kind} scenes: " + ", ".join(f"{k} {v}" for k, v in
                                                              figures.items()))
    return summary


def join_earlier_runs(summary: dict, name: str) -> None:
    """A run started with ``--start-at`` from the weights shipped as NAME is the rest of the run
    that made them: keep that run's record (command, steps, time, threads, warm start) in
    ``earlier_runs``, its learning curve before this run's, and the time of both in
    ``wall_time_s`` (this run's alone in ``run_wall_time_s``)."""
    shipped = WEIGHTS_DIR / f"{name}.safetensors"
    if not shipped.is_file() or file_sha256(shipped) != summary["init"]["sha256"]:
        raise ValueError(f"a run started with --start-at is the rest of the run of shipped "
                         f"weights: ship it under the name of the weights its --init holds "
                         f"({name!r} is not them)")
    earlier = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    summary["earlier_runs"] = earlier.get("earlier_runs", []) + [
        {key: earlier.get(key) for key in ("command", "steps", "wall_time_s", "threads", "init")}]
    summary["run_wall_time_s"] = summary["wall_time_s"]
    before = sum(run["wall_time_s"] for run in summary["earlier_runs"])
    summary["wall_time_s"] = round(before + summary["run_wall_time_s"], 1)
    summary["learning_curve"] = earlier.get("learning_curve", []) + [
        {**entry, "elapsed_s": round(before + entry["elapsed_s"], 1)}
        for entry in summary.get("learning_curve", [])]


def held_out_figures(model, summary: dict, n_scenes: int) -> None:
    """Fill ``summary`` with the model's held-out figures: "evaluation" on ``n_scenes`` scenes
    of each set (with the scores by instance size) and "evaluation_check" on the first
    ``CHECK_SCENES``, which the tests reproduce; for a text model (``summary["clip"]`` names
    its shipped CLIP) "text_evaluation" and "text_evaluation_check" too."""
    summary["evaluation"] = {"first_seed": HELD_OUT_SEED, "scenes": n_scenes}
    summary["evaluation_check"] = {"first_seed": HELD_OUT_SEED, "scenes": CHECK_SCENES}
    for kind in HELD_OUT_SETS:
        result = evaluate_model(model, n_scenes, kind=kind)
        summary["evaluation"][kind] = {
            **result.figures(),
            "by_size": {size: part.figures() for size, part in result.by_size().items()}}
        summary["evaluation_check"][kind] = evaluate_model(
            model, CHECK_SCENES, progress=False, kind=kind).figures()
    if model.prompt_encoder.has_text_prompts:
        from ..text.clip import load_clip
        from ..text.evaluate import evaluate_text

        clip = load_clip(summary["clip"]["name"])
        summary["text_evaluation"] = evaluate_text(model, clip, n_scenes)
        summary["text_evaluation_check"] = evaluate_text(model, clip, CHECK_SCENES,
                                                         progress=False)


def reevaluate(name: str, reason: str) -> dict:
    """Score shipped weights again on today's held-out scenes, after a change to the scene
    generators: the weights and their training record stay, the figures are remade (on as
    many scenes as before) and ``reevaluated`` says why. (A shipped CLIP:
    :func:`samteach.text.train.reevaluate_clip`.)"""
    reason = reevaluation_reason(reason)
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.is_file():
        from ..text.clip import CLIP_DIR

        shipped = sorted(p.stem for p in [*WEIGHTS_DIR.glob("*.json"), *CLIP_DIR.glob("*.json")])
        raise ValueError(f"no shipped weights named {name!r}; shipped: {shipped}")
    summary = json.loads(path.read_text())
    model = build_sam(None, checkpoint=WEIGHTS_DIR / f"{name}.safetensors")
    held_out_figures(model, summary, summary["evaluation"]["scenes"])
    summary["reevaluated"] = [*summary.get("reevaluated", []), reason]
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    write_text_atomic(WEIGHTS_DIR / "README.md", weights_readme(WEIGHTS_DIR))
    return summary


def reevaluation_reason(reason: str) -> str:
    """The reason a re-evaluation records, checked: it must say what changed."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must say what changed, e.g. 'powders drawn pale'")
    return reason.strip()


def publish(weights: Path, folder: Path, name: str, summary: dict) -> None:
    """Put ``weights`` in ``folder`` as NAME.safetensors beside NAME.json, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{name}.safetensors", lambda tmp: shutil.copyfile(weights, tmp))
    write_text_atomic(folder / f"{name}.json", json.dumps(summary, indent=2) + "\n")


def shipped_clip(clip: str) -> dict:
    """The shipped CLIP a text model was trained with: ``clip`` is its name, or a file whose
    bytes equal a shipped one's (a run made before its CLIP was shipped), or a file whose image
    side equals a shipped one's (``same_image_side``: the shipped CLIP is a locked-image
    tuning of it; a text model trains only on image embeddings, which are the same)."""
    from ..text.clip import CLIP_DIR, load_clip

    shipped = {p.stem: file_sha256(p)
               for p in sorted(CLIP_DIR.glob("*.safetensors"))}
    if clip in shipped:
        return {"name": clip, "sha256": shipped[clip]}
    path = Path(clip)
    if path.is_file():
        digest = file_sha256(path)
        for stem, known in shipped.items():
            if known == digest:
                return {"name": stem, "sha256": digest, "trained_with": clip}
        image_side = _image_side(load_clip(path))
        for stem, known in shipped.items():
            theirs = _image_side(load_clip(stem))
            if theirs.keys() == image_side.keys() and all(
                    torch.equal(theirs[k], image_side[k]) for k in theirs):
                return {"name": stem, "sha256": known, "trained_with": clip,
                        "same_image_side": True}
    raise ValueError(f"the run's CLIP {clip!r} is not shipped (samteach/weights/clip/ holds "
                     f"{sorted(shipped)}): ship the CLIP first (python -m samteach.text.train "
                     "... --ship NAME)")


def _image_side(clip) -> dict:
    """The weights that make a TinyClip's image embeddings (its image tower and projection)."""
    return {k: v for k, v in clip.state_dict().items() if k.split(".")[0] in clip.IMAGE_SIDE}


def weights_readme(folder) -> str:
    """The README beside the shipped weights, made from their JSON files (so it cannot drift)."""
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
    texts = {name: info["text_evaluation"] for name, info in infos.items()
             if "text_evaluation" in info}
    if texts:
        figures = ["text", "hit", "text+1", "peak", "peak_hit", "peak+1", "pick", "pick_hit",
                   "pick+1", "image", "image+1", "point@1", "point_hit", "point@2",
                   "point@1+text", "point_text_hit"]
        lines += ["", "Text prompts (`samteach.text.evaluate`: every caption naming one large "
                  "object of the held-out scenes; `peak` = the text with the model's own click "
                  "where the words point, `text_click=True`; `pick` = the text with its own "
                  "click where CLIP points among SAM's proposals, `samteach.text.choose`; "
                  "`image` = the CLIP image embedding "
                  "of its crop; `point@k` = k RITM clicks on the same objects, `point@1+text` the "
                  "first of them with the text; `*hit` = the "
                  "share of first answers with IoU > 0.5):", "",
                  "| weights | scenes | " + " | ".join(figures) + " | samples |",
                  "|---" * (len(figures) + 3) + "|"]
        for name, evaluation in texts.items():
            for kind, e in evaluation.items():
                lines.append(f"| `{name}` | {kind} | "
                             + " | ".join(f"{e[k]:.3f}" for k in figures)
                             + f" | {e['samples']} |")
    for name, info in infos.items():
        config = info["config"]
        init = info.get("init") or {}
        warm = (f" Warm restart from `{init['init']}` (SHA-256 {init['sha256'][:12]}...)"
                + (f", the file `{init['source']}`" if init.get("source") else "") + "."
                if init else "")
        earlier = info.get("earlier_runs", [])
        if earlier:  # --start-at: the rest of a run, from the weights it was stopped with
            warm += (f" It continues the run of `{name}` stopped at step {info['start_at']} "
                     f"(`{earlier[-1]['command']}`), from its weights with a new optimiser; the "
                     f"time counts both runs.")
        schedule = info.get("schedule_steps")
        cut = (f" (stopped at step {info['steps']} of the {schedule}-step schedule)"
               if schedule and info["steps"] < schedule else "")
        lines += ["", f"## {name}", "", "```console", info["command"], "```", "",
                  f"preset {info['preset']}, seed {info['seed']}, {info['steps']} steps{cut} in "
                  f"{info['wall_time_s'] / 60:.1f} min on {info['processes']} {info['device']} "
                  f"process(es) of {info.get('threads', '?')} thread(s); {config['rounds']} "
                  f"round(s) + {config.get('no_click_rounds', 0)} no-click round(s) per step, "
                  f"gradients on {config.get('grad_rounds', 'all')} rounds; "
                  f"{config.get('generic_share', 0.0):.0%} generic scenes.{warm}"]
    return "\n".join(lines) + "\n"
