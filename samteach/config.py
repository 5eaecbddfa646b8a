"""Frozen configurations for SAM's three parts and the whole model, with named presets.

Each component config has exactly the keyword arguments of the module it builds
(``ImageEncoderViT(**asdict(cfg))`` works), so a student can build one part alone in a lab.
``SamConfig`` composes the three and checks that they fit together.

Presets (``get_config(name)``):

* ``vit_b``, ``vit_l``, ``vit_h`` -- the numbers of Meta's released checkpoints (SAM paper,
  App. A; ``build_sam.py`` of ``segment_anything``). Official weights load into them.
* ``tiny`` -- invented for this course: small enough to train on a laptop CPU, with every
  mechanism of the real model present (windowed *and* global attention, relative position bias,
  a two-layer two-way decoder, three multimask outputs), plus SAM 2's high-res mask path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .utils.arguments import validate_int

__all__ = [
    "ImageEncoderConfig",
    "PromptEncoderConfig",
    "MaskDecoderConfig",
    "SamConfig",
    "PRESETS",
    "get_config",
    "config_to_dict",
    "config_from_dict",
]


@dataclass(frozen=True)
class ImageEncoderConfig:
    """Arguments of :class:`samteach.modeling.ImageEncoderViT` (an MAE-style plain ViT)."""

    img_size: int = 1024  # the square the image is resized+padded into; SAM App. A uses 1024
    patch_size: int = 16  # 1024/16 = a 64x64 embedding: fine enough for masks, cheap enough
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    out_chans: int = 256  # the neck maps to the decoder's width, so prompts and pixels can meet
    qkv_bias: bool = True
    use_abs_pos: bool = True  # learned absolute position embedding, from MAE pre-training
    use_rel_pos: bool = True  # decomposed relative position bias (ViTDet), per attention block
    rel_pos_zero_init: bool = True
    window_size: int = 14  # local 14x14 windows in most blocks keep attention cost linear
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)  # a few global blocks mix windows
    # SAM 2's high-res path, for a plain ViT: a small conv stem computes features finer than a
    # patch for the decoder's upscaling (boundaries inside a patch). Off in Meta's SAM 1 models.
    high_res_stem: bool = False

    def __post_init__(self) -> None:
        _check_positive(self, "img_size", "patch_size", "in_chans", "embed_dim", "depth")
        _check_positive(self, "num_heads", "out_chans")
        if self.img_size % self.patch_size:
            raise ValueError(
                f"img_size ({self.img_size}) must be a multiple of patch_size ({self.patch_size})"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        object.__setattr__(self, "global_attn_indexes", tuple(self.global_attn_indexes))
        bad = [i for i in self.global_attn_indexes if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"global_attn_indexes {bad} are outside the {self.depth} blocks")
        if self.high_res_stem and (self.patch_size % 4 or self.out_chans % 8):
            raise ValueError(f"high_res_stem needs patch_size divisible by 4 and out_chans by 8; "
                             f"got {self.patch_size} and {self.out_chans}")

    @property
    def embedding_size(self) -> int:
        """Side of the (square) image embedding grid, e.g. 1024 / 16 = 64."""
        return self.img_size // self.patch_size


@dataclass(frozen=True)
class PromptEncoderConfig:
    """Arguments of :class:`samteach.modeling.PromptEncoder`."""

    embed_dim: int = 256  # every prompt token lives in the decoder's width
    image_embedding_size: tuple[int, int] = (64, 64)  # (H, W) of the image embedding
    input_image_size: tuple[int, int] = (1024, 1024)  # (H, W) of the padded model input
    mask_in_chans: int = 16  # hidden channels of the small conv net that encodes mask prompts
    # D of the CLIP embeddings a text prompt carries (SAM §7.5); 0: no text prompts, as in
    # Meta's released models (the text parts then do not exist, so their checkpoints load).
    text_dim: int = 0

    def __post_init__(self) -> None:
        _check_positive(self, "embed_dim", "mask_in_chans")
        if self.embed_dim % 2:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be even: half sin, half cos")
        if isinstance(self.text_dim, bool) or not isinstance(self.text_dim, int) \
                or self.text_dim < 0:
            raise ValueError(f"text_dim must be an int >= 0 (0: no text prompts); got "
                             f"{self.text_dim!r}")
        if self.mask_in_chans % 4:
            raise ValueError(f"mask_in_chans ({self.mask_in_chans}) must be a multiple of 4")
        object.__setattr__(self, "image_embedding_size", tuple(self.image_embedding_size))
        object.__setattr__(self, "input_image_size", tuple(self.input_image_size))

    @property
    def mask_input_size(self) -> tuple[int, int]:
        """(H, W) of a mask prompt: 4x the embedding, like the decoder's low-res output."""
        return (4 * self.image_embedding_size[0], 4 * self.image_embedding_size[1])


