"""One process of tests/test_training.py's torchrun test: train 3 steps, dump the weights."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from samteach.training import TrainConfig
from samteach.training.trainer import Trainer

if __name__ == "__main__":
    out = Path(sys.argv[1])
    config = TrainConfig(images_per_step=1, masks_per_image=2, rounds=2, no_click_rounds=0,
                         warmup_steps=1, max_steps=3)
    trainer = Trainer(config, out / "run", eval_every=0, eval_scenes=1, progress=False)
    seen = []
    step = trainer._train_step

    def record(images, masks, input_sizes, captions=None):
        seen.append(images.float().mean().item())  # which scenes this process trained on
        return step(images, masks, input_sizes, captions)

    trainer._train_step = record
    trainer.fit()
    torch.save({"step": trainer.step, "seen": seen, "model": trainer.sam.state_dict()},
               out / f"rank{trainer.rank}.pt")
    dist.destroy_process_group()
