"""Score a SAM on held-out synthetic scenes with RITM's clicker: mIoU@k, NoC@85/90, NoF.

    python -m samteach.evaluate --checkpoint samteach/weights/tiny.safetensors
    python -m samteach.evaluate --pretrained tiny --scenes 20

Held-out scenes are seeds ``HELD_OUT_SEED`` onwards, a range no training run draws from
(training starts at seed 0 and would need a billion steps to get there). Every instance of
every scene is one sample; the first click of each is SAM's multimask output, keeping the
mask with the highest predicted IoU (SAM paper §7.1), later clicks refine with the previous
low-res logits.
"""

import argparse

import torch

from .data.scenes import make_scene
from .metrics import STANDARD_CLICKS, EvaluationResult, evaluate, predictor_callable
from .modeling import Sam
from .predictor import SamPredictor

__all__ = ["HELD_OUT_SEED", "evaluate_model", "main"]

HELD_OUT_SEED = 1_000_000_000


def evaluate_model(
    model: Sam, n_scenes: int = 100, first_seed: int = HELD_OUT_SEED, max_clicks: int = 20,
    progress: bool = True,
) -> EvaluationResult:
    """Play RITM's clicker on every instance of ``n_scenes`` held-out scenes.

    Scenes are drawn at the model's input size, so no resizing blurs the comparison.
    """
    if isinstance(n_scenes, bool) or not isinstance(n_scenes, int) or n_scenes < 1:
        raise ValueError(f"n_scenes must be a positive number of scenes; got {n_scenes!r}")
    size = model.image_encoder.img_size
    predictor = SamPredictor(model.eval())

    def samples():
        for seed in range(first_seed, first_seed + n_scenes):
            scene = make_scene(seed, size)
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


def main(argv: list[str] | None = None) -> EvaluationResult:
    """The command line: print the summary table of a checkpoint or a shipped model."""
    from .build import build_sam

    parser = argparse.ArgumentParser(prog="python -m samteach.evaluate", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a samteach .safetensors (or official .pth) file")
    source.add_argument("--pretrained", help="the name of shipped weights, e.g. tiny")
    parser.add_argument("--preset", default=None,
                        help="for checkpoints without a stored config (official .pth)")
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default 100)")
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=HELD_OUT_SEED)
    args = parser.parse_args(argv)
    if args.pretrained:
        model = build_sam(args.preset, pretrained=args.pretrained)
    else:
        model = build_sam(args.preset, checkpoint=args.checkpoint)
    result = evaluate_model(model, args.scenes, args.first_seed, args.max_clicks)
    print(result.summary())
    return result


if __name__ == "__main__":
    main()
