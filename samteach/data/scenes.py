"""Synthetic lab scenes: glassware on a bench, with every instance mask known exactly.

The lecture's running example is LabPicsV1: photos of beakers, flasks and bottles holding
liquids, solids and foams. The course cannot download it, so we draw look-alikes: simple, but
with the properties that make segmentation interesting --

* nested instances: a liquid *inside* its beaker, a label *on* its bottle. Clicking the
  liquid is ambiguous (the liquid? the whole beaker?) -- exactly what SAM's three multimask
  outputs answer;
* transparent-ish glass, so an object's colour is mixed with whatever is behind it;
* occlusion: vessels nearer the viewer hide parts of those behind them;
* small things (tubes, caps), touching things, unlabelled clutter, shading and noise.

``make_scene(seed, size)`` draws one scene as a :class:`SegmentationRecord`. The same seed
gives the same pixels on every machine: randomness comes only from numpy's PCG64 generator
(bit-exact across platforms) and the drawing uses only +, -, *, / and comparisons -- no
sin/exp, whose last bits may differ between CPUs.

Masks follow LabPics' two layers: *objects* (vessels, caps) never overlap each other -- the
nearest one owns a pixel -- and *parts* (contents, labels) never overlap each other but each
lies inside its object.

Shapes: H/W image height and width; N instances.
"""

from dataclasses import dataclass

import numpy as np

from ..utils.arguments import validate_int, validate_number
from .canvas import Canvas, check_scene_args
from .record import SegmentationRecord

__all__ = ["CLASS_NAMES", "SceneConfig", "make_scene", "make_scenes"]

VESSELS = ("beaker", "flask", "tube", "bottle")
CONTENTS = ("liquid", "solid", "powder", "foam")
CLASS_NAMES = VESSELS + ("cap", "label") + CONTENTS


@dataclass(frozen=True)
class SceneConfig:
    """How busy a scene is. Sizes are fractions of the image's shorter side."""

    min_vessels: int = 2
    max_vessels: int = 5
    empty_probability: float = 0.15  # vessels with nothing inside
    label_probability: float = 0.35  # bottles and beakers with a paper label
    clutter: int = 4  # unlabelled background shapes: things SAM may segment, the dataset ignores
    noise: int = 6  # +/- grey levels of pixel noise, like a phone camera's
    min_area: float = 0.0004  # drop instances smaller than this share of the image

    def __post_init__(self) -> None:
        for name in ("min_vessels", "max_vessels"):
            validate_int(getattr(self, name), name)
        if self.min_vessels > self.max_vessels:
            raise ValueError(f"need min_vessels <= max_vessels; got {self.min_vessels}, "
                             f"{self.max_vessels}")
        for name in ("empty_probability", "label_probability"):
            validate_number(getattr(self, name), name, 0, 1)
        for name in ("clutter", "noise"):
            validate_int(getattr(self, name), name, low=0)
        validate_number(self.min_area, "min_area", 0, 1, expected="a share of the image in [0, 1]")


def make_scene(
    seed: int, size: int | tuple[int, int] = 128, config: SceneConfig | None = None
) -> SegmentationRecord:
    """Draw the lab scene number ``seed`` at ``size`` (an int for a square, or (H, W))."""
    seed, (height, width) = check_scene_args(seed, size)
    config = config or SceneConfig()
    rng = np.random.default_rng(seed)
    canvas = Canvas(height, width)
    horizon = _draw_background(canvas, rng, config.clutter)
    count = int(rng.integers(config.min_vessels, config.max_vessels + 1))
    placements = sorted((_place_vessel(rng, canvas, horizon) for _ in range(count)),
                        key=lambda p: p["bottom"])  # far (higher on the bench) to near
    for placement in placements:
        _draw_vessel(canvas, rng, placement, config)
    canvas.add_noise(rng, config.noise)
    return canvas.record(int(config.min_area * height * width), image_id=f"scene-{seed}")


def make_scenes(
    n: int, size: int | tuple[int, int] = 128, seed: int = 0, config: SceneConfig | None = None
) -> list[SegmentationRecord]:
    """Scenes ``seed``, ``seed + 1``, ..., ``seed + n - 1``."""
    return [make_scene(seed + i, size, config) for i in range(n)]


def _color(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, 3).astype(np.float32)


def _draw_background(canvas: Canvas, rng: np.random.Generator, clutter: int) -> float:
    """A wall above a bench, lit from above, with some unlabelled clutter. Returns the horizon."""
    H = canvas.height
    horizon = float(rng.uniform(0.35, 0.6)) * H
    wall, bench = _color(rng, 150, 235), _color(rng, 90, 200)
    ys = np.arange(H, dtype=np.float32)[:, None, None] + 0.5
    light = 1.1 - 0.25 * ys / H  # brighter at the top, darker towards the viewer
    canvas.image[:] = np.where(ys < horizon, wall, bench) * light
    if rng.random() < 0.5:  # wall tiles: faint grout lines
        step = max(4, int(rng.uniform(0.08, 0.16) * canvas.unit))
        grout = canvas.image[: int(horizon)]
        grout[::step] *= 0.85
        grout[:, ::step] *= 0.85
    for _ in range(clutter):
        _draw_clutter(canvas, rng, horizon)
    return horizon


