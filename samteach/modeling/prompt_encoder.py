"""SAM's prompt encoder (Fig. 4, middle; App. A "Prompt encoder").

Sparse prompts (points, box corners) become one token each: a random-Fourier positional
encoding of *where* the prompt is, plus a learned embedding of *what kind* of prompt it is.
Dense prompts (a mask) become a (C, H, W) map added to the image embedding.

Shapes: B prompts (a batch of prompt sets), n points per prompt, C channels (embed_dim),
H/W image-embedding grid, T tokens.

Point labels: -1 padding ("not a point"), 0 background, 1 foreground, 2 box top-left corner,
3 box bottom-right corner (the ONNX export's convention: a box may be given as two points).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d


def fourier_features(coords: torch.Tensor, gaussian_matrix: torch.Tensor) -> torch.Tensor:
    """(..., 2) positions (x, y) in [0, 1] and a (2, F) matrix G -> (..., 2F) in [-1, 1].

    [sin(2 pi p' G), cos(2 pi p' G)] with p' = 2p - 1: the random Fourier features of
    Tancik et al. (2020), sines first (the channel order SAM's checkpoints expect).
    """
    coords = 2 * coords - 1  # centre the square on the origin: [0, 1] -> [-1, 1]
    coords = coords @ gaussian_matrix  # (..., F): F random projections of the position
    coords = 2 * math.pi * coords
    return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of (x, y) positions (Tancik et al., 2020).

    A position p in [0, 1]^2 maps to [sin(2 pi G^T p'), cos(2 pi G^T p')] with p' = 2p - 1 and
    G a fixed (2, F) Gaussian matrix: 2F channels whose frequencies let the decoder tell nearby
    positions apart far better than raw (x, y) could.
    """

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        # Persistent buffer: never trained, but saved, because every token ever encoded
        # depends on this random draw.
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) positions in [0, 1] -> (..., 2F) encodings in [-1, 1]."""
        return fourier_features(coords, self.positional_encoding_gaussian_matrix)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encode the centre of every cell of an (H, W) grid -> (2F, H, W)."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h  # cell centres
        x = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack([x[None, :].expand(h, w), y[:, None].expand(h, w)], dim=-1)  # (H, W, 2)
        return self._pe_encoding(grid).permute(2, 0, 1)  # (2F, H, W)

    def forward_with_coords(
        self, coords_input: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, n, 2) pixel (x, y) coordinates in an (H, W) image -> (B, n, 2F)."""
        coords = torch.stack(
            [coords_input[..., 0] / image_size[1], coords_input[..., 1] / image_size[0]], dim=-1
        )  # x by the width, y by the height
        return self._pe_encoding(coords.to(torch.float))


