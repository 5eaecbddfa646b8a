"""CLIP's training objective: the symmetric InfoNCE loss with a learnable temperature.

A batch of B (image, caption) pairs gives a B x B matrix of cosine similarities, scaled by
exp(t) (t learnable; CLIP starts at t = log(1/0.07)). Row i is a B-way classification "which
caption belongs to image i?", column j the same for caption j; the loss is the mean of the two
cross-entropies with the diagonal as the answer (Radford et al. 2021, Fig. 3).
"""

import torch
import torch.nn.functional as F

__all__ = ["contrastive_loss"]


def contrastive_loss(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                     log_scale: torch.Tensor) -> torch.Tensor:
    """(B, D) image and (B, D) text embeddings of B matching pairs, log_scale () -> scalar."""
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.dim() != 2:
        raise ValueError(f"image_embeddings and text_embeddings must both be (B, D); got "
                         f"{tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}")
    images = F.normalize(image_embeddings, dim=-1)
    texts = F.normalize(text_embeddings, dim=-1)
    logits = log_scale.exp() * images @ texts.T  # (B, B): [i, j] image i against caption j
    answers = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, answers) + F.cross_entropy(logits.T, answers)) / 2
