"""Scenes of "anything": shapes of many kinds, textures, occlusion and parts, any image size.

SAM was trained to segment *anything*, not one kind of scene: SA-1B holds 1.1 billion masks of
every kind of thing. A model trained on the lab scenes alone learns glassware and little else --
given a flat green rectangle on a gradient it returns a blotch. These scenes teach the general
skill at course scale: where does the thing under the click end?

* **shapes** (:data:`SHAPES`): rectangles, triangles, polygons, ellipses, stars, blobs, rings
  with a hole, thin bars and curved strokes -- convex, concave, thin and holed;
* **textures** (:data:`TEXTURES`) for objects *and* backgrounds: flat, gradient, stripes,
  checks, cloudy noise, dots, and patches cut from a lab scene -- so edges of colour inside an
  object (a stripe) are not taken for its boundary;
* **occlusion stacks**: objects piled on one another, the nearer one hiding the others;
* **parts**: a shape on a shape (and sometimes one more on that), each with its own mask and
  ``parents`` entry -- the whole/part/subpart ambiguity of a single click;
* sizes from about 0.5 % to 60 % of the image, colour and contrast jitter (some objects barely
  differ from what is behind them), and any (H, W): non-square images included.

``make_generic_scene(seed, size)`` draws one scene (at least one instance) as a
:class:`SegmentationRecord`, like the lab scenes' :func:`~samteach.data.make_scene`, and just
as reproducibly: only numpy's PCG64
generator and +, -, *, /, sqrt and comparisons (directions come from points on a square's
outline, normalised, instead of from angles), so the same seed gives the same pixels on every
machine. ``class_names`` are the shape names.

Shapes: H/W image height and width, h/w a window of it, k polygon vertices.
"""

from dataclasses import dataclass

import numpy as np

from ..utils.arguments import validate_int, validate_number
from .canvas import Canvas, check_scene_args
from .record import SegmentationRecord
from .scenes import make_scene

__all__ = ["SHAPES", "TEXTURES", "GenericSceneConfig", "make_generic_scene",
           "make_generic_scenes"]

SHAPES = ("rectangle", "triangle", "polygon", "ellipse", "star", "blob", "ring", "bar", "stroke")
TEXTURES = ("flat", "gradient", "stripes", "checks", "noise", "dots", "patch")
_SHAPE_ODDS = (0.14, 0.11, 0.12, 0.14, 0.1, 0.11, 0.1, 0.09, 0.09)
_TEXTURE_ODDS = (0.34, 0.17, 0.12, 0.08, 0.13, 0.08, 0.08)
_STREAM = 0x5CE7E5  # the generic scenes' random stream: seed s here is not lab scene s


@dataclass(frozen=True)
class GenericSceneConfig:
    """How busy a generic scene is. Areas are shares of the image area."""

    min_objects: int = 1
    max_objects: int = 7
    min_object_area: float = 0.005  # object sizes are drawn log-uniformly in this range
    max_object_area: float = 0.6
    stack_probability: float = 0.35  # an object is put on top of an earlier one (occlusion)
    part_probability: float = 0.35  # an object gets a part drawn on it (whole/part)
    subpart_probability: float = 0.3  # ... and that part one of its own (whole/part/subpart)
    low_contrast_probability: float = 0.2  # an object coloured close to its surroundings
    noise: int = 5  # +/- grey levels of pixel noise (the amplitude is drawn up to this)
    min_area: float = 0.001  # drop instances with fewer visible pixels than this share
    # Which kinds may be drawn (their odds keep their proportions): e.g. only flat shapes.
    shapes: tuple[str, ...] = SHAPES
    object_textures: tuple[str, ...] = TEXTURES
    background_textures: tuple[str, ...] = TEXTURES

    def __post_init__(self) -> None:
        for name in ("min_objects", "max_objects"):
            validate_int(getattr(self, name), name)
        if self.min_objects > self.max_objects:
            raise ValueError(f"need min_objects <= max_objects; got {self.min_objects}, "
                             f"{self.max_objects}")
        for name in ("min_object_area", "max_object_area"):
            validate_number(getattr(self, name), name, 0, 1, low_open=True)
        if self.min_object_area > self.max_object_area:
            raise ValueError(f"need min_object_area <= max_object_area; got "
                             f"{self.min_object_area}, {self.max_object_area}")
        for name in ("stack_probability", "part_probability", "subpart_probability",
                     "low_contrast_probability"):
            validate_number(getattr(self, name), name, 0, 1)
        validate_int(self.noise, "noise", low=0)
        validate_number(self.min_area, "min_area", 0, 1, expected="a share of the image in [0, 1]")
        for name, known in (("shapes", SHAPES), ("object_textures", TEXTURES),
                            ("background_textures", TEXTURES)):
            value = tuple(getattr(self, name))
            object.__setattr__(self, name, value)
            if not value or not set(value) <= set(known):
                raise ValueError(f"{name} must be a non-empty selection of {known}; got {value}")

    @classmethod
    def simple(cls) -> "GenericSceneConfig":
        """A few flat rectangles, ellipses and triangles on a gradient: the easiest scene, the
        first thing a new user tries."""
        return cls(min_objects=2, max_objects=4, min_object_area=0.03, max_object_area=0.25,
                   stack_probability=0.0, part_probability=0.0, low_contrast_probability=0.0,
                   shapes=("rectangle", "ellipse", "triangle"), object_textures=("flat",),
                   background_textures=("gradient",))


