"""The Segment Anything Model: image encoder + prompt encoder + mask decoder (SAM Fig. 4).

Also the pixel conventions shared by every caller: ``preprocess`` (normalise, pad to a square)
and ``postprocess_masks`` (low-res logits back to the original image).

Shapes: B images, K prompts per image, M masks per prompt, H/W heights and widths.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


class Sam(nn.Module):
    """SAM, assembled from ready-made parts (see ``samteach.build_sam``)."""

    mask_threshold: float = 0.0  # masks are logits > 0, i.e. probability > 0.5
    image_format: str = "RGB"
    config = None  # the SamConfig it was built from (set by build_sam; saved with checkpoints)

    def __init__(
        self,
        image_encoder: ImageEncoderViT,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        pixel_mean: tuple[float, ...] = (123.675, 116.28, 103.53),
        pixel_std: tuple[float, ...] = (58.395, 57.12, 57.375),
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        # Not persistent: constants of the method, not learned, and absent from checkpoints.
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @torch.no_grad()
    def forward(
        self, batched_input: list[dict[str, Any]], multimask_output: bool
    ) -> list[dict[str, torch.Tensor]]:
        """End-to-end inference on a list of images, each with its own prompts.

        Each dict holds ``image`` (3, H, W) already resized by ``ResizeLongestSide``,
        ``original_size`` (H, W), and optionally ``point_coords`` (K, n, 2), ``point_labels``
        (K, n), ``boxes`` (K, 4) and ``mask_inputs`` (K, 1, 4h, 4w), in the resized frame.

        Returns one dict per image with ``masks`` (K, M, H, W) bool, ``iou_predictions``
        (K, M) and ``low_res_logits`` (K, M, 4h, 4w).
        """
        from ..utils.arguments import validate_batched_input  # local: modeling/ imports torch alone

        validate_batched_input(batched_input, self.image_encoder.img_size)
        images = torch.stack([self.preprocess(x["image"]) for x in batched_input])
        image_embeddings = self.image_encoder(images)  # (B, C, h, w)
        stem = self.image_encoder.high_res_stem  # only in models with SAM 2's high-res path
        fine = None if stem is None else stem(images)
        image_pe = self.prompt_encoder.get_dense_pe()
        outputs = []
        for b, (record, embedding) in enumerate(zip(batched_input, image_embeddings,
                                                    strict=True)):
            points = None
            if "point_coords" in record:
                points = (record["point_coords"], record["point_labels"])
            sparse, dense = self.prompt_encoder(
                points=points, boxes=record.get("boxes"), masks=record.get("mask_inputs")
            )
            low_res, iou_pred = self.mask_decoder(
                image_embeddings=embedding.unsqueeze(0),
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask_output,
                high_res_features=None if fine is None else [f[b : b + 1] for f in fine],
            )
            masks = self.postprocess_masks(
                low_res, record["image"].shape[-2:], record["original_size"]
            )
            outputs.append({
                "masks": masks > self.mask_threshold,
                "iou_predictions": iou_pred,
                "low_res_logits": low_res,
            })
        return outputs

    def postprocess_masks(
        self, masks: torch.Tensor, input_size: tuple[int, ...], original_size: tuple[int, ...]
    ) -> torch.Tensor:
        """Low-res logits (..., 4h, 4w) -> logits (..., H, W) of the original image.

        Undo the pipeline in reverse: upsample to the padded square, crop the padding away
        (``input_size`` is the resized image before padding), resize to the original size.
        """
        size = self.image_encoder.img_size
        masks = F.interpolate(masks, (size, size), mode="bilinear", align_corners=False)
        masks = masks[..., : input_size[0], : input_size[1]]
        return F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(3, H, W) or (B, 3, H, W) pixels 0..255 -> normalised, zero-padded to img x img.

        Padding comes *after* normalising, so padded pixels are 0 = the mean colour, and only
        at the bottom and right, so pixel coordinates need no shift.
        """
        x = (x - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        size = self.image_encoder.img_size
        return F.pad(x, (0, size - w, 0, size - h))
