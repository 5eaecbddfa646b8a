"""Where do the words point? A text token against every location of the image embedding.

Not in the paper (samteach's own). The decoder finds a text prompt's object by attention: its
token is compared with the image embedding, location by location. The same comparison, made
directly -- the cosine of the token with each of the h x w embedding vectors -- is a map of
where the token points (:func:`grounding_map`). Training shapes it (``--text-grounding``,
:func:`~samteach.training.losses.grounding_loss`), and at inference its peak is a click the
model can give itself (:func:`peak_location`; ``SamPredictor.predict(text=..., text_click=True)``).

Shapes: n tokens, C channels, h/w the embedding grid.
"""

import torch
import torch.nn.functional as F

__all__ = ["grounding_map", "peak_location"]


def grounding_map(tokens: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine of each token with every location of its image embedding: (n, C), (n, C, h, w)
    -> (n, h, w), in [-1, 1]."""
    return torch.einsum("nc,nchw->nhw", F.normalize(tokens, dim=-1),
                        F.normalize(embeddings, dim=1))


def peak_location(grounding: torch.Tensor, valid: tuple[int, int] | None = None
                  ) -> tuple[int, int]:
    """(row, column) of the largest value of one (h, w) map; ``valid`` = (rows, columns) keeps
    the search inside the top-left part that covers the image (the rest is padding)."""
    rows, cols = valid if valid is not None else grounding.shape
    index = int(grounding[:rows, :cols].argmax())
    return divmod(index, cols)
