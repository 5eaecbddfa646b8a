"""Shared fixtures: the official reference, twin models with the same random weights."""

import os
from dataclasses import replace

import pytest
import torch

from samteach import build_sam, get_config
from samteach.config import ImageEncoderConfig

from . import official

# pytest-xdist runs one worker per core; each worker using every core's thread too would
# oversubscribe the CPU, and spinning OpenMP threads then slow small ops down a hundredfold.
if os.environ.get("PYTEST_XDIST_WORKER"):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    # The notebooks' kernels (nbval) inherit this: one kernel per worker, same share of cores.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

# The bar for fp32 parity: max |samteach - official| <= 1e-4.
ATOL = 1e-4


def assert_same(actual, expected, atol=ATOL):
    """Max absolute difference <= atol (no relative slack): the parity criterion."""
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every weight a random value of a sensible scale.

    Default init leaves relative position tables, position embeddings and LayerNorms at 0 or 1,
    where a wrong index or a swapped axis would go unnoticed; parity needs them random.
    Linear/conv weights keep their fan-in scaling so activations stay O(1).
    """
    g = torch.Generator().manual_seed(seed)

    def draw(p, std, mean=0.0):
        p.copy_(mean + std * torch.randn(p.shape, generator=g))

    embedding_tables = {f"{prefix}.weight" for prefix, m in module.named_modules()
                        if isinstance(m, torch.nn.Embedding)}
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("rel_pos_h", "rel_pos_w"):
                draw(p, 0.2)
            elif leaf == "pos_embed":
                draw(p, 0.5)
            elif leaf == "bias":
                draw(p, 0.1)
            elif p.dim() == 1:  # LayerNorm scales
                draw(p, 0.2, mean=1.0)
            elif name in embedding_tables:
                draw(p, 1.0)  # nn.Embedding tables: unit scale, as PyTorch initialises them
            else:  # Linear / conv weights keep fan-in scaling, so activations stay O(1)
                draw(p, p[0].numel() ** -0.5)
    return module


def twins(config, seed: int = 0, fast: bool = True):
    """(samteach Sam, official Sam) holding identical random weights (without SAM 2's high-res
    path, which Meta's SAM 1 does not have)."""
    config = official.sam1(config)
    theirs = randomize_(official.build_official(config), seed)
    ours = build_sam(config, fast=fast)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


# A vit_b-shaped encoder cut to 2 blocks (one windowed, one global) at 320 px: a 20x20 grid,
# so the 14x14 windows need padding -- every code path of the real encoder, at test cost.
VIT_B_REDUCED = replace(
    get_config("vit_b").at_image_size(320),
    image_encoder=ImageEncoderConfig(img_size=320, depth=2, global_attn_indexes=(1,)),
)


@pytest.fixture(scope="session")
def ref():
    """The official ``segment_anything.modeling`` module."""
    return official.load("modeling")


@pytest.fixture(scope="session")
def trained_tiny():
    """The tiny model the course ships, in eval mode (the demo and session tests click on it)."""
    return build_sam("tiny", pretrained=True).eval()


# Scene 0's object 6 (the liquid in a tube): the trained tiny model's first click on it spills
# over onto the tube's glass, and RITM's second click is a background click inside that spill.
SPILL_SEED, SPILL_TARGET = 0, 6


@pytest.fixture(scope="session")
def spill_scene():
    from samteach.data.scenes import make_scene

    return make_scene(SPILL_SEED)


@pytest.fixture(scope="session")
def tiny_twins():
    return twins(get_config("tiny"))


class _NoEvaluation:
    def figures(self):
        return {"mIoU@1": 0.0}


@pytest.fixture
def no_evaluation(monkeypatch):
    """Trainer tests about files and steps skip the (slow) RITM evaluation of checkpoints."""
    monkeypatch.setattr("samteach.evaluation.heldout.evaluate_model",
                        lambda model, n_scenes=1, **kwargs: _NoEvaluation())