def make_generic_scene(
    seed: int, size: int | tuple[int, int] = 128, config: GenericSceneConfig | None = None
) -> SegmentationRecord:
    """Draw the generic scene number ``seed`` at ``size`` (an int for a square, or (H, W))."""
    seed, (height, width) = check_scene_args(seed, size)
    config = config or GenericSceneConfig()
    rng = np.random.default_rng([_STREAM, seed])
    canvas = Canvas(height, width, levels=3)
    background = _Palette.random(rng)
    _fill_texture(canvas, rng, (slice(None), slice(None)), *_grid(canvas), background,
                  np.ones((height, width), bool), 1.0, config.background_textures)
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    areas = _log_uniform(rng, config.min_object_area, config.max_object_area, count)
    if rng.random() < 0.7:  # mostly big things at the back, small ones in front
        areas = np.sort(areas)[::-1]
    centres: list[tuple[float, float, float]] = []
    for area in areas:
        centre = _place(rng, canvas, float(area), centres, config.stack_probability)
        centres.append(centre)
        index = _draw_object(canvas, rng, centre, float(area), background, config)
        if index is not None and rng.random() < config.part_probability:
            part = _draw_part(canvas, rng, index, background, config)
            if part is not None and rng.random() < config.subpart_probability:
                _draw_part(canvas, rng, part, background, config)
    _jitter(canvas, rng, config.noise)
    min_area = int(config.min_area * height * width)
    record = canvas.record(min_area, image_id=f"generic-{seed}")
    while not len(record):  # rare (all too small, or hidden): one more object, on top
        area = float(rng.uniform(max(0.02, config.min_object_area),
                                 max(0.1, config.max_object_area / 2)))
        centre = _place(rng, canvas, area, [], 0.0)
        _draw_object(canvas, rng, centre, area, background, config)
        record = canvas.record(min_area, image_id=f"generic-{seed}")
    return record


def make_generic_scenes(
    n: int, size: int | tuple[int, int] = 128, seed: int = 0,
    config: GenericSceneConfig | None = None,
) -> list[SegmentationRecord]:
    """Generic scenes ``seed``, ``seed + 1``, ..., ``seed + n - 1``."""
    return [make_generic_scene(seed + i, size, config) for i in range(n)]


# ------------------------------------------------------------------------------ placing


def _log_uniform(rng, low: float, high: float, n: int) -> np.ndarray:
    """About log-uniform in [low, high] without log/exp: a random doubling of ``low``, then
    uniform within that octave."""
    octaves = 1
    while low * 2**octaves < high:
        octaves += 1
    doublings = rng.integers(0, octaves, n)
    return np.minimum(np.ldexp(low, doublings) * rng.uniform(1.0, 2.0, n), high)  # exact 2^k


def _grid(canvas: Canvas):
    """Pixel-centre coordinates of the whole canvas: ys (H, 1), xs (1, W)."""
    return canvas.window(0, canvas.height, 0, canvas.width)[1:]


def _place(rng, canvas: Canvas, area: float, earlier, stack_probability: float):
    """Centre (x, y) and radius of a new object: anywhere, or on top of an earlier one."""
    radius = float(np.sqrt(area * canvas.height * canvas.width / np.pi))
    if earlier and rng.random() < stack_probability:
        x, y, r = earlier[int(rng.integers(len(earlier)))]
        spread = 0.8 * r
        cx, cy = x + float(rng.uniform(-spread, spread)), y + float(rng.uniform(-spread, spread))
    else:
        cx, cy = float(rng.uniform(0, canvas.width)), float(rng.uniform(0, canvas.height))
    return (min(max(cx, 0.0), canvas.width - 1.0), min(max(cy, 0.0), canvas.height - 1.0),
            radius)


