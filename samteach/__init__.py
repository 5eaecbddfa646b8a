"""samteach: learn the Segment Anything Model by building it.

    from samteach import build_sam, SamPredictor
    predictor = SamPredictor(build_sam("tiny"))

The modules mirror Meta's ``segment_anything`` (same names, same checkpoint keys), written to
be read next to the SAM paper. ``import samteach`` stays light: plotting, widgets and dataset
tooling live in their own modules and load only when you import them.
"""

from .build import build_sam, build_sam_vit_b, build_sam_vit_h, build_sam_vit_l, sam_model_registry
from .config import (
    PRESETS,
    ImageEncoderConfig,
    MaskDecoderConfig,
    PromptEncoderConfig,
    SamConfig,
    get_config,
)
from .predictor import SamPredictor
from .utils.transforms import ResizeLongestSide

__version__ = "0.1.0"


def __getattr__(name: str):
    # As in Meta's package, `from samteach import SamAutomaticMaskGenerator` works; it is loaded
    # on first use, so `import samteach` stays light.
    if name == "SamAutomaticMaskGenerator":
        from .amg import SamAutomaticMaskGenerator

        return SamAutomaticMaskGenerator
    raise AttributeError(f"module 'samteach' has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "ImageEncoderConfig",
    "MaskDecoderConfig",
    "PromptEncoderConfig",
    "ResizeLongestSide",
    "SamAutomaticMaskGenerator",
    "SamConfig",
    "SamPredictor",
    "build_sam",
    "build_sam_vit_b",
    "build_sam_vit_h",
    "build_sam_vit_l",
    "get_config",
    "sam_model_registry",
]