@dataclass(frozen=True)
class MaskDecoderConfig:
    """Arguments of :class:`samteach.modeling.MaskDecoder` and its ``TwoWayTransformer``."""

    transformer_dim: int = 256
    transformer_depth: int = 2  # two two-way blocks (SAM App. A): the decoder must stay ~ms fast
    transformer_mlp_dim: int = 2048
    transformer_num_heads: int = 8
    attention_downsample_rate: int = 2  # cross-attention runs at half width to save compute
    num_multimask_outputs: int = 3  # whole, part, subpart: three answers to an ambiguous click
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    # Add the image encoder's high_res_stem maps into the upscaling (SAM 2). Off for SAM 1.
    use_high_res_features: bool = False

    def __post_init__(self) -> None:
        _check_positive(self, "transformer_dim", "transformer_depth", "transformer_mlp_dim")
        _check_positive(self, "transformer_num_heads", "attention_downsample_rate")
        _check_positive(self, "num_multimask_outputs", "iou_head_depth", "iou_head_hidden_dim")
        inner = self.transformer_dim // self.attention_downsample_rate
        if self.transformer_dim % 8:
            raise ValueError(f"transformer_dim ({self.transformer_dim}) must be a multiple of 8")
        if inner % self.transformer_num_heads:
            raise ValueError(
                f"transformer_dim / attention_downsample_rate ({inner}) must be divisible by "
                f"transformer_num_heads ({self.transformer_num_heads})"
            )


@dataclass(frozen=True)
class SamConfig:
    """The whole model: three parts, the pixel statistics, and whether to run it fast."""

    name: str = "custom"
    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    prompt_encoder: PromptEncoderConfig = field(default_factory=PromptEncoderConfig)
    mask_decoder: MaskDecoderConfig = field(default_factory=MaskDecoderConfig)
    # ImageNet statistics on the 0..255 scale, as used for MAE pre-training.
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    # True: the modules run samteach.fast's paths (fused attention, one image copy shared by its
    # prompts, channels-last upscaling, the click's caches); False: modeling/'s readable code
    # alone. Not architecture: same weights, outputs equal to ~1e-6 (tests/test_fast.py).
    fast: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "pixel_mean", tuple(float(v) for v in self.pixel_mean))
        object.__setattr__(self, "pixel_std", tuple(float(v) for v in self.pixel_std))
        if not isinstance(self.fast, bool):
            raise ValueError(f"fast must be True or False; got {self.fast!r}")
        enc, pe, dec = self.image_encoder, self.prompt_encoder, self.mask_decoder
        grid = (enc.embedding_size, enc.embedding_size)
        checks = [
            ("prompt_encoder.embed_dim", pe.embed_dim, "image_encoder.out_chans", enc.out_chans),
            ("mask_decoder.transformer_dim", dec.transformer_dim, "image_encoder.out_chans",
             enc.out_chans),
            ("prompt_encoder.image_embedding_size", pe.image_embedding_size,
             "image_encoder img_size / patch_size", grid),
            ("prompt_encoder.input_image_size", pe.input_image_size, "image_encoder.img_size",
             (enc.img_size, enc.img_size)),
            ("mask_decoder.use_high_res_features", dec.use_high_res_features,
             "image_encoder.high_res_stem", enc.high_res_stem),
        ]
        for name, value, other, expected in checks:
            if value != expected:
                raise ValueError(f"{name} ({value}) must equal {other} ({expected})")

    def at_image_size(self, img_size: int) -> SamConfig:
        """The same model for another input size (e.g. official weights at 512 px).

        Only the image encoder's position tables depend on the size; ``build.load_state_dict``
        resizes them when it loads a checkpoint saved at another size.
        """
        enc = replace(self.image_encoder, img_size=img_size)
        grid = (enc.embedding_size, enc.embedding_size)
        pe = replace(self.prompt_encoder, image_embedding_size=grid,
                     input_image_size=(img_size, img_size))
        return replace(self, image_encoder=enc, prompt_encoder=pe)


