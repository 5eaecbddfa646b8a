"""Text prompts (SAM §7.5, App. D.5): SAM trained with CLIP *image* embeddings of objects,
prompted with CLIP *text* embeddings of words.

* :mod:`~samteach.text.captions` -- what each instance can be called, from what the scene
  generator knows of it, and which captions name one instance only;
* :mod:`~samteach.text.crops` -- the object crop SAM's text prompting was trained on;
* :mod:`~samteach.text.pairs` -- (crop, captions) pairs of the scenes' large enough objects;
* :mod:`~samteach.text.contrastive` -- CLIP's symmetric InfoNCE loss;
* :mod:`~samteach.text.tokenizer` -- captions to tokens, one per word of their vocabulary;
* :mod:`~samteach.text.clip` -- a tiny CLIP: an image tower over crops, a text tower over
  captions, one shared space; its files;
* :mod:`~samteach.text.train` -- its training command and retrieval score;
* :mod:`~samteach.text.hf` -- any Hugging Face CLIP in its place (optional ``transformers``);
* :mod:`~samteach.text.grounding` -- where a text token points among the image embedding's
  locations (a training loss and the model's own click);
* :mod:`~samteach.text.choose` -- SAM proposes masks, CLIP chooses the one the words name (a
  second own click);
* :mod:`~samteach.text.evaluate` -- text prompts scored on held-out scenes.

SAM's side lives with SAM: the text token in ``modeling.prompt_encoder``, the first text
interaction in ``training.step``, ``SamPredictor.predict(text=...)``.
"""

from .captions import instance_captions, unique_captions
from .clip import TinyClip, TinyClipConfig, load_clip, save_clip
from .contrastive import contrastive_loss
from .crops import object_crop
from .hf import HFClip
from .tokenizer import WordTokenizer, caption_words

__all__ = ["HFClip", "TinyClip", "TinyClipConfig", "WordTokenizer", "caption_words",
           "contrastive_loss", "instance_captions", "load_clip", "object_crop", "save_clip",
           "unique_captions"]
