"""Helpers every part of samteach shares, each written once.

* :mod:`~samteach.utils.transforms` -- ``ResizeLongestSide``, at the path of Meta's
  ``segment_anything.utils.transforms``;
* :mod:`~samteach.utils.masks` -- mask IoU, mask -> box (both box conventions, named), the
  distance transform;
* :mod:`~samteach.utils.images` -- loading a picture as SAM wants it;
* :mod:`~samteach.utils.arguments` -- the checks of what callers hand to public functions,
  with messages that name the argument;
* :mod:`~samteach.utils.files` -- atomic file writes;
* :mod:`~samteach.utils.amg` -- Meta's ``segment_anything.utils.amg`` names, for tutorials.
"""
