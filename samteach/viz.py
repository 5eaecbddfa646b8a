"""Plots a student would rather look at than read numbers: images, masks, prompts, errors, curves.

The helpers follow Meta's SAM notebooks (a translucent blue mask, green/red stars for clicks, a
lime box) and add what the course needs: a whole :class:`~samteach.data.record.SegmentationRecord`
in colour, the error regions the interactive trainer clicks into, mIoU against clicks, and
SAM's multimask outputs side by side.

Every helper draws on the ``ax`` it is given and returns it (``show_image``, ``show_record`` and
``plot_miou_curve`` create a figure when ``ax`` is None; ``show_masks_grid`` always creates one
and returns the figure). Nothing here calls ``plt.show()`` or prints, and nothing is random:
colours come from fixed palettes, so a notebook's figures are the same on every run.

Arrays may be numpy arrays or torch tensors (any device). Shapes: H/W image height and width,
N points, K masks.

This is the one samteach module that imports matplotlib; ``import samteach`` never loads it.
"""

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from .utils.arguments import describe, validate_number
from .utils.images import load_image

__all__ = [
    "MASK_COLOR",
    "PALETTE",
    "plot_miou_curve",
    "plot_sa1b_statistics",
    "show_box",
    "show_error_regions",
    "show_image",
    "show_mask",
    "show_masks_grid",
    "show_points",
    "show_record",
]

ArrayLike = np.ndarray | torch.Tensor

# The "dodger blue" of Meta's segment_anything notebooks, so our figures look like theirs.
MASK_COLOR = (30 / 255, 144 / 255, 255 / 255)
# matplotlib's tab10 without its grey, which vanishes on photographs: instance i of a record
# always gets PALETTE[i % 9], so the same instance keeps its colour from plot to plot.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf",
)
# Okabe-Ito bluish green and vermillion: apart even for red-green colour-blind students, and
# close to the green (foreground) and red (background) clicks each error region will receive.
FN_COLOR = "#009E73"
FP_COLOR = "#D55E00"
# How each point label is drawn: (legend name, marker, colour, share of marker_size).
# Labels as in SAM's prompt encoder; -1 (padding) is not a point and is never drawn.
POINT_STYLES = {
    1: ("foreground", "*", "green", 1.0),
    0: ("background", "*", "red", 1.0),
    2: ("box top-left", "s", "lime", 0.25),
    3: ("box bottom-right", "s", "lime", 0.25),
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


# ---------------------------------------------------------------- images, masks and prompts


def show_image(image: ArrayLike, ax: Axes | None = None) -> Axes:
    """Draw an RGB image with the axis off.

    Args:
        image: (H, W, 3) uint8 in 0..255 or float in [0, 1]; a torch tensor may also be
            (3, H, W), as models take it.
        ax: where to draw; a new figure sized to the image when None.

    Returns:
        The axes.
    """
    array = load_image(image)
    if ax is None:
        ax = _new_axes(array.shape[:2])
    ax.imshow(array, interpolation="nearest")
    ax.set_axis_off()
    return ax


def show_mask(
    mask: ArrayLike,
    ax: Axes,
    color: object = None,
    alpha: float = 0.5,
    outline: bool = True,
) -> Axes:
    """Overlay a translucent mask (an RGBA image) and, optionally, its outline.

    Args:
        mask: (H, W) bool; leading axes of size 1, like (1, H, W), are dropped. It must match
            the image already on ``ax``.
        ax: the axes holding the image.
        color: any matplotlib colour; SAM's blue (``MASK_COLOR``) when None.
        alpha: opacity of the fill, in [0, 1].
        outline: draw the mask's contour in the same colour, fully opaque.

    Returns:
        The axes.
    """
    _check_ax(ax)
    mask = _as_mask(mask, "mask", _image_size_on(ax))
    rgb = _as_color(MASK_COLOR if color is None else color, "color")
    alpha = _check_alpha(alpha)
    overlay = np.zeros((*mask.shape, 4))
    overlay[mask] = (*rgb, alpha)
    ax.imshow(overlay, interpolation="nearest")
    if outline:
        _draw_outline(mask, ax, rgb)
    return ax


def show_points(
    points: ArrayLike, labels: ArrayLike, ax: Axes, marker_size: float = 375
) -> Axes:
    """Draw prompt points like Meta's notebooks: green stars (foreground), red (background).

    Box corners (labels 2 and 3, a box spelled as two points) are small lime squares; padding
    points (label -1) are skipped. Each label present becomes one scatter collection, named
    for a legend ("foreground", "background", "box top-left", "box bottom-right").

    Args:
        points: (N, 2) pixel (x, y) coordinates.
        labels: N labels from {-1, 0, 1, 2, 3}.
        ax: the axes holding the image.
        marker_size: area of a star in points^2 (squares get a quarter of it).

    Returns:
        The axes.
    """
    _check_ax(ax)
    points, labels = _as_points(points, labels)
    for label, (name, marker, color, scale) in POINT_STYLES.items():
        xy = points[labels == label]
        if len(xy):
            ax.scatter(xy[:, 0], xy[:, 1], s=marker_size * scale, marker=marker, color=color,
                       edgecolor="white", linewidth=1.25, label=name, zorder=3)
    return ax


def show_box(box: ArrayLike, ax: Axes, color: object = "lime") -> Axes:
    """Draw a box prompt as an unfilled rectangle.

    Args:
        box: x0, y0, x1, y1 in pixels (shape (4,) or (1, 4)), top-left corner first.
        ax: the axes holding the image.
        color: any matplotlib colour for the edge.

    Returns:
        The axes.
    """
    _check_ax(ax)
    x0, y0, x1, y1 = _as_box(box)
    rgb = _as_color(color, "color")
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor=rgb, facecolor="none",
                           linewidth=2, zorder=2))
    return ax


