"""Throughput of the data side: scene drawing, prompt samplers, the clicker, batching.

    python benchmarks/bench_data.py          # ~1 minute on a 2-core CPU

Everything runs on one core (numpy's drawing is single-threaded; torch is set to one thread).
The issue's target for scenes: >= 200 scenes/s at 128x128. Samplers run on batches of 64 masks
taken from scenes; their figures are masks/s.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samteach.data.generic import make_generic_scene
from samteach.data.hf import PromptSampler, collate_prompts, scenes_dataset
from samteach.data.scenes import make_scene
from samteach.evaluation.clicker import Clicker


def rate(work, items: int, repeats: int = 5) -> float:
    """Items per second: the median of ``repeats`` timed calls after one warm-up."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return items / statistics.median(times)


def masks_from_scenes(count: int, size: int) -> torch.Tensor:
    masks, seed = [], 0
    while len(masks) < count:
        masks.extend(make_scene(seed, size).masks)
        seed += 1
    return torch.from_numpy(np.stack(masks[:count]))


def bench_samplers(size: int) -> None:
    g = torch.Generator().manual_seed(0)
    masks = masks_from_scenes(64, size)
    pred = torch.roll(masks, shifts=(3, 2), dims=(1, 2))  # a prediction off by a few pixels
    samplers = {
        "sample_points (uniform)": lambda: samplers.sample_points(masks, g),
        "sample_points (center)": lambda: samplers.sample_points(masks, g, mode="center"),
        "sample_boxes": lambda: samplers.sample_boxes(masks, g),
        "sample_error_clicks": lambda: samplers.sample_error_clicks(pred, masks, g),
        "sample_first_prompts": lambda: samplers.sample_first_prompts(masks, g),
    }
    for name, work in samplers.items():
        print(f"{name} at {size}x{size}, masks/s:".ljust(44),
              f"{rate(work, len(masks), 5 if size == 128 else 1):9.0f}")


def main() -> None:
    torch.set_num_threads(1)
    print(f"samteach data benchmark, 1 thread, torch {torch.__version__}")
    for draw, kind in ((make_scene, "lab"), (make_generic_scene, "generic")):
        for size in (128, 512):
            n = 200 if size == 128 else 20
            work = lambda n=n, size=size, draw=draw: [draw(i, size) for i in range(n)]  # noqa: E731
            print(f"{kind} scenes/s at {size}x{size}:".ljust(44), f"{rate(work, n):9.0f}")

    for size in (128, 1024):
        bench_samplers(size)

    gt = make_scene(0, 128).masks[0]
    empty = np.zeros_like(gt)

    def twenty_clicks():
        clicker = Clicker(gt)
        for _ in range(20):
            clicker.make_next_click(empty)

    print("clicker at 128x128, clicks/s:".ljust(44), f"{rate(twenty_clicks, 20):9.0f}")

    ds = scenes_dataset(64, size=128, progress=False).with_transform(PromptSampler(k=4))
    print("dataset + PromptSampler + collate, images/s:".ljust(44),
          f"{rate(lambda: collate_prompts([ds[i] for i in range(64)]), 64):9.0f}")


if __name__ == "__main__":
    main()
