"""SAM's modules, named as in Meta's ``segment_anything.modeling`` so checkpoints load as-is."""

from .common import LayerNorm2d, MLPBlock
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PositionEmbeddingRandom, PromptEncoder
from .sam import Sam
from .transformer import TwoWayTransformer

__all__ = [
    "ImageEncoderViT",
    "LayerNorm2d",
    "MLPBlock",
    "MaskDecoder",
    "PositionEmbeddingRandom",
    "PromptEncoder",
    "Sam",
    "TwoWayTransformer",
]