# ---------------------------------------------------------------- records and errors


def show_record(
    record: object,
    ax: Axes | None = None,
    names: bool = True,
    max_instances: int | None = None,
) -> Axes:
    """Draw a SegmentationRecord: the image, each instance in its own colour, and its name.

    Instance i is coloured ``PALETTE[i % len(PALETTE)]``. Wholes are drawn before their parts
    (by depth in ``record.parents``), so a liquid stays visible on top of its beaker.

    Args:
        record: a :class:`~samteach.data.record.SegmentationRecord` (image, masks, class_names,
            parents).
        ax: where to draw; a new figure when None.
        names: write each class name at its instance's centre of mass.
        max_instances: draw only this many instances, the largest first; all when None.

    Returns:
        The axes.
    """
    image, masks, class_names, parents = _record_parts(record)
    ax = show_image(image, ax)
    if max_instances is not None and (not isinstance(max_instances, int) or max_instances < 0):
        raise ValueError(f"max_instances must be a non-negative int or None; got "
                         f"{max_instances!r}")
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    chosen = sorted(range(len(masks)), key=lambda i: (-areas[i], i))[:max_instances]
    depth = _depths(parents)
    for i in sorted(chosen, key=lambda i: (depth[i], i)):
        show_mask(masks[i], ax, color=PALETTE[i % len(PALETTE)])
    if names:
        for i in sorted(chosen):
            _label_at_centre(masks[i], class_names[i], ax)
    return ax


def show_error_regions(
    pred: ArrayLike,
    gt: ArrayLike,
    ax: Axes,
    fn_color: object = FN_COLOR,
    fp_color: object = FP_COLOR,
    alpha: float = 0.6,
) -> Axes:
    """Colour where a prediction is wrong: the regions SAM's trainer samples its next click from.

    False negatives (``gt & ~pred``, missed: the next click there is foreground) and false
    positives (``~gt & pred``, spill: the next click there is background) become one RGBA
    overlay, transparent wherever the prediction is right, with a legend entry for each.

    Args:
        pred: (H, W) bool predicted mask.
        gt: (H, W) bool ground-truth mask.
        ax: the axes holding the image.
        fn_color: colour of the missed pixels.
        fp_color: colour of the spilled pixels.
        alpha: opacity of both regions, in [0, 1].

    Returns:
        The axes.
    """
    _check_ax(ax)
    pred = _as_mask(pred, "pred", _image_size_on(ax))
    gt = _as_mask(gt, "gt", pred.shape, against="pred")
    fn_rgb, fp_rgb = _as_color(fn_color, "fn_color"), _as_color(fp_color, "fp_color")
    alpha = _check_alpha(alpha)
    overlay = np.zeros((*gt.shape, 4))
    overlay[gt & ~pred] = (*fn_rgb, alpha)
    overlay[~gt & pred] = (*fp_rgb, alpha)
    ax.imshow(overlay, interpolation="nearest")
    handles = [Patch(facecolor=fn_rgb, alpha=alpha, label="missed (FN)"),
               Patch(facecolor=fp_rgb, alpha=alpha, label="spill (FP)")]
    ax.legend(handles=handles, loc="upper right", fontsize="small")
    return ax