def _draw_clutter(canvas: Canvas, rng: np.random.Generator, horizon: float) -> None:
    """A dim sheet of paper, a shelf or a blob: part of the scene, not of the dataset."""
    u = canvas.unit
    cy = float(rng.uniform(0, canvas.height))
    cx = float(rng.uniform(0, canvas.width))
    ry, rx = float(rng.uniform(0.03, 0.12)) * u, float(rng.uniform(0.05, 0.2)) * u
    where, ys, xs = canvas.window(cy - ry, cy + ry, cx - rx, cx + rx)
    dy, dx = (ys - cy) / ry, (xs - cx) / rx
    mask = dx * dx + dy * dy <= 1.0 if rng.random() < 0.5 else (abs(dy) <= 1) & (abs(dx) <= 1)
    canvas.paint(where, mask, _color(rng, 40, 240), alpha=float(rng.uniform(0.3, 0.7)))


def _place_vessel(rng: np.random.Generator, canvas: Canvas, horizon: float) -> dict:
    """Kind, size and position of one vessel standing on the bench."""
    u, H, W = canvas.unit, canvas.height, canvas.width
    kind = VESSELS[int(rng.integers(len(VESSELS)))]
    width, height = {
        "beaker": (rng.uniform(0.14, 0.26), rng.uniform(0.2, 0.38)),
        "flask": (rng.uniform(0.18, 0.3), rng.uniform(0.26, 0.44)),
        "tube": (rng.uniform(0.05, 0.08), rng.uniform(0.16, 0.3)),
        "bottle": (rng.uniform(0.13, 0.22), rng.uniform(0.3, 0.5)),
    }[kind]
    width, height = float(width) * u, float(height) * u
    bottom = float(rng.uniform(horizon + 0.05 * H, H - 0.03 * H))
    center = float(rng.uniform(width / 2, W - width / 2))
    return {"kind": kind, "width": width, "height": height, "bottom": bottom, "center": center}


def _draw_vessel(canvas: Canvas, rng: np.random.Generator, p: dict, config: SceneConfig):
    """Glass body, then contents, label and cap: each a new instance."""
    cx, bottom, w, h = p["center"], p["bottom"], p["width"], p["height"]
    wall = max(1.0, 0.012 * canvas.unit)
    where, ys, xs = canvas.window(bottom - h, bottom, cx - w / 2 - wall, cx + w / 2 + wall)
    half = _half_width(p["kind"], ys, bottom - h, bottom, w)  # (h, 1): the outline, row by row
    dx = abs(xs - cx)
    body = (dx <= half) & (ys >= bottom - h) & (ys <= bottom)
    if p["kind"] == "tube":  # a round bottom
        r = w / 2
        body &= (ys <= bottom - r) | ((xs - cx) ** 2 + (ys - (bottom - r)) ** 2 <= r * r)
    cavity = body & (dx <= half - wall) & (ys <= bottom - wall)

    vessel = canvas.new_instance(p["kind"])
    canvas.claim_object(where, body, vessel)
    tint = _color(rng, 200, 255)
    canvas.paint(where, cavity, tint, alpha=0.18)  # thin glass: mostly see-through
    canvas.paint(where, body & ~cavity, tint * 0.8, alpha=0.7)  # walls catch the light
    if rng.random() >= config.empty_probability:
        _draw_contents(canvas, rng, where, ys, xs, cavity, cx, vessel)
    highlight = body & (abs(xs - (cx - 0.22 * w)) <= wall)
    canvas.paint(where, highlight, (255, 255, 255), alpha=0.45)
    if p["kind"] in ("beaker", "bottle") and rng.random() < config.label_probability:
        _draw_label(canvas, rng, where, ys, xs, body, cx, bottom, w, h, vessel)
    if p["kind"] == "bottle":
        _draw_cap(canvas, rng, cx, bottom - h, 0.45 * w, wall)


def _half_width(kind: str, ys: np.ndarray, top: float, bottom: float, w: float) -> np.ndarray:
    """Half the vessel's width on each row: its silhouette."""
    half = np.full_like(ys, w / 2)
    if kind == "flask":  # a narrow neck, then a cone widening to the base
        neck, shoulder = 0.18 * w, top + 0.3 * (bottom - top)
        t = np.clip((ys - shoulder) / (bottom - shoulder), 0.0, 1.0)
        half = np.where(ys < shoulder, neck, neck + (w / 2 - neck) * t)
    elif kind == "bottle":  # neck, sloping shoulder, straight body
        neck = 0.22 * w
        neck_end, shoulder_end = top + 0.22 * (bottom - top), top + 0.35 * (bottom - top)
        t = np.clip((ys - neck_end) / (shoulder_end - neck_end), 0.0, 1.0)
        half = np.where(ys < neck_end, neck, neck + (w / 2 - neck) * t)
    elif kind == "beaker":  # a lip at the rim
        half = np.where(ys < top + 0.04 * (bottom - top) + 1, w / 2 + 0.06 * w, half)
    return half


