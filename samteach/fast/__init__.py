"""samteach's speed, kept apart from the model a student reads, behind one switch.

``samteach.modeling`` is the paper's math in Meta's structure. The classes here subclass its
modules and override only how a ``forward`` computes; they hold the same weights under the
same names, and each is tested equal to the readable module it replaces (fp32, 1e-4, gradients
included: tests/test_fast.py):

* ``mlp.FastMLPBlock`` -- the feed-forward layer with its GELU fused into its product;
* ``encoder.FastAttention`` -- the image encoder's attention through a fused kernel, the
  relative position bias built one chunk of query rows at a time;
* ``decoder.FastAttention``, ``decoder.FastTwoWayTransformer``, ``decoder.FastMaskDecoder`` --
  the mask decoder with one image copy shared by an image's prompts, a fused attention kernel,
  and the upscaling channels-last;
* ``click`` -- one click on a cached image: per-image caches and the attention re-associated
  (``SamPredictor`` uses it when the model is fast);
* ``gemm`` -- the click's and the upscaling's large products on oneDNN where PyTorch's CPU
  build has it (faster than MKL on AMD CPUs), ``F.linear`` everywhere else.

The switch: ``build_sam(..., fast=True)`` (the default; ``SamConfig.fast``), or
:func:`use_fast_paths` on a model already built.
"""

from dataclasses import replace

from torch import nn

from ..modeling import common, image_encoder, mask_decoder, transformer
from . import decoder, encoder, mlp

__all__ = ["is_fast", "use_fast_paths"]

# readable module -> its fast twin (a subclass that only computes differently)
FAST_TWINS: dict[type[nn.Module], type[nn.Module]] = {
    common.MLPBlock: mlp.FastMLPBlock,
    image_encoder.Attention: encoder.FastAttention,
    transformer.Attention: decoder.FastAttention,
    transformer.TwoWayTransformer: decoder.FastTwoWayTransformer,
    mask_decoder.MaskDecoder: decoder.FastMaskDecoder,
}


def use_fast_paths(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every module of ``model`` with a fast twin to it (or back to the readable module
    with ``enabled=False``). The weights and their names do not change; returns ``model``."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False; got {enabled!r}")
    swaps = FAST_TWINS if enabled else {fast: slow for slow, fast in FAST_TWINS.items()}
    for module in model.modules():
        target = swaps.get(type(module))
        if target is not None:
            module.__class__ = target  # same attributes, same state_dict: only forward differs
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "fast"):
        model.config = replace(config, fast=enabled)
    return model


def is_fast(model: nn.Module) -> bool:
    """Whether ``model``'s mask decoder runs the fast paths."""
    decoder_ = getattr(model, "mask_decoder", model)
    return isinstance(decoder_, decoder.FastMaskDecoder)
