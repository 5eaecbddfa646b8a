"""Score a SAM on held-out synthetic scenes with RITM's clicker: mIoU@k, NoC@85/90, NoF.

    python -m samteach.evaluate --pretrained tiny                   # lab and generic scenes
    python -m samteach.evaluate --checkpoint runs/tiny/model.safetensors --set generic
    python -m samteach.evaluate --pretrained tiny --scenes 20 --plot curve.png

Two held-out sets (:data:`HELD_OUT_SETS`), seeds ``HELD_OUT_SEED`` onwards, a range no training
run draws from (training starts at seed 0 and would need a billion steps to get there):

* ``lab`` -- the lab scenes the course is about, square, at the model's input size;
* ``generic`` -- scenes of "anything" (:mod:`samteach.data.generic`); every other one is not
  square (long side at the input size, short side 50-100% of it), so the predictor pads it.

Every instance of every scene is one sample; the first click of each is SAM's multimask output,
keeping the mask with the highest predicted IoU (SAM paper §7.1), later clicks refine with the
previous low-res logits. Besides the overall table the command prints the same scores by
instance size (small < 1% of the image < medium < 10% < large).
"""

import argparse
from collections.abc import Iterator

import numpy as np
import torch

from .data.generic import make_generic_scene
from .data.record import SegmentationRecord
from .data.scenes import make_scene
from .metrics import STANDARD_CLICKS, EvaluationResult, evaluate, predictor_callable
from .modeling import Sam
from .predictor import SamPredictor
from .utils.arguments import validate_int

__all__ = ["HELD_OUT_SEED", "HELD_OUT_SETS", "evaluate_model", "held_out_scenes", "main"]

HELD_OUT_SEED = 1_000_000_000
HELD_OUT_SETS = ("lab", "generic")


def held_out_scenes(kind: str, n_scenes: int, size: int,
                    first_seed: int = HELD_OUT_SEED) -> Iterator[SegmentationRecord]:
    """The held-out scenes of set ``kind`` ("lab" or "generic") for a model of input ``size``."""
    if kind not in HELD_OUT_SETS:
        raise ValueError(f"kind must be one of {HELD_OUT_SETS}; got {kind!r}")
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
    if kind not in HELD_OUT_SETS:
        raise ValueError(f"kind must be one of {HELD_OUT_SETS}; got {kind!r}")
    predictor = SamPredictor(model.eval())

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


def main(argv: list[str] | None = None) -> dict[str, EvaluationResult]:
    """The command line: print the tables of a checkpoint or a shipped model."""
    from .build import build_sam

    parser = argparse.ArgumentParser(prog="python -m samteach.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a samteach .safetensors (or official .pth) file")
    source.add_argument("--pretrained", help="the name of shipped weights, e.g. tiny")
    parser.add_argument("--preset", default=None,
                        help="for checkpoints without a stored config (official .pth)")
    parser.add_argument("--set", choices=(*HELD_OUT_SETS, "both"), default="both",
                        help="which held-out scenes (default both)")
    parser.add_argument("--scenes", type=int, default=100,
                        help="held-out scenes per set (default 100)")
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also save the mIoU-vs-clicks curves (one line per set)")
    args = parser.parse_args(argv)
    if args.pretrained:
        model = build_sam(args.preset, pretrained=args.pretrained)
    else:
        model = build_sam(args.preset, checkpoint=args.checkpoint)
    kinds = HELD_OUT_SETS if args.set == "both" else (args.set,)
    results = {}
    for kind in kinds:
        result = evaluate_model(model, args.scenes, args.first_seed, args.max_clicks, kind=kind)
        print(f"== {kind} scenes ==\n{result.summary()}\n\nby instance size:\n"
              f"{result.size_table()}\n")
        results[kind] = result
    if args.plot:
        _save_curves(results, args.plot)
    return results


def _save_curves(results: dict[str, EvaluationResult], path: str) -> None:
    """mIoU after 1..max_clicks clicks, one line per held-out set, saved as an image."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window: the command may run without a screen
    import matplotlib.pyplot as plt

    from .utils.files import atomic_write
    from .viz import plot_miou_curve

    curves = {f"{kind} scenes": np.mean(r.ious, axis=0) for kind, r in results.items()}
    ax = plot_miou_curve(curves)
    ax.set_title("held-out mIoU after k clicks (RITM clicker)")
    atomic_write(path, lambda tmp: ax.figure.savefig(tmp, dpi=120, format="png"))
    plt.close(ax.figure)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
