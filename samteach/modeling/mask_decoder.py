"""SAM's mask decoder (Fig. 14; App. A "Lightweight mask decoder").

Learned output tokens (one IoU token, 1 + M mask tokens) join the prompt tokens; the two-way
transformer lets them read the image; then each mask token's *hypernetwork* MLP turns it into
the weights of a per-pixel linear classifier over the upscaled image embedding.

Shapes: B images, K prompts per image, T tokens, M masks, C channels, H/W embedding grid.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d


class MaskDecoder(nn.Module):
    """Image embedding + prompt embeddings -> (1 or M) mask logits and predicted IoUs per prompt."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = False,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs

        self.iou_token = nn.Embedding(1, transformer_dim)
        # Token 0 answers when one answer is enough (several prompts); tokens 1..M give the
        # multimask answers to an ambiguous single click (whole / part / subpart, SAM §3).
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)

        # 4x upsampling with two transposed convs: 64x64 -> 256x256 for the released models.
        # Sequential positions 0, 1, 3 hold weights and are part of the checkpoint keys.
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        # SAM 2's high-res path (off in SAM 1): project the image encoder's fine maps
        # (HighResStem: C/4 channels at 4x the grid, C/2 at 2x) to the widths of the two
        # upscaling steps, and add them there, so mask boundaries can follow the pixels.
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            with torch.random.fork_rng(devices=[]):  # the rest's initial weights stay the same
                self.conv_s0 = nn.Conv2d(transformer_dim // 4, transformer_dim // 8, 1)
                self.conv_s1 = nn.Conv2d(transformer_dim // 2, transformer_dim // 4, 1)
            # Zero at first (as ControlNet's "zero convolutions"): the path adds nothing until
            # it has learnt something, so it can be added to a trained SAM without harm.
            for conv in (self.conv_s0, self.conv_s1):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks for K prompts on each of B images.

        Args:
            image_embeddings: (B, C, H, W) from the image encoder.
            image_pe: (1, C, H, W) from ``PromptEncoder.get_dense_pe()``.
            sparse_prompt_embeddings: (B*K, T, C), image-major: image 0's K prompts come first.
            dense_prompt_embeddings: (B*K, C, H, W), or anything that broadcasts to it.
            multimask_output: return the M multimask outputs instead of the single one.
            high_res_features: only with ``use_high_res_features``: the image encoder's
                ``high_res_stem`` maps [(B, C/4, 4H, 4W), (B, C/2, 2H, 2W)].

        Returns:
            masks (B*K, M or 1, 4H, 4W) logits and iou_pred (B*K, M or 1).
        """
        if (high_res_features is not None) != self.use_high_res_features:
            raise ValueError(
                "this decoder uses high-res features: pass high_res_features="
                "image_encoder.high_res_stem(x)" if self.use_high_res_features else
                "this decoder has no high-res path (use_high_res_features=False): pass "
                "high_res_features=None")
        masks, iou_pred = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
            high_res_features,
        )
        return self.select_outputs(masks, iou_pred, multimask_output)

    @staticmethod
    def select_outputs(masks: torch.Tensor, iou_pred: torch.Tensor,
                       multimask_output: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """All 1 + M outputs -> the M multimask ones (tokens 1..M) or the single one (token 0)."""
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, chosen], iou_pred[:, chosen]

    def tokens(self, sparse_prompt_embeddings: torch.Tensor) -> torch.Tensor:
        """The decoder's token sequence: its learned output tokens (IoU token, then the 1 + M
        mask tokens) before each prompt's tokens: (B*K, T', C) -> (B*K, T, C)."""
        BK = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight])  # (1+M, C)
        output_tokens = output_tokens.unsqueeze(0).expand(BK, -1, -1)  # (B*K, 1+M, C)
        return torch.cat([output_tokens, sparse_prompt_embeddings], dim=1)

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All 1 + M masks (B*K, 1+M, 4H, 4W) and IoU predictions (B*K, 1+M)."""
        B = image_embeddings.shape[0]
        K = sparse_prompt_embeddings.shape[0] // B
        tokens = self.tokens(sparse_prompt_embeddings)  # (B*K, T, C)

        # Every prompt gets its own copy of its image's embedding, plus its dense prompt: the
        # transformer's step (4) writes the prompt into it.
        src = torch.repeat_interleave(image_embeddings, K, dim=0)  # (B*K, C, H, W)
        src = src + dense_prompt_embeddings
        BK, C, H, W = src.shape
        hs, src = self.transformer(src, image_pe, tokens)  # (B*K, T, C), (B*K, H*W, C)
        iou_token_out = hs[:, 0]  # (B*K, C)
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]  # (B*K, 1+M, C)

        src = src.transpose(1, 2).reshape(BK, C, H, W)  # the image tokens as a map again
        if high_res_features is None:
            upscaled = self.output_upscaling(src)  # (B*K, C/8, 4H, 4W)
        else:  # SAM 2: each fine map is added after the transposed conv of its resolution
            feat_s0, feat_s1 = (torch.repeat_interleave(f, K, dim=0) for f in high_res_features)
            dc1, ln1, act1, dc2, act2 = self.output_upscaling
            upscaled = act1(ln1(dc1(src) + self.conv_s1(feat_s1)))  # (B*K, C/4, 2H, 2W)
            upscaled = act2(dc2(upscaled) + self.conv_s0(feat_s0))  # (B*K, C/8, 4H, 4W)
        masks = hypernetwork_masks(mask_tokens_out, upscaled, self.output_hypernetworks_mlps)
        iou_pred = self.iou_prediction_head(iou_token_out)  # (B*K, 1+M)
        return masks, iou_pred


def hypernetwork_masks(
    mask_tokens_out: torch.Tensor, upscaled: torch.Tensor, mlps: nn.ModuleList
) -> torch.Tensor:
    """Mask logits from mask tokens: each token's MLP output classifies every pixel.

    Hypernetworks (SAM App. A): mask token i goes through its own MLP, and the result is the
    weight vector of a linear classifier applied to every pixel's upscaled embedding.

    Args:
        mask_tokens_out: (B, M, C) the mask tokens after the two-way transformer.
        upscaled: (B, C', 4H, 4W) the upscaled image embedding (C' = C/8).
        mlps: M modules C -> C', one per mask token.

    Returns:
        (B, M, 4H, 4W) mask logits.
    """
    hyper_in = hypernetwork_weights(mask_tokens_out, mlps)  # (B, M, C')
    masks = hyper_in @ upscaled.flatten(2)  # (B, M, C') @ (B, C', 4H*4W) -> (B, M, 4H*4W)
    return masks.unflatten(2, upscaled.shape[-2:])  # (B, M, 4H, 4W)


def hypernetwork_weights(mask_tokens_out: torch.Tensor, mlps) -> torch.Tensor:
    """Each mask token through its own MLP: (B, M, C) and M modules -> (B, M, C'), the weights
    of the M per-pixel classifiers."""
    return torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(mlps)], dim=1)


class MLP(nn.Module):
    """A plain MLP: Linear layers with ReLU between them (and an optional final sigmoid)."""

    def __init__(
        self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        pairs = zip(dims[:-1], dims[1:], strict=True)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in pairs)
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., input_dim) -> (..., output_dim)."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x
