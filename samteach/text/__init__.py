"""Text prompts (SAM §7.5, App. D.5), being built: so far the captions, the crop and the loss.

* :mod:`~samteach.text.captions` -- what each instance can be called, from what the scene
  generator knows of it, and which captions name one instance only;
* :mod:`~samteach.text.crops` -- the object crop SAM's text prompting was trained on;
* :mod:`~samteach.text.contrastive` -- CLIP's symmetric InfoNCE loss.
"""

from .captions import instance_captions, unique_captions
from .contrastive import contrastive_loss
from .crops import object_crop

__all__ = ["contrastive_loss", "instance_captions", "object_crop", "unique_captions"]