# ---------------------------------------------------------------- curves and grids


def plot_miou_curve(
    curves: Mapping[str, Sequence[float] | Mapping[int, float] | ArrayLike],
    ax: Axes | None = None,
) -> Axes:
    """Plot mIoU against the number of clicks, one line per model or protocol.

    Args:
        curves: label -> mIoU after clicks 1..n (a sequence or 1-D array), or label ->
            {click: mIoU}. Values are fractions in [0, 1].
        ax: where to draw; a new figure when None.

    Returns:
        The axes.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(f"curves must be a non-empty dict label -> mIoU values; got "
                        f"{describe(curves)}")
    if ax is None:
        ax = plt.subplots(figsize=(5, 3.5), layout="constrained")[1]
    for k, (label, values) in enumerate(curves.items()):
        clicks, miou = _as_curve(values, f"curves[{label!r}]")
        ax.plot(clicks, miou, marker=_MARKERS[k % len(_MARKERS)],
                color=PALETTE[k % len(PALETTE)], label=str(label))
    ax.set_xlabel("clicks")
    ax.set_ylabel("mIoU")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax


def show_masks_grid(
    image: ArrayLike,
    masks: ArrayLike | Sequence[ArrayLike],
    scores: ArrayLike | Sequence[float] | None = None,
    titles: Sequence[str] | None = None,
) -> Figure:
    """One panel per mask over the image, in a row: e.g. SAM's three multimask outputs.

    Panels are titled ``titles[k]`` when given, else "mask k, score 0.912" with the predicted
    IoU, else "mask k" (k from 1). Draw the prompts on ``fig.axes`` afterwards if wanted.

    Args:
        image: (H, W, 3) uint8 or float in [0, 1] (or a (3, H, W) tensor).
        masks: (K, H, W) bool, or a list of K (H, W) masks; (1, K, H, W) is accepted too.
        scores: K scores, e.g. the predicted IoUs.
        titles: K panel titles.

    Returns:
        The figure.
    """
    array = load_image(image)
    stack = _as_mask_stack(masks, array.shape[:2])
    k = len(stack)
    names = _grid_titles(k, scores, titles)
    h, w = array.shape[:2]
    panel = min(3.5, 10 / k)  # keep the row on a notebook's width
    fig, axes = plt.subplots(1, k, figsize=(panel * k * w / h, panel + 0.4), squeeze=False,
                             layout="constrained")
    for ax, mask, title in zip(axes[0], stack, names, strict=True):
        show_image(array, ax)
        show_mask(mask, ax)
        ax.set_title(title, fontsize="medium")
    return fig


def plot_sa1b_statistics(stats: object, title: str | None = None) -> Figure:
    """SA-1B's three portraits of a dataset (SAM paper Fig. 5-6), from ``sa1b_statistics``.

    Left, images per bin of masks per image (the lecture's bins, <50 ... >500); middle, the
    distribution of mask sizes sqrt(mask area / image area); right, where mask centres lie,
    as a 2-D histogram over the image normalised to [0, 1].

    Args:
        stats: a :class:`samteach.amg.stats.SA1BStats`.
        title: a title over the three panels.

    Returns:
        The figure.
    """
    if not all(hasattr(stats, a) for a in ("histogram", "relative_sizes", "centres")):
        raise TypeError(f"stats must be an SA1BStats (samteach.amg.stats.sa1b_statistics); got "
                        f"{describe(stats)}")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    histogram = stats.histogram()
    axes[0].bar(range(len(histogram)), list(histogram.values()), color=PALETTE[0])
    axes[0].set_xticks(range(len(histogram)), list(histogram), rotation=30)
    axes[0].set(xlabel="masks per image", ylabel="images")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].hist(stats.relative_sizes, bins=np.linspace(0, 1, 21), color=PALETTE[1])
    axes[1].set(xlabel="sqrt(mask area / image area)", ylabel="masks", xlim=(0, 1))
    centres = np.asarray(stats.centres).reshape(-1, 2)
    axes[2].hist2d(centres[:, 0], centres[:, 1], bins=10, range=[[0, 1], [0, 1]], cmap="viridis")
    axes[2].set(xlabel="centre x / W", ylabel="centre y / H", aspect="equal")
    axes[2].invert_yaxis()  # image coordinates: y grows downwards
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------- input checks and conversion


def _to_numpy(value: object, name: str) -> np.ndarray:
    """A numpy array or tensor (any device) -> numpy array; else a TypeError naming it."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be a numpy array or torch tensor; got {describe(value)}")
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numpy array or torch tensor; got "
                        f"{describe(value)}") from None


