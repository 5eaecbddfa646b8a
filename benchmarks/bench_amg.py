"""Automatic mask generation: time against points_per_side, samteach vs Meta's, one run.

    python benchmarks/bench_amg.py             # ~1 minute on a 2-core CPU
    python benchmarks/bench_amg.py --repeats 5

The tiny model (128 px) on lab scenes, the "cpu_lab" thresholds, grids of 8, 16 and 32 points
per side (64, 256, 1024 prompts), no crops and one crop layer. Meta's generator runs on the same
weights in the same process; it needs torchvision's ``batched_nms``, and where torchvision
cannot be imported (the CPU torch of this project) tests/official.py stands in a plain greedy
NMS, so its NMS time is not torchvision's (NMS is a small share of the time here).
Times are medians over scenes and repeats, after a warm-up.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # samteach and tests/official.py from this checkout

from samteach import build_sam, get_config  # noqa: E402
from samteach.amg import AMG_PRESETS, SamAutomaticMaskGenerator  # noqa: E402
from samteach.data.scenes import make_scene  # noqa: E402

LAB = AMG_PRESETS["cpu_lab"]


def median_time(make, images, repeats: int) -> tuple[float, float]:
    """(median seconds per image, mean masks per image)."""
    generator = make()
    generator.generate(images[0])  # warm-up
    times, counts = [], []
    for _ in range(repeats):
        for image in images:
            start = time.perf_counter()
            records = generator.generate(image)
            times.append(time.perf_counter() - start)
            counts.append(len(records))
    return statistics.median(times), statistics.mean(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=3)
    args = parser.parse_args()
    sam = build_sam("tiny", pretrained=True).eval()
    images = [make_scene(1000 + i).image for i in range(args.scenes)]
    official_cls = theirs = None
    try:
        from tests import official

        theirs = official.build_official(get_config("tiny")).eval()
        theirs.load_state_dict(sam.state_dict())
        official_cls = official.load("automatic_mask_generator").SamAutomaticMaskGenerator
    except Exception as error:  # the reference is optional here: report and go on
        print(f"official segment_anything unavailable ({error}); samteach only")
    print(f"automatic masks, tiny model, 128x128 lab scenes, pred_iou {LAB.pred_iou_thresh}, "
          f"stability {LAB.stability_score_thresh}; {torch.get_num_threads()} CPU threads, "
          f"torch {torch.__version__}")
    print(f"{'points/side':>11} {'crops':>5} {'prompts':>8} {'samteach':>10} {'official':>10} "
          f"{'ratio':>6} {'ms/prompt':>9} {'masks':>6}")
    for crop_n_layers in (0, 1):
        for side in (8, 16, 32):
            options = {"points_per_side": side, "crop_n_layers": crop_n_layers,
                       "pred_iou_thresh": LAB.pred_iou_thresh,
                       "stability_score_thresh": LAB.stability_score_thresh}
            ours, masks = median_time(lambda o=options: SamAutomaticMaskGenerator(sam, **o),
                                      images, args.repeats)
            prompts = side**2 * (1 + 4 * crop_n_layers)
            line = f"{side:>11} {crop_n_layers:>5} {prompts:>8} {ours * 1000:>8.0f}ms "
            if official_cls is not None:
                base, _ = median_time(lambda o=options: official_cls(theirs, **o), images,
                                      args.repeats)
                line += f"{base * 1000:>8.0f}ms {base / ours:>5.2f}x "
            else:
                line += f"{'-':>10} {'-':>6} "
            line += f"{ours * 1000 / prompts:>9.2f} {masks:>6.1f}"
            print(line)
    print("ratio = official time / samteach time (> 1: samteach faster); ms/prompt shows how "
          "the cost grows with the number of points")


if __name__ == "__main__":
    main()
