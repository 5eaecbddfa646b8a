"""Text prompts (SAM §7.5, App. D.5), being built: so far the captions, the crop and the loss.

* :mod:`~samteach.text.captions` -- what each instance can be called, from what the scene
  generator knows of it, and which captions name one instance only;
* :mod:`~samteach.text.crops` -- the object crop SAM's text prompting was trained on;
* :mod:`~samteach.text.contrastive` -- CLIP's symmetric InfoNCE loss;
* :mod:`~samteach.text.tokenizer` -- captions to tokens, one per word of their vocabulary;
* :mod:`~samteach.text.clip` -- a tiny CLIP: an image tower over crops, a text tower over
  captions, one shared space (not trained or shipped yet).
"""

from .captions import instance_captions, unique_captions
from .clip import TinyClip, TinyClipConfig
from .contrastive import contrastive_loss
from .crops import object_crop
from .tokenizer import WordTokenizer, caption_words

__all__ = ["TinyClip", "TinyClipConfig", "WordTokenizer", "caption_words", "contrastive_loss",
           "instance_captions", "object_crop", "unique_captions"]
