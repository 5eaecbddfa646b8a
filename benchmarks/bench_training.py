"""Speed of SAM's interactive training step on this machine, and how it grows with image size.

    python benchmarks/bench_training.py          # ~2 minutes on a 2-core CPU

One step = encode B=8 images, decode K=4 prompts each over 3 rounds (a first prompt, two
corrective clicks, the fed-back mask), backward through every round, AdamW -- the shipped
``tiny`` recipe. Two ways to grow the image: keep the patch (8 px), so the token grid grows with
the image (8x8 -> 16x16 -> 32x32), or keep the 16x16 grid and grow the patch (4 -> 8 -> 16 px).
Meta released no training code, so the ratios are against the 128 px tiny preset.
"""

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samteach import build_sam, get_config
from samteach.config import SamConfig
from samteach.training import SceneMasks, TrainConfig, interactive_step

RECIPE = TrainConfig(images_per_step=8, masks_per_image=4, rounds=3)


def with_patch(config: SamConfig, size: int, patch: int) -> SamConfig:
    """tiny at ``size`` px with ``patch`` px patches (the window stays 8 tokens)."""
    resized = config.at_image_size(size)
    encoder = replace(resized.image_encoder, patch_size=patch)
    grid = (encoder.embedding_size, encoder.embedding_size)
    prompt = replace(resized.prompt_encoder, image_embedding_size=grid)
    return replace(resized, image_encoder=encoder, prompt_encoder=prompt)


def seconds_per_step(config: SamConfig, steps: int = 8) -> float:
    torch.manual_seed(0)
    sam = build_sam(config).train()
    optimizer = torch.optim.AdamW(sam.parameters(), lr=1e-3)
    data = SceneMasks(config.image_encoder.img_size, RECIPE.masks_per_image)
    images, masks = map(torch.stack, zip(*(data[i] for i in range(RECIPE.images_per_step)),
                                         strict=True))
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        out = interactive_step(sam, images, masks, RECIPE, generator)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    tiny = get_config("tiny")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU; one step = "
          f"{RECIPE.images_per_step} images x {RECIPE.masks_per_image} prompts x "
          f"{RECIPE.rounds} rounds, fwd + bwd + AdamW\n")
    base = seconds_per_step(tiny)
    print(f"tiny (128 px, patch 8): {base:.3f} s/step = {1 / base:.2f} steps/s = "
          f"{RECIPE.images_per_step / base:.1f} images/s = "
          f"{RECIPE.images_per_step * RECIPE.masks_per_image / base:.0f} masks/s\n")
    print(f"{'image':>6} {'patch':>6} {'grid':>6} {'s/step':>8} {'images/s':>9} {'vs tiny':>8}")
    for size, patch in [(64, 8), (128, 8), (256, 8), (64, 4), (256, 16)]:
        config = with_patch(tiny, size, patch)
        t = base if (size, patch) == (128, 8) else seconds_per_step(config)
        grid = config.image_encoder.embedding_size
        print(f"{size:>6} {patch:>6} {f'{grid}x{grid}':>6} {t:>8.3f} "
              f"{RECIPE.images_per_step / t:>9.1f} {t / base:>7.2f}x")


if __name__ == "__main__":
    main()
