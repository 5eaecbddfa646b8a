"""Meta's ``segment_anything`` 1.0, the reference the tests compare samteach against.

Its package ``__init__`` imports the automatic mask generator, which imports torchvision; the
CPU torch wheel this project uses has no compatible torchvision. So we register the package's
folder without running ``__init__`` and import the submodules we need. ``utils/transforms.py``
(needed by the official ``SamPredictor``) does ``from torchvision.transforms.functional
import resize, to_pil_image``; when torchvision is unavailable we provide those two functions,
written to do what torchvision does for a uint8 numpy image: ``to_pil_image`` ->
``PIL.Image.fromarray`` (mode RGB) and ``resize(pil, (h, w))`` -> ``pil.resize((w, h),
BILINEAR)`` (torchvision's ``_functional_pil.resize``).
"""

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _ensure_torchvision_resize() -> None:
    try:
        from torchvision.transforms.functional import resize, to_pil_image

        return
    except Exception:  # not installed, or installed but broken beside this torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    from PIL import Image

    def to_pil_image(pic):
        return Image.fromarray(pic)

    def resize(img, size):
        h, w = size
        return img.resize((w, h), Image.BILINEAR)

    functional = types.ModuleType("torchvision.transforms.functional")
    functional.resize, functional.to_pil_image = resize, to_pil_image
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    sys.modules.update({
        "torchvision": torchvision,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
    })


def _ensure_torchvision_ops() -> None:
    """``torchvision.ops.boxes.{batched_nms, box_area}`` for the official mask generator.

    Without a working torchvision, a plain reference of torchvision's documented semantics:
    visit boxes by decreasing score (ties in input order), drop any box whose IoU with a kept
    box of the same category is > iou_threshold; area = (x1 - x0) * (y1 - y0). Deliberately
    a loop over pairs, nothing like samteach's vectorised NMS, so the comparison means something.
    """
    try:
        from torchvision.ops.boxes import batched_nms, box_area  # only: importable?

        return
    except Exception:
        for name in [m for m in sys.modules if m == "torchvision.ops" or
                     m.startswith("torchvision.ops.")]:
            del sys.modules[name]
    import torch

    def box_area(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else float("nan")

    def batched_nms(boxes, scores, idxs, iou_threshold):
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        b, cats, kept = boxes.tolist(), idxs.tolist(), []
        for i in order:
            if all(cats[i] != cats[k] or not iou(b[i], b[k]) > iou_threshold for k in kept):
                kept.append(i)
        return torch.as_tensor(kept, dtype=torch.long)

    _ensure_torchvision_resize()  # makes the torchvision package stand-in if there is none
    torchvision = sys.modules.get("torchvision") or types.ModuleType("torchvision")
    ops, boxes = types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
    boxes.batched_nms, boxes.box_area = batched_nms, box_area
    ops.boxes, torchvision.ops = boxes, ops
    sys.modules.update({"torchvision": torchvision, "torchvision.ops": ops,
                        "torchvision.ops.boxes": boxes})


def reference_batched_nms():
    """torchvision's ``batched_nms``, or the stand-in the official generator runs with."""
    _ensure_torchvision_ops()
    from torchvision.ops.boxes import batched_nms

    return batched_nms


def load(submodule: str = "modeling") -> types.ModuleType:
    """``segment_anything.<submodule>`` imported without the package ``__init__``."""
    if "segment_anything" not in sys.modules:
        spec = importlib.util.find_spec("segment_anything")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("the test reference segment-anything==1.0 is not installed")
        package = types.ModuleType("segment_anything")
        package.__path__ = [str(Path(p)) for p in spec.submodule_search_locations]
        sys.modules["segment_anything"] = package
    if submodule in ("predictor", "utils.transforms"):
        _ensure_torchvision_resize()
    if submodule == "automatic_mask_generator":
        _ensure_torchvision_resize()
        _ensure_torchvision_ops()
    return importlib.import_module(f"segment_anything.{submodule}")


def sam1(config):
    """``config`` without SAM 2's high-res mask path, which Meta's SAM 1 does not have: parity
    with Meta's code is tested on everything else."""
    from dataclasses import replace

    return replace(config, image_encoder=replace(config.image_encoder, high_res_stem=False),
                   mask_decoder=replace(config.mask_decoder, use_high_res_features=False))


def build_official(config):
    """Meta's ``Sam`` with the hyper-parameters of a samteach ``SamConfig`` (random weights)."""
    from functools import partial

    import torch

    m = load("modeling")
    enc, pe, dec = config.image_encoder, config.prompt_encoder, config.mask_decoder
    return m.Sam(
        image_encoder=m.ImageEncoderViT(
            img_size=enc.img_size, patch_size=enc.patch_size, in_chans=enc.in_chans,
            embed_dim=enc.embed_dim, depth=enc.depth, num_heads=enc.num_heads,
            mlp_ratio=enc.mlp_ratio, out_chans=enc.out_chans, qkv_bias=enc.qkv_bias,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_abs_pos=enc.use_abs_pos,
            use_rel_pos=enc.use_rel_pos, rel_pos_zero_init=enc.rel_pos_zero_init,
            window_size=enc.window_size, global_attn_indexes=list(enc.global_attn_indexes),
        ),
        prompt_encoder=m.PromptEncoder(
            embed_dim=pe.embed_dim, image_embedding_size=pe.image_embedding_size,
            input_image_size=pe.input_image_size, mask_in_chans=pe.mask_in_chans,
        ),
        mask_decoder=m.MaskDecoder(
            num_multimask_outputs=dec.num_multimask_outputs,
            transformer=m.TwoWayTransformer(
                depth=dec.transformer_depth, embedding_dim=dec.transformer_dim,
                mlp_dim=dec.transformer_mlp_dim, num_heads=dec.transformer_num_heads,
                attention_downsample_rate=dec.attention_downsample_rate,
            ),
            transformer_dim=dec.transformer_dim, iou_head_depth=dec.iou_head_depth,
            iou_head_hidden_dim=dec.iou_head_hidden_dim,
        ),
        pixel_mean=list(config.pixel_mean),
        pixel_std=list(config.pixel_std),
    ).eval()