class PromptEncoder(nn.Module):
    """Points, boxes and masks -> sparse tokens (B, T, C) and a dense map (B, C, H, W)."""

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: tuple[int, int] = (64, 64),
        input_image_size: tuple[int, int] = (1024, 1024),
        mask_in_chans: int = 16,
        text_dim: int = 0,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = tuple(input_image_size)
        self.image_embedding_size = tuple(image_embedding_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)

        # What kind of prompt a token is: background point, foreground point, box top-left,
        # box bottom-right (indices 0..3 = point labels 0..3).
        self.num_point_embeddings = 4
        self.point_embeddings = nn.ModuleList(
            nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings)
        )
        self.not_a_point_embed = nn.Embedding(1, embed_dim)  # label -1: padding

        # Mask prompts are 4x the embedding size (like the decoder's low-res masks); two
        # stride-2 convs bring them down to the embedding grid (App. A). Sequential positions
        # 0, 1, 3, 4, 6 hold weights and are part of the checkpoint keys.
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)  # the dense prompt when there is no mask

        # Text prompts (SAM §7.5), only in models trained with them: a CLIP embedding (D) is
        # projected into the decoder's width and marked by its own learned type embedding, as
        # each point label has one. Absent (None) in Meta's models, so their keys stay exact.
        self.text_projection = self.text_embed = None
        if text_dim:
            self.text_projection = nn.Sequential(
                nn.Linear(text_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
            self.text_embed = nn.Embedding(1, embed_dim)
            self._init_text_parts()

    def _init_text_parts(self) -> None:
        """Start the text token at the scale of the other tokens, whose Fourier features are
        sines and cosines of order 1: with nn.Linear's default initialisation a unit-norm CLIP
        embedding would come out ~100x smaller than the type embedding, and a fine-tuned decoder
        would first see a token that is nearly the same for every phrase."""
        first, last = self.text_projection[0], self.text_projection[2]
        nn.init.normal_(first.weight, std=1.0)  # unit-norm input -> entries ~N(0, 1)
        nn.init.normal_(last.weight, std=self.embed_dim ** -0.5)
        nn.init.zeros_(first.bias)
        nn.init.zeros_(last.bias)
        nn.init.normal_(self.text_embed.weight, std=0.1)

    def get_dense_pe(self) -> torch.Tensor:
        """(1, C, H, W): the positional encoding of every image-embedding cell.

        The decoder adds it to the image tokens, in the same frame as the prompt encodings, so a
        point and the pixel under it get the same encoding (see lab 02).
        """
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _label_embeddings(self) -> torch.Tensor:
        """(5, C): row label + 1 holds the learned embedding of label -1, 0, 1, 2, 3."""
        return torch.cat([self.not_a_point_embed.weight]
                         + [e.weight for e in self.point_embeddings])

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, n, 2) pixel coordinates and (B, n) labels -> (B, n [+1], C) tokens."""
        points = points + 0.5  # the centre of pixel (x, y) is at (x + 0.5, y + 0.5)
        if pad:
            # Without a box, SAM appends one "not a point" token (App. A), so a lone click
            # always reaches the decoder with company, as it did in training.
            B = points.shape[0]
            points = torch.cat([points, points.new_zeros(B, 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((B, 1), -1)], dim=1)
        pe = self.pe_layer.forward_with_coords(points, self.input_image_size)  # (B, n, C)
        pe = pe.masked_fill((labels == -1).unsqueeze(-1), 0.0)  # padding has no position
        return pe + self._label_embeddings()[labels.long() + 1]

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) boxes x0, y0, x1, y1 in pixels -> (B, 2, C): a token per corner."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)  # (B, 2 corners, xy)
        pe = self.pe_layer.forward_with_coords(corners, self.input_image_size)  # (B, 2, C)
        return pe + self._label_embeddings()[3:5]  # labels 2 (top-left) and 3 (bottom-right)

    @property
    def has_text_prompts(self) -> bool:
        """Built with ``text_dim`` > 0 (Meta's models: no)."""
        return self.text_projection is not None

    def require_text_prompts(self) -> None:
        """Raise a clear error if this encoder was built without text prompts."""
        if not self.has_text_prompts:
            raise ValueError("this model has no text prompts (its prompt encoder was built "
                             "with text_dim=0); use a model trained with them, e.g. "
                             "build_sam('tiny', pretrained='tiny_text')")

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        """(B, D) CLIP embeddings (of a caption, or of an object's crop) -> (B, C) tokens."""
        self.require_text_prompts()
        expected = self.text_projection[0].in_features
        if text.dim() != 2 or text.shape[1] != expected:
            raise ValueError(f"text must be (B, {expected}) CLIP embeddings; got "
                             f"{tuple(text.shape)}")
        text = F.normalize(text.float(), dim=-1)  # CLIP embeddings are compared as directions
        return self.text_projection(text) + self.text_embed.weight

    def _embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, 1, 4H, 4W) mask logits -> (B, C, H, W)."""
        return self.mask_downscaling(masks)

    @staticmethod
    def _get_batch_size(points, boxes, masks) -> int:
        for prompt in (points[0] if points is not None else None, boxes, masks):
            if prompt is not None:
                return prompt.shape[0]
        return 1

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        *,
        pad: bool | None = None,
        text: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed any combination of prompts.

        Args:
            points: coordinates (B, n, 2) in input-frame pixels (x, y) and labels (B, n).
            boxes: (B, 4) x0, y0, x1, y1 in input-frame pixels.
            masks: (B, 1, 4H, 4W) mask logits, e.g. the previous low-res prediction.
            pad: append a "not a point" token to the points? None follows SAM: yes when there
                is no box. A training batch that mixes point and box prompts, each spelled out
                as points (labels -1/2/3 included), passes False so no prompt gets an extra token.
            text: (B, D) CLIP embeddings, one more token after the others (models with
                ``text_dim`` only). Without points and box it comes with the padding token
                points get without a box -- the company it had in training.

        Returns:
            sparse (B, T, C) tokens -- T = n + 1 (pad) for points alone, n + 2 with a box,
            2 for a box alone, 0 for nothing; one more with text -- and dense (B, C, H, W).
        """
        if text is not None and points is None and boxes is None and pad is not False:
            B = text.shape[0]  # text alone: [pad, text]
            points = (text.new_zeros(B, 0, 2), text.new_zeros(B, 0, dtype=torch.long))
        B = self._get_batch_size(points, boxes, masks)
        device = self.no_mask_embed.weight.device
        sparse = [torch.empty((B, 0, self.embed_dim), device=device)]
        if points is not None:
            coords, labels = points
            if pad is None:
                # A box given as two points labelled 2 and 3 (the ONNX convention) is a box too.
                pad = boxes is None and not bool((labels >= 2).any())
            sparse.append(self._embed_points(coords, labels, pad=pad))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes))
        if text is not None:
            sparse.append(self.embed_text(text)[:, None])  # (B, 1, C)
        if masks is not None:
            dense = self._embed_masks(masks)
        else:
            # One learned vector everywhere, as an expanded view: the decoder sees that all
            # prompts share it and adds it to each image once instead of once per prompt.
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(B, -1, h, w)
        return torch.cat(sparse, dim=1), dense
