"""Where do the words point? A text token against every location of the image embedding.

Not in the paper (samteach's own). The decoder finds a text prompt's object by attention: its
token is compared with the image embedding, location by location. The same comparison, made
directly -- the cosine of the token with each of the h x w embedding vectors -- is a map of
where the token points (:func:`grounding_map`). Training shapes it (``--text-grounding``,
:func:`~samteach.training.losses.grounding_loss`), and at inference its peak is a click the
model can give itself (:func:`peak_location`; ``SamPredictor.predict(text=..., text_click=True)``).

Shapes: n tokens, C channels, h/w the embedding grid.
"""

from math import ceil

import torch
import torch.nn.functional as F

__all__ = ["grounding_map", "peak_location", "peak_point"]


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


def peak_point(grounding: torch.Tensor, input_size: tuple[int, int], img_size: int
               ) -> tuple[float, float]:
    """The click where one (h, w) map peaks: pixel (x, y) in the model's input frame.

    The map covers the padded img_size x img_size input; the image fills its top-left
    ``input_size`` = (rows, columns) of pixels, so the peak is searched there, and the click is
    the centre of the peak's location (kept inside the image where a location overhangs it).
    """
    stride = img_size / grounding.shape[1]  # input pixels per location
    in_h, in_w = input_size
    row, col = peak_location(grounding, (ceil(in_h / stride), ceil(in_w / stride)))
    return min((col + 0.5) * stride, in_w - 0.5), min((row + 0.5) * stride, in_h - 0.5)
