"""A tiny CLIP (Radford et al. 2021) for the course's scenes: an image tower over object crops, a
text tower over captions, both ending in one shared D-dim space where a crop and its caption
meet. SAM's text prompting (§7.5) needs exactly that: trained with CLIP *image* embeddings of
objects, prompted with CLIP *text* embeddings of phrases.

Shapes: B crops or captions, L tokens, C channels of a tower, D the shared embedding width.
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..utils.arguments import validate_int
from ..utils.files import atomic_write
from .contrastive import contrastive_loss
from .tokenizer import WordTokenizer

__all__ = ["CLIP_DIR", "TinyClip", "TinyClipConfig", "load_clip", "save_clip"]

CLIP_DIR = Path(__file__).resolve().parent.parent / "weights" / "clip"  # the shipped CLIPs


@dataclass(frozen=True)
class TinyClipConfig:
    """The towers' sizes; the defaults train in minutes on a CPU."""

    # Crops are resized to this square. The tiny SAM sees 128 px scenes, where most objects
    # span 15-60 px: 32 px keeps their textures (stripes, dots) and costs 1/4 of 64 px.
    image_size: int = 32
    image_width: int = 32  # channels of the first conv stage (doubled at each of 3 stages)
    text_width: int = 128
    text_layers: int = 2
    text_heads: int = 4
    context: int = 12  # tokens per caption, <bos> and <eos> included
    embed_dim: int = 128  # D, the shared space

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            validate_int(value, name)


class TinyClip(nn.Module):
    """``encode_image`` (B, 3, S, S) crops in 0..255 and ``encode_text`` (B, L) token ids to
    (B, D) embeddings (not normalised); ``forward`` gives the contrastive loss of B pairs."""

    # The modules that make the image embeddings: all a SAM's text token is trained on.
    IMAGE_SIDE = ("image_tower", "image_projection")

    def __init__(self, config: TinyClipConfig = TinyClipConfig(),
                 tokenizer: WordTokenizer | None = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer or WordTokenizer()
        c = config.image_width
        stages = []
        for i, (cin, cout) in enumerate(((3, c), (c, 2 * c), (2 * c, 4 * c))):
            stages += [nn.Conv2d(cin, cout, 3, stride=1 if i == 0 else 2, padding=1),
                       nn.BatchNorm2d(cout), nn.GELU(),
                       nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.GELU()]
        self.image_tower = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.image_projection = nn.Linear(4 * c, config.embed_dim)
        w = config.text_width
        self.token_embedding = nn.Embedding(len(self.tokenizer), w)
        self.position_embedding = nn.Parameter(torch.randn(config.context, w) * 0.01)
        layer = nn.TransformerEncoderLayer(w, config.text_heads, 4 * w, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.text_tower = nn.TransformerEncoder(layer, config.text_layers,
                                                enable_nested_tensor=False)
        self.text_norm = nn.LayerNorm(w)
        self.text_projection = nn.Linear(w, config.embed_dim)
        # exp(log_scale) multiplies the cosine similarities; CLIP starts at 1 / 0.07
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops, 0..255 -> (B, D)."""
        x = crops.float() / 127.5 - 1.0  # to [-1, 1]
        return self.image_projection(self.image_tower(x))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, D): the features at each caption's <eos>.

        A causal mask, as in CLIP: each token sees only those before it, so <eos>, the last,
        is the one that has read the whole caption.
        """
        L = tokens.shape[1]
        x = self.token_embedding(tokens) + self.position_embedding[:L]  # (B, L, C)
        causal = torch.ones(L, L, dtype=torch.bool, device=tokens.device).triu(1)  # True: hidden
        x = self.text_tower(x, mask=causal)
        ends = (tokens == self.tokenizer.EOS).float().argmax(dim=1)  # (B,) the <eos> positions
        x = self.text_norm(x[torch.arange(len(tokens), device=tokens.device), ends])  # (B, C)
        return self.text_projection(x)

    def embed_text(self, texts: str | list[str]) -> torch.Tensor:
        """Captions -> (B, D) embeddings, ℓ2-normalised (what a text prompt carries)."""
        tokens = self.tokenizer.encode(texts, self.config.context)
        return nn.functional.normalize(self.encode_text(tokens.to(self.log_scale.device)), dim=-1)

    def embed_images(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops, 0..255 -> (B, D) embeddings, ℓ2-normalised (SAM's training
        prompt)."""
        return nn.functional.normalize(self.encode_image(crops), dim=-1)

    def forward(self, crops: torch.Tensor, tokens: torch.Tensor,
                positives: torch.Tensor | None = None) -> torch.Tensor:
        """B (crop, caption) pairs -> the symmetric InfoNCE loss (``positives``: see
        :func:`contrastive_loss`)."""
        return contrastive_loss(self.encode_image(crops), self.encode_text(tokens),
                                self.log_scale, positives)


def save_clip(model: TinyClip, path: str | Path) -> None:
    """Weights as safetensors; the config and the vocabulary in its metadata."""
    from safetensors.torch import save_file

    metadata = {"format": "pt", "tiny_clip_config": json.dumps(asdict(model.config)),
                "words": json.dumps(model.tokenizer.words[3:])}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_clip(source: str | Path = "tiny_clip") -> nn.Module:
    """A CLIP in eval mode: a TinyClip from a file or by the name of a shipped one
    (``tiny_clip``), or ``"hf:FOLDER"``, a Hugging Face CLIP (:class:`~samteach.text.HFClip`)."""
    from safetensors import SafetensorError, safe_open

    if isinstance(source, str) and source.startswith("hf:"):
        from .hf import HFClip

        return HFClip.from_pretrained(source[3:])
    path = Path(source)
    if not path.suffix and not path.exists():
        path = CLIP_DIR / f"{source}.safetensors"
        if not path.is_file():
            shipped = sorted(p.stem for p in CLIP_DIR.glob("*.safetensors"))
            raise ValueError(f"no shipped CLIP named {source!r}; samteach ships {shipped} "
                             "(train one with python -m samteach.text.train)")
    if not path.is_file():
        raise FileNotFoundError(f"CLIP checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state_dict = {key: f.get_tensor(key) for key in f.keys()}
        config = TinyClipConfig(**json.loads(metadata["tiny_clip_config"]))
        words = tuple(json.loads(metadata["words"]))
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a samteach TinyClip checkpoint: {err}") from None
    model = TinyClip(config, WordTokenizer(words))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