def _direction(p) -> tuple:
    """A unit vector for each p in [0, 4): the point p of the way round a diamond, normalised.

    A trigonometry-free stand-in for (cos, sin) of an angle 90 * p degrees (within 4 degrees),
    so that shapes are the same bits on every machine.
    """
    p = np.asarray(p, np.float64) % 4.0
    quadrant, t = np.floor(p), p - np.floor(p)
    x = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [1 - t, -t, t - 1], t)
    y = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [t, 1 - t, -t], t - 1)
    norm = np.sqrt(x * x + y * y)
    return x / norm, y / norm


# ------------------------------------------------------------------------------- shapes


def _shape_mask(rng, kind: str, canvas: Canvas, cx: float, cy: float, radius: float):
    """Rasterise one shape of about the given area (radius of the equal-area disc).

    Returns (where, ys, xs, mask) for the window around the shape, or None if it is off-canvas.
    """
    c, s = (float(v) for v in _direction(rng.uniform(0, 4)))  # the shape's orientation
    aspect = float(rng.uniform(1.0, 2.5))
    if kind in ("bar", "stroke"):
        thickness = max(1.6, float(rng.uniform(0.025, 0.07)) * canvas.unit)
        length = min(np.pi * radius * radius / thickness, 1.3 * canvas.unit)
        extent = 0.5 * length + thickness
    elif kind in ("triangle", "polygon", "star"):
        vertices = _scaled(_vertices(rng, kind), radius)
        extent = float(max(np.abs(vertices[0]).max(), np.abs(vertices[1]).max())) + 1.0
    else:
        extent = 2.2 * radius * np.sqrt(aspect)
    where, ys, xs = canvas.window(cy - extent, cy + extent, cx - extent, cx + extent)
    if ys.size == 0 or xs.size == 0:
        return None
    dx, dy = xs - cx, ys - cy
    u, v = dx * c + dy * s, dy * c - dx * s  # (h, w): coordinates along / across the shape
    if kind == "rectangle":
        a = radius * float(np.sqrt(np.pi * aspect)) / 2
        mask = (abs(u) <= a) & (abs(v) <= a / aspect)
    elif kind == "ellipse":
        a = radius * float(np.sqrt(aspect))
        mask = (u / a) ** 2 + (v * aspect / a) ** 2 <= 1.0
    elif kind == "ring":
        hole = float(rng.uniform(0.35, 0.7))
        a = radius * float(np.sqrt(aspect / (1 - hole * hole)))
        shift = float(rng.uniform(-0.25, 0.25)) * (1 - hole) * a  # an off-centre hole
        outer = (u / a) ** 2 + (v * aspect / a) ** 2 <= 1.0
        inner = ((u - shift) / (hole * a)) ** 2 + (v * aspect / (hole * a)) ** 2 <= 1.0
        mask = outer & ~inner
    elif kind == "blob":
        mask = _blob(rng, u, v, radius)
    elif kind == "bar":
        mask = (abs(u) <= 0.5 * length) & (abs(v) <= 0.5 * thickness)
    elif kind == "stroke":
        mask = _stroke(rng, u, v, length, thickness)
    else:  # triangle, polygon, star
        mask = _polygon(u, v, vertices)
    return where, ys, xs, mask


