"""Text prompts (SAM §7.5): captions of the synthetic scenes' instances, so far.

* :mod:`~samteach.text.captions` -- what each instance can be called, from what the scene
  generator knows of it, and which captions name one instance only.
"""

from .captions import instance_captions, unique_captions

__all__ = ["instance_captions", "unique_captions"]
