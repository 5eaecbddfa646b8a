"""Speed of SAM's interactive training step on this machine, and how it grows with image size.

    python benchmarks/bench_training.py          # a few minutes on a 2-core CPU

One step is the shipped ``tiny`` recipe, read from ``samteach/weights/tiny.json``: encode B
images, play the interactive rounds on K prompts each (first prompt, corrective clicks, no-click
rounds, the fed-back mask), backward through the rounds that carry gradients, AdamW. The same
step is timed for the single-round recipe of ``tiny_single_round`` and for other image sizes:
keep the patch (8 px), so the token grid grows with the image (8x8 -> 16x16 -> 32x32), or keep
the 16x16 grid and grow the patch (4 -> 8 -> 16 px). Meta released no training code, so the
ratios are against the shipped tiny preset.
"""

import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samteach import build_sam, get_config
from samteach.checkpoint import WEIGHTS_DIR
from samteach.config import SamConfig
from samteach.training import SceneMasks, TrainConfig, interactive_step
from samteach.training.trainer import config_from_state


def shipped_recipe(name: str) -> TrainConfig:
    return config_from_state(json.loads((WEIGHTS_DIR / f"{name}.json").read_text())["config"])


def with_patch(config: SamConfig, size: int, patch: int) -> SamConfig:
    """tiny at ``size`` px with ``patch`` px patches (the window stays 8 tokens)."""
    resized = config.at_image_size(size)
    encoder = replace(resized.image_encoder, patch_size=patch)
    grid = (encoder.embedding_size, encoder.embedding_size)
    prompt = replace(resized.prompt_encoder, image_embedding_size=grid)
    return replace(resized, image_encoder=encoder, prompt_encoder=prompt)


def seconds_per_step(config: SamConfig, recipe: TrainConfig, steps: int = 8) -> float:
    """Median time of one training step (data drawing included, as in a real run)."""
    torch.manual_seed(0)
    sam = build_sam(config).train()
    optimizer = torch.optim.AdamW(sam.parameters(), lr=1e-3)
    size = config.image_encoder.img_size
    data = SceneMasks(size, recipe.masks_per_image, scene=recipe.scene, generic=recipe.generic,
                      generic_share=recipe.generic_share, nonsquare_share=recipe.nonsquare_share)
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        items = [data[step * recipe.images_per_step + i] for i in range(recipe.images_per_step)]
        images, masks, sizes = (torch.stack(x) for x in zip(*items, strict=True))
        out = interactive_step(sam, images, masks, recipe, generator, input_sizes=sizes)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    tiny, recipe = get_config("tiny"), shipped_recipe("tiny")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU; one step = "
          f"{recipe.images_per_step} images x {recipe.masks_per_image} prompts x up to "
          f"{recipe.total_rounds} rounds (gradients: {recipe.grad_rounds}), fwd + bwd + AdamW\n")
    base = seconds_per_step(tiny, recipe)
    print(f"tiny, shipped recipe: {base:.3f} s/step = {1 / base:.2f} steps/s = "
          f"{recipe.images_per_step / base:.1f} images/s")
    single = seconds_per_step(tiny, shipped_recipe("tiny_single_round"))
    print(f"tiny, single-round recipe: {single:.3f} s/step = {1 / single:.2f} steps/s\n")
    print(f"{'image':>6} {'patch':>6} {'grid':>6} {'s/step':>8} {'images/s':>9} {'vs tiny':>8}")
    for size, patch in [(64, 8), (128, 8), (256, 8), (64, 4), (256, 16)]:
        config = with_patch(tiny, size, patch)
        t = base if (size, patch) == (128, 8) else seconds_per_step(config, recipe)
        grid = config.image_encoder.embedding_size
        print(f"{size:>6} {patch:>6} {f'{grid}x{grid}':>6} {t:>8.3f} "
              f"{recipe.images_per_step / t:>9.1f} {t / base:>7.2f}x")


if __name__ == "__main__":
    main()