def _vertices(rng, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Polygon vertices (x, y) around the origin, in order round the outline."""
    if kind == "triangle":
        k, jitter, inner = 3, 0.35, None
    elif kind == "star":
        k, jitter, inner = 2 * int(rng.integers(4, 8)), 0.05, float(rng.uniform(0.35, 0.6))
    else:
        k, jitter, inner = int(rng.integers(4, 9)), 0.4, None
    p = (np.arange(k) + rng.uniform(-jitter, jitter, k)) * (4.0 / k)  # spread round the outline
    x, y = _direction(np.sort(p))
    r = np.where(np.arange(k) % 2 == 1, inner, 1.0) if inner else rng.uniform(0.55, 1.0, k)
    return x * r, y * r


def _scaled(vertices, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Polygon vertices scaled so the polygon has the area of a disc of ``radius``."""
    x, y = vertices
    area = 0.5 * abs(sum(float(x[i] * y[i - 1] - x[i - 1] * y[i]) for i in range(len(x))))
    scale = radius * float(np.sqrt(np.pi / max(area, 1e-3)))
    return x * scale, y * scale


def _polygon(u, v, vertices) -> np.ndarray:
    """Inside test (even-odd rule): is each (u, v) inside the polygon?"""
    x, y = vertices
    inside = np.zeros(np.broadcast_shapes(u.shape, v.shape), bool)
    for i in range(len(x)):  # a ray to the right crosses edge (i-1, i)?
        x0, y0, x1, y1 = float(x[i - 1]), float(y[i - 1]), float(x[i]), float(y[i])
        spans = (y0 > v) != (y1 > v)
        if y1 == y0:
            continue
        crossing = x0 + (v - y0) * ((x1 - x0) / (y1 - y0))
        inside ^= spans & (u < crossing)
    return inside


def _blob(rng, u, v, radius: float) -> np.ndarray:
    """A soft lumpy outline: where the 'metaball' field of a few discs reaches 1."""
    n = int(rng.integers(3, 6))
    field = np.zeros(np.broadcast_shapes(u.shape, v.shape), np.float32)
    for _ in range(n):
        bx, by = (float(d) * float(rng.uniform(0, 0.8)) * radius
                  for d in _direction(rng.uniform(0, 4)))
        r = float(rng.uniform(0.45, 0.75)) * radius
        field += r * r / ((u - bx) ** 2 + (v - by) ** 2 + 1e-3)
    return field >= 1.0


def _stroke(rng, u, v, length: float, thickness: float) -> np.ndarray:
    """A curved pen stroke: a quadratic Bezier curve of the given thickness."""
    bend = float(rng.uniform(-0.5, 0.5)) * length
    t = np.linspace(0.0, 1.0, 13)
    px = (t - 0.5) * length  # ends at -length/2 and +length/2, control point lifted by bend
    py = 2 * t * (1 - t) * bend
    best = np.full(np.broadcast_shapes(u.shape, v.shape), np.inf, np.float32)
    for i in range(len(t) - 1):  # squared distance to each segment of the curve
        ax, ay, bx, by = float(px[i]), float(py[i]), float(px[i + 1]), float(py[i + 1])
        ex, ey = bx - ax, by - ay
        h = np.clip(((u - ax) * ex + (v - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        best = np.minimum(best, (u - ax - h * ex) ** 2 + (v - ay - h * ey) ** 2)
    return best <= (0.5 * thickness) ** 2


# ------------------------------------------------------------------------------ drawing


def _pick(rng, names: tuple[str, ...], allowed: tuple[str, ...], odds: tuple[float, ...]) -> str:
    """One of ``allowed``, with the odds of ``names`` (renormalised over a subset)."""
    if allowed == names:  # the full set: exactly the draw of the default scenes
        return names[int(rng.choice(len(names), p=odds))]
    weights = np.array([o for n, o in zip(names, odds, strict=True) if n in allowed])
    kept = [n for n in names if n in allowed]
    return kept[int(rng.choice(len(kept), p=weights / weights.sum()))]


def _draw_object(canvas, rng, centre, area: float, background, config):
    """One object on level 0: a shape, its texture, its pixels claimed. Returns its index."""
    kind = _pick(rng, SHAPES, config.shapes, _SHAPE_ODDS)
    drawn = _shape_mask(rng, kind, canvas, *centre)
    if drawn is None or not drawn[3].any():
        return None
    where, ys, xs, mask = drawn
    index = canvas.new_instance(kind)
    _paint(canvas, rng, index, (where, ys, xs, mask), background, config)
    return index


def _draw_part(canvas, rng, parent: int, background, config):
    """A smaller shape on instance ``parent``, inside it; its own instance. Returns its index."""
    owned = canvas.mask_of(parent)
    rows, cols = np.nonzero(owned)
    if len(rows) < 16:
        return None
    pick = int(rng.integers(len(rows)))
    share = float(rng.uniform(0.08, 0.4))
    radius = float(np.sqrt(share * len(rows) / np.pi))
    kind = _pick(rng, SHAPES, config.shapes, _SHAPE_ODDS)
    drawn = _shape_mask(rng, kind, canvas, cols[pick] + 0.5, rows[pick] + 0.5, radius)
    if drawn is None:
        return None
    where, ys, xs, mask = drawn
    mask = mask & owned[where]
    if mask.sum() < 4:
        return None
    index = canvas.new_instance(kind, parent=parent)
    _paint(canvas, rng, index, (where, ys, xs, mask), background, config)
    return index


def _paint(canvas, rng, index: int, drawn, background, config) -> None:
    """Give instance ``index`` the pixels of ``drawn`` (a ``_shape_mask`` result), a palette
    (near the background's colour with the config's low-contrast odds) and a texture."""
    where, ys, xs, mask = drawn
    canvas.claim(where, mask, index)
    palette = _Palette.random(rng, near=background if rng.random() <
                              config.low_contrast_probability else None)
    texture = _fill_texture(canvas, rng, where, ys, xs, palette, mask, _alpha(rng),
                            config.object_textures)
    _describe(canvas, index, texture)


def _describe(canvas, index: int, texture: str) -> None:
    """What a caption can say of an object: its texture, and its colour where it has one."""
    canvas.attributes[index]["texture"] = texture
    if texture in ("flat", "gradient", "noise"):  # one colour, or two blended: one seen
        canvas.show_color(index)


def _alpha(rng) -> float:
    """Mostly opaque; now and then see-through, mixing with what is behind."""
    return 1.0 if rng.random() < 0.85 else float(rng.uniform(0.55, 0.85))


class _Palette:
    """Two colours a texture alternates between."""

    def __init__(self, first: np.ndarray, second: np.ndarray) -> None:
        self.first, self.second = first, second

    @classmethod
    def random(cls, rng, near: "_Palette | None" = None) -> "_Palette":
        if near is not None:  # low contrast: a small step away from the surroundings
            step = rng.uniform(12, 35, 3) * np.where(rng.random(3) < 0.5, -1, 1)
            first = np.clip(near.first + step, 0, 255)
        else:
            first = rng.uniform(0, 255, 3)
        second = np.clip(first + rng.uniform(-110, 110, 3), 0, 255)
        return cls(first.astype(np.float32), second.astype(np.float32))


def _fill_texture(canvas, rng, where, ys, xs, palette: _Palette, mask, alpha: float,
                  allowed: tuple[str, ...] = TEXTURES) -> str:
    """Paint ``mask`` with a random texture (one of ``allowed``) of ``palette``; its name."""
    kind = _pick(rng, TEXTURES, allowed, _TEXTURE_ODDS)
    if kind == "flat":
        canvas.paint(where, mask, palette.first, alpha)
        return kind
    if kind == "patch":  # a piece of a lab scene, as if cut out and pasted
        scene = make_scene(int(rng.integers(1 << 30)), (canvas.height, canvas.width))
        canvas.paint(where, mask, scene.image[where].astype(np.float32), alpha)
        return kind
    c, s = (float(v) for v in _direction(rng.uniform(0, 4)))
    along, across = xs * c + ys * s, ys * c - xs * s  # (h, w) rotated coordinates
    period = float(rng.uniform(3.0, 0.25 * canvas.unit))
    if kind == "gradient":
        lo, hi = float(along.min()), float(along.max())
        t = (along - lo) / max(hi - lo, 1.0)
    elif kind == "stripes":
        t = ((along % period) < float(rng.uniform(0.3, 0.7)) * period).astype(np.float32)
    elif kind == "checks":
        t = (((along % period) < 0.5 * period) ^ ((across % period) < 0.5 * period))
        t = t.astype(np.float32)
    elif kind == "dots":
        du, dv = along % period - 0.5 * period, across % period - 0.5 * period
        t = (du * du + dv * dv <= (float(rng.uniform(0.2, 0.4)) * period) ** 2)
        t = t.astype(np.float32)
    else:  # noise: a cloudy field, random values on a coarse grid blended bilinearly
        t = _value_noise(rng, ys, xs, period)
    t = t[..., None] if t.ndim == 2 else t
    color = palette.first + (palette.second - palette.first) * t  # (h, w, 3)
    canvas.paint(where, mask, np.broadcast_to(color, (*mask.shape, 3)), alpha)
    return kind


def _value_noise(rng, ys, xs, cell: float) -> np.ndarray:
    """Smooth random values in [0, 1]: a random grid of spacing ``cell``, interpolated."""
    gy, gx = ys / cell, xs / cell  # (h, 1), (1, w) in grid units, from the image origin
    y0, x0 = np.floor(gy), np.floor(gx)
    ty, tx = gy - y0, gx - x0
    rows, cols = int(y0.max()) + 2, int(x0.max()) + 2
    grid = rng.uniform(0, 1, (rows, cols)).astype(np.float32)
    iy, ix = y0.astype(np.int64), x0.astype(np.int64)
    top = grid[iy, ix] * (1 - tx) + grid[iy, ix + 1] * tx
    bottom = grid[iy + 1, ix] * (1 - tx) + grid[iy + 1, ix + 1] * tx
    return top * (1 - ty) + bottom * ty


def _jitter(canvas: Canvas, rng, noise: int) -> None:
    """Camera-like changes of the whole picture: contrast, brightness, per-channel gain, noise."""
    contrast = float(rng.uniform(0.6, 1.25))
    gain = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    shift = float(rng.uniform(-25, 25))
    canvas.image[:] = (canvas.image - 128.0) * contrast * gain + 128.0 + shift
    canvas.add_noise(rng, int(rng.integers(0, noise + 1)))