def _draw_contents(canvas, rng, where, ys, xs, cavity, cx: float, vessel: int) -> None:
    """Solid or powder on the bottom, liquid above it, foam on the liquid: layers, bottom up."""
    rows = np.flatnonzero(cavity.any(axis=1))
    if len(rows) < 3:
        return
    top, base = float(ys[rows[0], 0]), float(ys[rows[-1], 0])
    span = base - top
    spread = (xs - cx) / max(1.0, float(abs(xs - cx).max()))  # -1..1 across the vessel
    kinds = [["liquid"], ["solid"], ["liquid", "solid"], ["liquid", "foam"], ["powder"]][
        int(rng.choice(5, p=[0.45, 0.12, 0.18, 0.15, 0.10]))]
    sediment = np.zeros_like(cavity)
    if "solid" in kinds or "powder" in kinds:  # a mound, highest in the middle
        mound = float(rng.uniform(0.15, 0.4)) * span
        sediment = cavity & (ys >= base - mound * (1.0 - 0.6 * spread * spread))
        _fill(canvas, rng, where, ys, sediment, "powder" if "powder" in kinds else "solid",
              vessel, grain=True)
    if "liquid" in kinds:
        level = top + float(rng.uniform(0.1, 0.6)) * span
        surface = level - 0.04 * span * spread * spread  # the meniscus curves up at the walls
        _fill(canvas, rng, where, ys, cavity & (ys >= surface) & ~sediment, "liquid", vessel)
        if "foam" in kinds:
            thickness = float(rng.uniform(0.06, 0.15)) * span
            foam = cavity & (ys < surface) & (ys >= surface - thickness)
            _fill(canvas, rng, where, ys, foam, "foam", vessel)


def _fill(canvas, rng, where, ys, mask, name: str, vessel: int, grain: bool = False) -> None:
    """One content instance: claim its pixels and paint it, darker deeper down."""
    if not mask.any():
        return
    index = canvas.new_instance(name, parent=vessel)
    canvas.claim_part(where, mask, index, vessel)
    color = _color(rng, 235, 255) if name == "foam" else _color(rng, 20, 230)
    if name == "powder":  # a powder is pale (ground fine, it scatters light), a solid is not
        color = 0.6 * np.asarray(color, np.float32) + 0.4 * 255.0
    canvas.show_color(index)
    top = float(ys[np.flatnonzero(mask.any(axis=1))[0], 0])
    depth = np.clip((ys - top) / (0.5 * canvas.unit), 0.0, 1.0)
    shade = np.broadcast_to((1.0 - 0.35 * depth)[..., None], (*mask.shape, 3)) * color
    if grain:  # a solid is coarse grain; a powder's grain is too fine to see but faintly
        grain_noise = rng.integers(-25, 26, (*mask.shape, 1)).astype(np.float32)
        shade = shade + (0.3 if name == "powder" else 1.0) * grain_noise
    canvas.paint(where, mask, shade, alpha=0.9 if grain or name == "foam" else 0.75)


def _draw_label(canvas, rng, where, ys, xs, body, cx, bottom, w, h, vessel: int) -> None:
    """A paper label on the body, with a few dark 'text' lines."""
    top = bottom - float(rng.uniform(0.3, 0.55)) * h
    height = float(rng.uniform(0.15, 0.25)) * h
    label = body & (abs(xs - cx) <= 0.36 * w) & (ys >= top) & (ys <= top + height)
    if label.sum() < 4:
        return
    index = canvas.new_instance("label", parent=vessel)
    canvas.claim_part(where, label, index, vessel)
    paper = _color(rng, 200, 255)
    canvas.show_color(index)
    canvas.paint(where, label, paper)
    step = max(2.0, height / 4)
    lines = label & ((ys - top) % step < 0.5 * step) & ((ys - top) > 0.5 * step) \
        & (abs(xs - cx) <= 0.25 * w)
    canvas.paint(where, lines, (40, 40, 40), alpha=0.6)


def _draw_cap(canvas, rng, cx: float, top: float, width: float, wall: float) -> None:
    """A screw cap on the bottle's neck: an object of its own, not part of the bottle."""
    height = max(2.0, 0.4 * width)
    where, ys, xs = canvas.window(top - height, top + wall, cx - width / 2, cx + width / 2)
    cap = (abs(xs - cx) <= width / 2) & (ys >= top - height) & (ys <= top + wall)
    index = canvas.new_instance("cap")
    canvas.claim_object(where, cap, index)
    color = _color(rng, 20, 240)
    canvas.show_color(index)
    ridges = ((xs - cx) % 3.0 < 1.0)  # vertical grip ridges
    canvas.paint(where, cap, color)
    canvas.paint(where, cap & ridges, color * 0.7)
