"""Score a SAM on held-out synthetic scenes with RITM's clicker: mIoU@k, NoC@85/90, NoF.

    python -m samteach.evaluate --pretrained tiny                   # lab and generic scenes
    python -m samteach.evaluate --checkpoint runs/tiny/model.safetensors --set generic
    python -m samteach.evaluate --pretrained tiny --scenes 20 --plot curve.png

The held-out sets are those of :mod:`samteach.evaluation.heldout`. Besides the overall table the
command prints the same scores by instance size (small < 1% of the image < medium < 10% <
large).
"""

from pathlib import Path

import numpy as np

from ..utils.cli import ArgumentParser, run
from .heldout import HELD_OUT_SEED, HELD_OUT_SETS, evaluate_model
from .metrics import EvaluationResult

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict[str, EvaluationResult]:
    """The command line: print the tables of a checkpoint or a shipped model."""
    from ..build import build_sam

    parser = ArgumentParser("python -m samteach.evaluate", __doc__,
                            aliases={"n_scenes": "--scenes"})
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
    if args.plot and not Path(args.plot).resolve().parent.is_dir():  # before, not after, the work
        raise FileNotFoundError(f"--plot: the folder of {args.plot} does not exist")
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

    from ..utils.files import atomic_write
    from ..viz import plot_miou_curve

    curves = {f"{kind} scenes": np.mean(r.ious, axis=0) for kind, r in results.items()}
    ax = plot_miou_curve(curves)
    ax.set_title("held-out mIoU after k clicks (RITM clicker)")
    atomic_write(path, lambda tmp: ax.figure.savefig(tmp, dpi=120, format="png"))
    plt.close(ax.figure)
    print(f"saved {path}")


if __name__ == "__main__":
    run(main)