def _as_mask(
    mask: object, name: str, shape: tuple[int, ...] | None = None, against: str = "the image"
) -> np.ndarray:
    """(H, W) bool (or 0/1 numbers), of ``shape`` when given -> bool array."""
    array = given = _to_numpy(mask, name)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]  # (1, H, W) -> (H, W)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) mask; got shape {tuple(given.shape)}")
    if array.dtype != bool:
        if not (np.issubdtype(array.dtype, np.number) and np.isin(array, (0, 1)).all()):
            raise TypeError(f"{name} must be a bool mask (or 0/1 numbers); got dtype "
                            f"{array.dtype} with other values -- threshold logits: {name} > 0")
        array = array.astype(bool)
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} to match {against}; got "
                         f"{tuple(array.shape)}")
    return array


def _as_mask_stack(masks: object, shape: tuple[int, int]) -> np.ndarray:
    """(K, H, W) masks (or a list of K (H, W) masks) matching an (H, W) image -> bool array."""
    if isinstance(masks, (list, tuple)):
        if not masks:
            raise ValueError("masks must hold at least one mask; got an empty list")
        return np.stack([_as_mask(m, f"masks[{k}]", shape) for k, m in enumerate(masks)])
    array = _to_numpy(masks, "masks")
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]  # (1, K, H, W) -> (K, H, W)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != tuple(shape) or len(array) == 0:
        raise ValueError(f"masks must have shape (K, {shape[0]}, {shape[1]}) to match the "
                         f"image, K >= 1; got {tuple(array.shape)}")
    return np.stack([_as_mask(m, f"masks[{k}]") for k, m in enumerate(array)])


def _as_points(points: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) coordinates and N labels from {-1, 0, 1, 2, 3} -> float and int arrays."""
    xy = _to_numpy(points, "points")
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.issubdtype(xy.dtype, np.number):
        raise ValueError(f"points must be (N, 2) pixel (x, y) coordinates; got shape "
                         f"{tuple(xy.shape)}")
    lab = _to_numpy(labels, "labels").reshape(-1)
    if len(lab) != len(xy):
        raise ValueError(f"labels has {len(lab)} entries but points has {len(xy)} points")
    bad = sorted(set(lab.tolist()) - {-1, *POINT_STYLES})
    if bad:
        raise ValueError(f"labels must be in {{-1, 0, 1, 2, 3}} (padding, background, "
                         f"foreground, box corners); got {bad}")
    return xy.astype(float), lab.astype(np.int64)


def _as_box(box: object) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 with the top-left corner first -> four floats."""
    array = _to_numpy(box, "box")
    if array.shape not in ((4,), (1, 4)) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"box must be 4 numbers x0, y0, x1, y1 (shape (4,) or (1, 4)); got "
                         f"shape {tuple(array.shape)}")
    x0, y0, x1, y1 = (float(v) for v in array.reshape(4))
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box must be x0, y0, x1, y1 with x0 <= x1 and y0 <= y1 (top-left "
                         f"corner first); got {[x0, y0, x1, y1]}")
    return x0, y0, x1, y1


