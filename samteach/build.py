"""Build SAM from a preset or a config, with weights from a checkpoint if given.

``build_sam("vit_b", "sam_vit_b_01ec64.pth")`` loads Meta's released checkpoint strictly;
``build_sam("tiny")`` gives a small random model; ``build_sam(checkpoint="x.safetensors")``
rebuilds the model a samteach file was saved from (its config travels in the metadata).
Reading, writing and loading checkpoint files: :mod:`samteach.checkpoint`.
"""

from dataclasses import asdict, replace
from pathlib import Path

from .checkpoint import guess_preset, load_state_dict, read_checkpoint, shipped_weights
from .config import PRESETS, MaskDecoderConfig, SamConfig, get_config, with_text_prompts
from .fast import use_fast_paths
from .modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

__all__ = [
    "build_sam",
    "build_sam_vit_b",
    "build_sam_vit_h",
    "build_sam_vit_l",
    "build_sam_tiny",
    "sam_model_registry",
]


def build_sam(
    config: str | SamConfig | None = "vit_h",
    checkpoint: str | Path | None = None,
    *,
    pretrained: bool | str = False,
    strict: bool = True,
    fast: bool | None = None,
) -> Sam:
    """Build SAM (in eval mode) and optionally load weights.

    Args:
        config: a preset name (``tiny``, ``vit_b``, ``vit_l``, ``vit_h``, ``default``), a
            ``SamConfig``, or None to take the config stored in a samteach checkpoint. A
            checkpoint path here, as Meta's ``build_sam(checkpoint)`` takes it, builds the
            model the file holds: the config stored in a samteach file, or the preset whose
            shapes an official file matches.
        checkpoint: an official ``.pth`` or a samteach ``.safetensors`` file.
        pretrained: load weights shipped with samteach: True for the preset's own (``tiny``),
            or a name from :func:`shipped_weights` (e.g. ``"tiny_single_round"``).
        strict: refuse missing, unexpected or mis-shaped weights (listing them).
        fast: override ``config.fast``: True runs ``samteach.fast``'s paths (the default),
            False ``samteach.modeling``'s readable code alone; the same numbers either way.
    """
    if pretrained:
        if checkpoint is not None:
            raise ValueError("give either checkpoint or pretrained, not both")
        name = pretrained if isinstance(pretrained, str) else config
        if not isinstance(name, str):
            raise ValueError("pretrained=True needs a preset name as config, e.g. "
                             "build_sam('tiny', pretrained=True)")
        checkpoint = shipped_weights(name)
    if _is_checkpoint_path(config) and checkpoint is None and not pretrained:
        config, checkpoint = None, config  # build_sam("sam_vit_b_01ec64.pth"), Meta's way
    stored = None
    if checkpoint is not None:
        state_dict, stored = read_checkpoint(checkpoint)
        if config is None and stored is None:
            stored = _config_from_shapes(state_dict, checkpoint)
    if config is None:
        if stored is None:
            raise ValueError("config is None, so it must come from a samteach .safetensors "
                             "checkpoint; pass a preset name such as 'vit_b' instead")
        config = stored
    elif isinstance(config, str):
        config = get_config(config)
        if stored is not None and stored.prompt_encoder.text_dim \
                and config == with_text_prompts(stored, 0):
            config = stored  # the preset with text prompts added (e.g. pretrained="tiny_text")
    elif not isinstance(config, SamConfig):
        raise TypeError(f"config must be a preset name or a SamConfig; got "
                        f"{type(config).__name__}")
    if fast is not None:
        config = replace(config, fast=fast)

    sam = Sam(
        image_encoder=ImageEncoderViT(**asdict(config.image_encoder)),
        prompt_encoder=PromptEncoder(**asdict(config.prompt_encoder)),
        mask_decoder=_build_mask_decoder(config.mask_decoder),
        pixel_mean=config.pixel_mean,
        pixel_std=config.pixel_std,
    )
    use_fast_paths(sam, config.fast)  # each module with a fast twin becomes it, or stays
    sam.config = config
    sam.eval()
    if checkpoint is not None:
        load_state_dict(sam, state_dict, strict=strict, source=f"checkpoint {checkpoint}")
    return sam


def _is_checkpoint_path(config: object) -> bool:
    """A path given where a preset name goes: an existing file, or a checkpoint suffix."""
    if isinstance(config, Path):
        return True
    return isinstance(config, str) and config not in PRESETS and config != "default" and (
        config.endswith((".pth", ".pt", ".safetensors")) or Path(config).is_file())


def _config_from_shapes(state_dict, checkpoint) -> SamConfig:
    """The preset an official checkpoint's encoder width, depth and patch size match."""
    name = guess_preset(state_dict)
    if name is None:
        raise ValueError(f"checkpoint {checkpoint} matches no preset ({sorted(PRESETS)}) and "
                         "holds no samteach config: pass the preset, build_sam('vit_b', path)")
    config = get_config(name)
    if not any(k.startswith("mask_decoder.conv_s") for k in state_dict):  # a SAM 1 file
        config = replace(config,
                         image_encoder=replace(config.image_encoder, high_res_stem=False),
                         mask_decoder=replace(config.mask_decoder, use_high_res_features=False))
    return config


def _build_mask_decoder(cfg: MaskDecoderConfig) -> MaskDecoder:
    transformer = TwoWayTransformer(
        depth=cfg.transformer_depth,
        embedding_dim=cfg.transformer_dim,
        num_heads=cfg.transformer_num_heads,
        mlp_dim=cfg.transformer_mlp_dim,
        attention_downsample_rate=cfg.attention_downsample_rate,
    )
    return MaskDecoder(
        transformer_dim=cfg.transformer_dim,
        transformer=transformer,
        num_multimask_outputs=cfg.num_multimask_outputs,
        iou_head_depth=cfg.iou_head_depth,
        iou_head_hidden_dim=cfg.iou_head_hidden_dim,
        use_high_res_features=cfg.use_high_res_features,
    )


def build_sam_vit_h(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-H (636M-parameter encoder), as released by Meta."""
    return build_sam("vit_h", checkpoint)


def build_sam_vit_l(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-L (308M-parameter encoder)."""
    return build_sam("vit_l", checkpoint)


def build_sam_vit_b(checkpoint: str | Path | None = None) -> Sam:
    """SAM ViT-B (90M-parameter encoder)."""
    return build_sam("vit_b", checkpoint)


def build_sam_tiny(checkpoint: str | Path | None = None) -> Sam:
    """The course's tiny SAM (128 px), trainable on a laptop CPU."""
    return build_sam("tiny", checkpoint)


# Same keys as Meta's registry, plus "tiny": sam_model_registry["vit_b"](checkpoint=path).
sam_model_registry = {
    "default": build_sam_vit_h,
    "vit_h": build_sam_vit_h,
    "vit_l": build_sam_vit_l,
    "vit_b": build_sam_vit_b,
    "tiny": build_sam_tiny,
}