def _check_positive(cfg: object, *names: str) -> None:
    for name in names:
        validate_int(getattr(cfg, name), f"{type(cfg).__name__}.{name}")


def _official(name: str, embed_dim: int, depth: int, num_heads: int,
              global_attn_indexes: tuple[int, ...]) -> SamConfig:
    # Only the image encoder differs between the three released models.
    encoder = ImageEncoderConfig(embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                                 global_attn_indexes=global_attn_indexes)
    return SamConfig(name=name, image_encoder=encoder)


def _tiny() -> SamConfig:
    # 128 px input with 8 px patches: a 16x16 embedding, 64x64 low-res masks. Window 8 gives
    # 2x2 windows, so windowed and global blocks both do real work. The embedding grid sets the
    # encoder's cost: 32x32 (256 px, patch 8) trains ~4x slower, width 128 x 6 blocks ~1.5x.
    # With SAM 2's high-res path: the decoder adds conv features at strides 2 and 4 into its
    # upscaling, so boundaries inside an 8-px patch follow the pixels (+3% time per step; at
    # equal training time it beat the same model without it on both held-out sets).
    encoder = ImageEncoderConfig(img_size=128, patch_size=8, embed_dim=96, depth=4, num_heads=3,
                                 out_chans=64, window_size=8, global_attn_indexes=(1, 3),
                                 high_res_stem=True)
    prompt = PromptEncoderConfig(embed_dim=64, image_embedding_size=(16, 16),
                                 input_image_size=(128, 128), mask_in_chans=16)
    decoder = MaskDecoderConfig(transformer_dim=64, transformer_mlp_dim=256,
                                transformer_num_heads=4, iou_head_hidden_dim=64,
                                use_high_res_features=True)
    return SamConfig(name="tiny", image_encoder=encoder, prompt_encoder=prompt,
                     mask_decoder=decoder)


PRESETS: dict[str, SamConfig] = {
    "tiny": _tiny(),
    "vit_b": _official("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    "vit_l": _official("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": _official("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
}


def with_text_prompts(config: SamConfig, text_dim: int) -> SamConfig:
    """``config`` with a prompt encoder that takes D = ``text_dim`` CLIP embeddings (0: none)."""
    return replace(config, prompt_encoder=replace(config.prompt_encoder, text_dim=text_dim))


def get_config(name: str) -> SamConfig:
    """The preset ``name``: ``tiny``, ``vit_b``, ``vit_l``, ``vit_h`` (``default`` = vit_h)."""
    if not isinstance(name, str):
        raise TypeError(f"preset name must be a str; got {type(name).__name__}")
    key = "vit_h" if name == "default" else name
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)} or 'default'")
    return PRESETS[key]


def config_to_dict(config: SamConfig) -> dict[str, Any]:
    """A JSON-ready dict (stored in samteach checkpoints, so a file knows its model). ``fast``
    is left out: how to run a model is the loader's choice, not the file's."""
    data = asdict(config)
    del data["fast"]
    return data


def config_from_dict(data: dict[str, Any]) -> SamConfig:
    """Inverse of :func:`config_to_dict`; unknown or missing fields raise a clear error."""
    # "attention" ("sdpa" or "explicit"): how files written before samteach.fast named the switch
    skip = ("image_encoder", "prompt_encoder", "mask_decoder", "attention", "fast")
    if not isinstance(data, dict):
        raise ValueError(f"not a samteach SamConfig: expected a JSON object, got "
                         f"{type(data).__name__}")
    try:
        return SamConfig(
            **{k: v for k, v in data.items() if k not in skip},
            image_encoder=ImageEncoderConfig(**data["image_encoder"]),
            prompt_encoder=PromptEncoderConfig(**data["prompt_encoder"]),
            mask_decoder=MaskDecoderConfig(**data["mask_decoder"]),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a samteach SamConfig: {err}") from None
