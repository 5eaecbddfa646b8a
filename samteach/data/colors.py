"""Colour names for RGB values: the words a caption uses for what a generator painted.

The scene generators draw colours at random in RGB; a caption needs the word a person would use.
Greys first (low saturation: black, grey or white by lightness), then the hue circle in eight
named arcs. Coarse on purpose: "blue" must cover every blue a student would call blue.
"""

import colorsys

import numpy as np

__all__ = ["COLOR_NAMES", "color_name"]

# Hue arcs in degrees, each named by its upper end (red wraps around 360).
_HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"),
         (260, "blue"), (310, "purple"), (345, "pink"), (360, "red"))
COLOR_NAMES = ("black", "grey", "white", "red", "orange", "yellow", "green", "cyan", "blue",
               "purple", "pink", "brown")


def color_name(rgb) -> str:
    """An (r, g, b) in 0..255 -> one of ``COLOR_NAMES``."""
    r, g, b = (float(v) / 255.0 for v in np.asarray(rgb, dtype=float).reshape(3))
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    if saturation < 0.2 or lightness < 0.12 or lightness > 0.92:
        return "black" if lightness < 0.25 else "white" if lightness > 0.8 else "grey"
    degrees = hue * 360.0
    name = next(name for end, name in _HUES if degrees < end)
    if name in ("orange", "red", "yellow") and lightness < 0.35:
        return "brown"  # a dark orange or red is what people call brown
    return name
