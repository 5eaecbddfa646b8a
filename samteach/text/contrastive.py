"""CLIP's training objective: the symmetric InfoNCE loss with a learnable temperature.

A batch of B (image, caption) pairs gives a B x B matrix of cosine similarities, scaled by
exp(t) (t learnable; CLIP starts at t = log(1/0.07)). Row i is a B-way classification "which
caption belongs to image i?", column j the same for caption j; the loss is the mean of the two
cross-entropies with the diagonal as the answer (Radford et al. 2021, Fig. 3).

One change for captions from a small grammar: in a batch of 256 crops, "liquid" is the caption
of several of them, and CLIP's loss would push each such crop *away* from a caption that is true
of it. ``positives`` says which captions are true of which crops; each row (and column) then
spreads its answer evenly over its true partners. Without it (web captions are nearly all
distinct) the loss is exactly CLIP's.
"""

import torch
import torch.nn.functional as F

__all__ = ["contrastive_loss"]


def contrastive_loss(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                     log_scale: torch.Tensor,
                     positives: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D) image and (B, D) text embeddings of B matching pairs, log_scale () -> scalar.

    ``positives`` (B, B) bool, [i, j]: caption j is true of image i (the diagonal must be);
    None: only the pairs themselves, CLIP's loss.
    """
    if image_embeddings.shape != text_embeddings.shape or image_embeddings.dim() != 2:
        raise ValueError(f"image_embeddings and text_embeddings must both be (B, D); got "
                         f"{tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}")
    images = F.normalize(image_embeddings, dim=-1)
    texts = F.normalize(text_embeddings, dim=-1)
    logits = log_scale.exp() * images @ texts.T  # (B, B): [i, j] image i against caption j
    if positives is None:
        answers = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, answers) + F.cross_entropy(logits.T, answers)) / 2
    B = len(logits)
    if positives.shape != (B, B) or positives.dtype != torch.bool \
            or not positives.diagonal().all():
        raise ValueError(f"positives must be ({B}, {B}) bool with a true diagonal (each pair "
                         f"matches itself); got {tuple(positives.shape)} {positives.dtype}")
    targets = positives.float()
    rows = F.cross_entropy(logits, targets / targets.sum(1, keepdim=True))
    cols = F.cross_entropy(logits.T, (targets / targets.sum(0, keepdim=True)).T)
    return (rows + cols) / 2
