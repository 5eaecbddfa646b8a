"""Checkpoint files: reading them without running code, writing them, loading them strictly.

Official ``.pth`` files are read with ``torch.load(weights_only=True)``, samteach files are
safetensors with the model's config in their metadata. Loading is strict: a missing,
unexpected or mis-shaped key is an error that lists them all (and guesses the right preset);
position tables saved at another input size are resized.
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import PRESETS, SamConfig, config_from_dict, config_to_dict
from .modeling import Sam
from .utils.files import atomic_write

__all__ = [
    "WEIGHTS_DIR",
    "CheckpointMismatchError",
    "guess_preset",
    "load_checkpoint",
    "load_state_dict",
    "read_checkpoint",
    "save_checkpoint",
    "shipped_weights",
]

_CONFIG_KEY = "samteach_config"


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not fit the model it is loaded into."""


WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(name: str | None = None) -> Path | list[str]:
    """The path of the shipped weights ``name``; with no name, the names that exist."""
    available = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))
    if name is None:
        return available
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        raise ValueError(f"no shipped weights named {name!r}; samteach ships {available or 'none'}"
                         " (train your own with python -m samteach.train)")
    return path


# ------------------------------------------------------------------------------ reading files
def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], SamConfig | None]:
    """A state dict from a ``.pth`` (weights only) or ``.safetensors`` file, and the samteach
    config stored in a safetensors file (None for official checkpoints)."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"checkpoint must be a file path; got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:2] == b"PK" or head[:1] == b"\x80":  # torch.save zip archive / legacy pickle
        return _read_torch(path), None
    return _read_safetensors(path)


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt archive, or a pickle that holds code
        raise ValueError(f"checkpoint {path} is not a readable PyTorch state dict of tensors "
                         f"(samteach never unpickles code): {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from None
    for wrapper in ("model", "state_dict"):  # training scripts often nest the weights
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"checkpoint {path} must hold a dict of tensors (a state dict); got "
                         f"{type(data).__name__}")
    return data


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], SamConfig | None]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state_dict = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"checkpoint {path} is neither a PyTorch (.pth) nor a safetensors "
                         f"file, or it is corrupt: {err}") from None
    config = None
    if _CONFIG_KEY in metadata:
        try:
            stored = json.loads(metadata[_CONFIG_KEY])
        except json.JSONDecodeError as err:
            raise ValueError(f"checkpoint {path}: its metadata {_CONFIG_KEY!r} (the model's "
                             f"config) is not JSON: {err}") from None
        try:
            config = config_from_dict(stored)
        except ValueError as err:
            raise ValueError(f"checkpoint {path}: {err}") from None
    return state_dict, config


def save_checkpoint(sam: Sam, path: str | Path) -> None:
    """Save ``sam``'s weights as safetensors, with its config in the metadata."""
    from safetensors.torch import save_file

    metadata = {"format": "pt"}
    config = getattr(sam, "config", None)
    if config is not None:
        metadata[_CONFIG_KEY] = json.dumps(config_to_dict(config))
    tensors = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}

    def write(tmp: str) -> None:
        from safetensors import SafetensorError

        try:
            save_file(tensors, tmp, metadata=metadata)
        except SafetensorError as err:  # its I/O errors (a full disk) are OSErrors to callers
            raise OSError(f"could not write checkpoint {path}: {err}") from None

    atomic_write(path, write)


def load_checkpoint(sam: Sam, path: str | Path, strict: bool = True) -> list[str]:
    """Read ``path`` and load it into ``sam`` (see :func:`load_state_dict`)."""
    state_dict, _ = read_checkpoint(path)
    return load_state_dict(sam, state_dict, strict=strict, source=f"checkpoint {path}")


# ------------------------------------------------------------------------------ loading
def load_state_dict(
    sam: torch.nn.Module, state_dict: dict[str, torch.Tensor], strict: bool = True,
    source: str = "state dict",
) -> list[str]:
    """Load weights, resizing position tables saved at another input size.

    A checkpoint trained at 1024 px has a 64x64 ``pos_embed`` and 127-entry relative position
    tables in its global blocks; at 512 px the model needs 32x32 and 63 entries. They are
    interpolated (bicubic for ``pos_embed``, linear for the tables, as ViTDet does) -- an
    approximation: the model was never trained at that size, so expect somewhat worse masks.

    Returns the names of the resized tensors. With ``strict``, any missing, unexpected or
    mis-shaped key raises :class:`CheckpointMismatchError` listing them all.
    """
    expected = sam.state_dict()
    state_dict, resized = _resize_position_tables(state_dict, expected)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(v.shape), tuple(expected[k].shape))
        for k, v in state_dict.items() if k in expected and v.shape != expected[k].shape
    ]
    if strict and (missing or unexpected or mismatched):
        raise CheckpointMismatchError(
            _mismatch_message(source, sam, state_dict, missing, unexpected, mismatched))
    skip = {k for k, _, _ in mismatched}
    sam.load_state_dict({k: v for k, v in state_dict.items() if k not in skip}, strict=strict)
    return resized


def _resize_position_tables(state_dict, expected):
    out, resized = dict(state_dict), []
    for key, value in state_dict.items():
        target = expected.get(key)
        if target is None or value.shape == target.shape or value.dim() != target.dim():
            continue
        if key.endswith("image_encoder.pos_embed") and value.shape[-1] == target.shape[-1]:
            grid = value.permute(0, 3, 1, 2).float()  # (1, C, H, W)
            grid = F.interpolate(grid, size=tuple(target.shape[1:3]), mode="bicubic",
                                 align_corners=False)
            out[key] = grid.permute(0, 2, 3, 1).to(value.dtype)
            resized.append(key)
        elif key.endswith((".rel_pos_h", ".rel_pos_w")) and value.shape[1] == target.shape[1]:
            table = value.T.unsqueeze(0).float()  # (1, c, L)
            table = F.interpolate(table, size=target.shape[0], mode="linear")
            out[key] = table[0].T.to(value.dtype)
            resized.append(key)
    return out, resized


def _mismatch_message(source, sam, state_dict, missing, unexpected, mismatched) -> str:
    def listing(title, items):
        shown = "\n".join(f"    {item}" for item in items[:12])
        more = f"\n    ... and {len(items) - 12} more" if len(items) > 12 else ""
        return f"  {title} ({len(items)}):\n{shown}{more}" if items else ""

    lines = [f"{source} does not fit this model:"]
    lines += filter(None, [
        listing("missing keys", missing),
        listing("unexpected keys", unexpected),
        listing("shape mismatches (checkpoint vs model)",
                [f"{k}: {a} vs {b}" for k, a, b in mismatched]),
    ])
    guess = guess_preset(state_dict)
    model_name = getattr(getattr(sam, "config", None), "name", None)
    if guess is not None and guess != model_name:
        lines.append(f"  The checkpoint looks like preset {guess!r}"
                     + (f", but the model is {model_name!r}" if model_name else "")
                     + f": build it with build_sam({guess!r}, checkpoint).")
    return "\n".join(lines)


def guess_preset(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The preset whose encoder width and depth match a state dict, if any."""
    weight = state_dict.get("image_encoder.patch_embed.proj.weight")
    if weight is None:
        return None
    blocks = {k.split(".")[2] for k in state_dict if k.startswith("image_encoder.blocks.")}
    for name, config in PRESETS.items():
        enc = config.image_encoder
        if (enc.embed_dim, enc.depth, enc.patch_size) == (weight.shape[0], len(blocks),
                                                          weight.shape[-1]):
            return name
    return None
