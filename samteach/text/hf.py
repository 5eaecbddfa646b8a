"""Any real CLIP for text prompts: a Hugging Face ``transformers`` CLIP model behind the two
methods samteach's text prompting calls, so a user with real CLIP weights can train SAM's text
projection on real CLIP image embeddings and prompt it with real words.

    clip = HFClip.from_pretrained("path/to/clip-vit-base-patch32")   # a local folder
    python -m samteach.train ... --text-share 0.5 --clip hf:path/to/clip-vit-base-patch32

``transformers`` is an optional extra (``pip install samteach[clip]``); the course never needs
it. The paper used CLIP ViT-L/14@336 (App. D.5); any CLIP with ``get_text_features`` and
``get_image_features`` fits.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["HFClip"]

# The pixel statistics every OpenAI CLIP was trained with (on the 0..1 scale).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipShape:
    """What samteach reads of a CLIP: its embedding width D and its image side."""

    embed_dim: int
    image_size: int


class HFClip(torch.nn.Module):
    """A ``transformers`` CLIP model and its tokenizer, frozen, as samteach's CLIP."""

    def __init__(self, model, tokenizer) -> None:
        super().__init__()
        for method in ("get_text_features", "get_image_features"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"model must be a transformers CLIP model with {method}; got "
                                f"{type(model).__name__}")
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be a transformers tokenizer; got "
                            f"{type(tokenizer).__name__}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.config = ClipShape(int(model.config.projection_dim),
                                int(model.config.vision_config.image_size))
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).reshape(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_pretrained(cls, path: str) -> "HFClip":
        """Model and tokenizer from a local folder (or a hub name, if the machine is online)."""
        try:
            from transformers import AutoTokenizer, CLIPModel
        except ImportError:
            raise ImportError("HFClip needs the optional transformers package: pip install "
                              "'samteach[clip]'") from None
        return cls(CLIPModel.from_pretrained(path), AutoTokenizer.from_pretrained(path))

    @torch.no_grad()
    def embed_text(self, texts: str | list[str]) -> torch.Tensor:
        """Captions -> (B, D) text embeddings, ℓ2-normalised."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"text must be non-empty words, e.g. 'the blue liquid'; got "
                                 f"{text!r}")
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        tokens = {k: v.to(self.mean.device) for k, v in tokens.items()}
        return F.normalize(_features(self.model.get_text_features(**tokens)), dim=-1)

    @torch.no_grad()
    def embed_images(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops, 0..255 -> (B, D) image embeddings, ℓ2-normalised."""
        size = self.config.image_size
        x = F.interpolate(crops.float() / 255.0, size=(size, size), mode="bicubic",
                          align_corners=False)
        x = (x.clamp(0, 1) - self.mean) / self.std
        return F.normalize(_features(self.model.get_image_features(pixel_values=x)), dim=-1)


def _features(output) -> torch.Tensor:
    """The (B, D) projected features (newer transformers wrap them in an output object)."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output