def _as_curve(values: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A sequence (clicks 1..n) or {click: mIoU} -> clicks and mIoU arrays."""
    if isinstance(values, Mapping):
        clicks = sorted(values)
        miou = [float(_to_numpy(values[c], name)) for c in clicks]
    else:
        miou = _to_numpy(values, name)
        if miou.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sequence of mIoU values; got shape "
                             f"{tuple(miou.shape)}")
        clicks = range(1, len(miou) + 1)
    clicks, miou = np.asarray(clicks, dtype=float), np.asarray(miou, dtype=float)
    if len(miou) == 0:
        raise ValueError(f"{name} is empty: give the mIoU after at least one click")
    if not np.all((miou >= 0) & (miou <= 1)):
        raise ValueError(f"{name} must hold mIoU values in [0, 1]; got values in "
                         f"[{miou.min():.3g}, {miou.max():.3g}] (percentages? divide by 100)")
    return clicks, miou


def _record_parts(record: object) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """A SegmentationRecord -> (image, (N, H, W) masks, class_names, parents), all checked."""
    if not all(hasattr(record, a) for a in ("image", "masks", "class_names")):
        raise TypeError(f"record must be a SegmentationRecord (image, masks, class_names, "
                        f"parents); got {describe(record)}")
    image = load_image(record.image)
    masks = _as_mask_stack(list(record.masks), image.shape[:2]) if len(record.masks) \
        else np.zeros((0, *image.shape[:2]), bool)
    names = tuple(record.class_names)
    parents = tuple(getattr(record, "parents", ())) or (-1,) * len(masks)
    if len(names) != len(masks) or len(parents) != len(masks):
        raise ValueError(f"record has {len(masks)} masks but {len(names)} class_names and "
                         f"{len(parents)} parents")
    return image, masks, names, parents


def _depths(parents: Sequence[int]) -> list[int]:
    """How many ancestors each instance has (0 for a whole), following ``parents``."""
    depths = []
    for i in range(len(parents)):
        depth, node = 0, parents[i]
        while node != -1:
            depth += 1
            if depth > len(parents):
                raise ValueError(f"record.parents has a cycle through instance {i}: "
                                 f"{tuple(parents)}")
            node = parents[node]
        depths.append(depth)
    return depths


def _grid_titles(k: int, scores: object, titles: Sequence[str] | None) -> list[str]:
    """K panel titles from ``titles``, else from ``scores``, else "mask k"."""
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != k:
            raise ValueError(f"titles has {len(titles)} entries but masks has {k} masks")
        return titles
    if scores is None:
        return [f"mask {i + 1}" for i in range(k)]
    values = _to_numpy(scores, "scores").reshape(-1)
    if len(values) != k:
        raise ValueError(f"scores has {len(values)} entries but masks has {k} masks")
    return [f"mask {i + 1}, score {float(s):.3f}" for i, s in enumerate(values)]


def _as_color(color: object, name: str) -> tuple[float, float, float]:
    """Any matplotlib colour -> (r, g, b) in [0, 1]; else a ValueError naming the argument."""
    try:
        return mcolors.to_rgb(color)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a matplotlib colour ('red', '#1e90ff', (r, g, b) in "
                         f"[0, 1]); got {color!r}") from None


def _check_alpha(alpha: object) -> float:
    return validate_number(alpha, "alpha", 0.0, 1.0)


def _check_ax(ax: object) -> None:
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, e.g. ax = show_image(image); got "
                        f"{describe(ax)}")


def _image_size_on(ax: Axes) -> tuple[int, int] | None:
    """(H, W) of the first image on ``ax`` (the one overlays must match), or None."""
    return tuple(ax.images[0].get_array().shape[:2]) if ax.images else None


# ---------------------------------------------------------------- drawing pieces


def _new_axes(size: tuple[int, int], width: float = 6.0) -> Axes:
    """A fresh figure whose axes have the (H, W) image's aspect ratio."""
    h, w = size
    height = min(max(width * h / w, 1.5), 12.0)
    return plt.subplots(figsize=(width, height), layout="constrained")[1]


def _draw_outline(mask: np.ndarray, ax: Axes, rgb: tuple[float, float, float]) -> None:
    """The mask's boundary as a contour line (none when the mask is empty or full)."""
    if mask.any() and not mask.all():  # a constant field has no contour (and mpl would warn)
        ax.contour(mask.astype(float), levels=[0.5], colors=[rgb], linewidths=1.5)


def _label_at_centre(mask: np.ndarray, name: str, ax: Axes) -> None:
    """Small white text with a dark outline at the mask's centre of mass."""
    if not mask.any():
        return
    rows, cols = np.nonzero(mask)
    ax.text(cols.mean(), rows.mean(), name, color="white", fontsize=8, ha="center",
            va="center", path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])
