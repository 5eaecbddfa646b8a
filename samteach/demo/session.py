"""PromptSession: the click loop of SAM's demo, without a screen.

What happens when a person clicks in SAM's demo, kept apart from any drawing so that it can be
tested, scripted in a notebook and reused by the ipycanvas widget (``samteach.demo.widget``):

1. The image is encoded **once** (``SamPredictor.set_image``); every click afterwards runs only
   the prompt encoder and the mask decoder on the cached embedding and dense positional
   encoding -- milliseconds, which is what makes the demo feel live (SAM paper §3).
2. The **first** prompt, a single click or a single box, is ambiguous (a click on a shirt: the
   shirt, the person, the button?), so it asks for the three multimask outputs and shows the
   one with the highest predicted IoU; ``choose_mask(i)`` shows another.
3. **Later** prompts (two clicks or more, a box with clicks) are no longer ambiguous: they ask
   for the single-mask output and feed back the previous low-resolution logits as the mask
   prompt -- the same rule the interactive training loop of lab 04 follows (SAM App. A).
4. Every edit is pushed on a history, so ``undo()`` restores the exact earlier masks.

Teaching mode: given the ground-truth mask of the object, the session shows where the current
mask is wrong (``error_regions``: missed pixels FN and spilled pixels FP) and the click that
the evaluation robot (RITM's clicker, ``samteach.evaluation.clicker``) or the training loop's
sampler (``samteach.training.samplers.sample_error_clicks``) would make next.

Shapes: H/W image height and width, n clicks so far, M masks (3 or 1), h/w low-res logits.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..data.record import validate_mask
from ..evaluation.clicker import Click, suggest_click
from ..evaluation.metrics import iou
from ..modeling import Sam
from ..predictor import SamPredictor, as_predictor
from ..utils.arguments import validate_int
from ..utils.images import load_image

__all__ = ["Prediction", "PromptSession", "TEXT_CLICKS", "load_image"]

# The model's own click with words (set_text's text_click): none, where the words point (True
# or "map"), where CLIP points among SAM's proposals ("clip").
TEXT_CLICKS = (False, True, "map", "clip")

RULES = ("ritm", "training")  # who suggests the next click in teaching mode


@dataclass(frozen=True, eq=False)
class Prediction:
    """What the model answered to the session's current prompts.

    Attributes:
        masks: (M, H, W) bool, M = 3 for a first prompt (multimask) and 1 afterwards.
        scores: (M,) the IoU each mask predicts for itself.
        logits: (M, h, w) low-resolution logits; the chosen one is fed back with the next prompt.
        chosen: index of the mask shown (the highest score unless ``choose_mask`` changed it).
        seconds: wall time of the prompt encoder + mask decoder call (click -> mask).
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray
    chosen: int
    seconds: float

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, the mask shown."""
        return self.masks[self.chosen]

    @property
    def score(self) -> float:
        """The predicted IoU of the mask shown."""
        return float(self.scores[self.chosen])


@dataclass(frozen=True, eq=False)
class _State:
    """One entry of the history: the prompts and what the model answered to them."""

    points: np.ndarray  # (n, 2) float pixel (x, y)
    labels: np.ndarray  # (n,) int: 1 foreground, 0 background
    box: np.ndarray | None  # (4,) x0, y0, x1, y1, or None
    prediction: Prediction | None  # None when there are no prompts
    text: str | None = None  # what to segment, in words (models trained with text prompts)
    text_embedding: torch.Tensor | None = None  # (D,) its CLIP embedding, made once per text


_EMPTY = _State(np.zeros((0, 2)), np.zeros(0, dtype=np.int64), None, None)


class PromptSession:
    """Clicks, a box, undo and reset on one image, with SAM in the loop.

    Args:
        predictor: a ``SamPredictor``, or a samteach ``Sam`` model (wrapped in one).
        image: (H, W, 3) uint8 RGB, or anything ``load_image`` reads (PIL image, file path,
            grayscale, RGBA, floats in [0, 1]).
        target: optional (H, W) bool ground-truth mask, which turns on teaching mode.

    Example::

        session = PromptSession(predictor, image)
        session.add_point(40, 60)                     # three masks, the best one shown
        session.add_point(70, 62, foreground=False)   # remove what spilled over
        session.undo()

    With a model trained with text prompts (SAM §7.5), words can be the first prompt and
    clicks correct what they found::

        session.set_text("the blue liquid")           # three masks, the best one shown
        session.add_point(40, 60)                     # the text stays; the click corrects
    """

    def __init__(self, predictor: SamPredictor | Sam, image: object,
                 target: np.ndarray | None = None) -> None:
        self.predictor = predictor = as_predictor(predictor)
        self.image = load_image(image)
        predictor.set_image(self.image)
        self._features = predictor.features  # to notice if someone else re-uses the predictor
        self.target = None
        if target is not None:
            self.set_target(target)
        self._history: list[_State] = []
        self._state = _EMPTY
        self._found = None  # SAM's proposals, for text_click="clip"

    # ------------------------------------------------------------------ prompts
    def add_point(self, x: float, y: float, foreground: bool = True) -> Prediction:
        """Add a click at pixel (x, y): foreground ("this") or background ("not this")."""
        xy = self._check_xy(x, y)
        if not isinstance(foreground, (bool, np.bool_)):
            raise TypeError(f"foreground must be True or False; got {foreground!r}")
        points = np.concatenate([self._state.points, [xy]])  # (n+1, 2)
        labels = np.append(self._state.labels, int(foreground))  # (n+1,)
        return self._push(points, labels, self._state.box, *self._text())

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> Prediction:
        """Set (or replace) the box prompt; corners in either order, clipped to the image."""
        (ax, ay), (bx, by) = self._check_xy(x0, y0, clip=True), self._check_xy(x1, y1, clip=True)
        box = np.array([min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)])
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            raise ValueError(f"the box must be at least one pixel wide and high; got corners "
                             f"({x0}, {y0}) and ({x1}, {y1})")
        return self._push(self._state.points, self._state.labels, box, *self._text())

    def set_text(self, text: str | None, text_click: bool | str = False) -> Prediction | None:
        """Say what to segment ("the blue liquid"), or replace what was said; None removes it.

        The words go through the predictor's CLIP text encoder into the text token; a model
        without text prompts, empty text or a word the tokenizer does not know is refused with
        a clear error, before anything changes. ``text_click``: words as the first prompt also
        bring the model's own click -- True (or "map") where the words point
        (``SamPredictor.ground_text``), "clip" where CLIP points among SAM's proposals
        (:mod:`samteach.text.choose`, made once per session). It becomes the first of the
        clicks, and one undo takes it back with the words.
        """
        if not any(text_click is way or text_click == way for way in TEXT_CLICKS):
            raise TypeError(f"text_click must be False, True or 'map' (click where the words "
                            f"point) or 'clip' (where CLIP points); got {text_click!r}")
        if text_click and (text is None or self.has_clicks_or_box):
            raise ValueError("text_click adds the model's own click to words given as the first "
                             "prompt: set the text before any click or box")
        # Embedded once here (bad text refused before the state changes); clicks reuse it.
        embedding = None if text is None else self.predictor.embed_text(text)[0]  # (D,)
        if text_click:  # [own click, text]: still a first prompt, answered with three masks
            if text_click == "clip":
                from ..text.choose import clip_click

                own = clip_click(self.predictor, self._proposals(), embedding)[0]  # (1, 2)
            else:
                own = self.predictor.ground_text(embedding)[1]  # (1, 2)
            return self._push(own, np.ones(1, dtype=np.int64), None, text, embedding, first=True)
        if text is None and not self.has_clicks_or_box:
            self._history.append(self._state)
            self._state = _EMPTY
            return None
        return self._push(self._state.points, self._state.labels, self._state.box, text,
                          embedding)

    def _proposals(self):
        """SAM's proposals on this image as CLIP sees them (made at the first use, then kept)."""
        if self._found is None:
            from ..text.choose import propose

            self._found = propose(self.predictor, self.image)  # leaves this image set
            self._features = self.predictor.features
        return self._found

    def undo(self) -> Prediction | None:
        """Go back one edit; returns the prediction now shown (None once nothing is left).

        Undo with nothing to undo does nothing: there is no earlier state to go back to.
        """
        if self._history:
            self._state = self._history.pop()
        return self._state.prediction

    def reset(self) -> None:
        """Forget every prompt and the history (the image stays encoded)."""
        self._history.clear()
        self._state = _EMPTY

    def choose_mask(self, index: int) -> Prediction:
        """Show multimask output ``index`` instead of the best-scored one (first prompt only)."""
        prediction = self._state.prediction
        count = 0 if prediction is None else len(prediction.masks)
        if count < 2:
            raise ValueError("choose_mask needs the three masks of a first prompt; the current "
                             f"prediction has {count}")
        validate_int(index, "index", 0, count - 1)
        chosen = Prediction(prediction.masks, prediction.scores, prediction.logits, int(index),
                            prediction.seconds)
        self._state = _State(self._state.points, self._state.labels, self._state.box, chosen,
                             *self._text())
        return chosen

    # ------------------------------------------------------------------ state
    @property
    def points(self) -> np.ndarray:
        """(n, 2) float pixel (x, y) of the clicks."""
        return self._state.points.copy()

    @property
    def labels(self) -> np.ndarray:
        """(n,) int labels of the clicks: 1 foreground, 0 background."""
        return self._state.labels.copy()

    @property
    def box(self) -> np.ndarray | None:
        """(4,) x0, y0, x1, y1 or None."""
        return None if self._state.box is None else self._state.box.copy()

    @property
    def has_clicks_or_box(self) -> bool:
        """A click or a box is set (words can then no longer be the first prompt)."""
        return bool(len(self._state.points)) or self._state.box is not None

    @property
    def text(self) -> str | None:
        """What was said to segment, or None."""
        return self._state.text

    @property
    def prediction(self) -> Prediction | None:
        """The model's answer to the current prompts (None when there are none)."""
        return self._state.prediction

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, the mask shown (all False when there are no prompts)."""
        prediction = self._state.prediction
        return np.zeros(self.size, dtype=bool) if prediction is None else prediction.mask

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return self.image.shape[0], self.image.shape[1]

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    # ------------------------------------------------------------------ teaching mode
    def set_target(self, target: np.ndarray | None) -> None:
        """The ground-truth mask of the object being segmented (None turns teaching off)."""
        self.target = None if target is None else validate_mask(target, "target", self.size)

    def error_regions(self) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) bool missed pixels (FN = target & ~mask) and spill (FP = ~target & mask)."""
        target = self._require_target("error_regions")
        return target & ~self.mask, ~target & self.mask

    def target_iou(self) -> float:
        """IoU of the mask shown with the target."""
        return iou(self.mask, self._require_target("target_iou"))

    def suggest_click(self, rule: str = "ritm",
                      generator: torch.Generator | None = None) -> Click | None:
        """The click a robot user would make next, or None when the mask is already perfect.

        Args:
            rule: "ritm", the evaluation clicker: the deepest point of the larger error (the
                same every time); or "training", the training loop's sampler: a pixel drawn
                uniformly from FN | FP (SAM App. A), labelled by which of the two it is in.
            generator: the randomness of "training" (torch's default when None).
        """
        target = self._require_target("suggest_click")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
        if np.array_equal(target, self.mask):
            return None
        if rule == "ritm":
            return suggest_click(target, self.mask, self._state.points)
        from ..training.samplers import sample_error_clicks

        points, labels = sample_error_clicks(torch.from_numpy(self.mask)[None],
                                             torch.from_numpy(target)[None], generator)
        x, y = (int(v) for v in points[0].tolist())
        return Click(x=x, y=y, is_positive=bool(labels[0] == 1))

    # ------------------------------------------------------------------ internals
    def _text(self) -> tuple[str | None, torch.Tensor | None]:
        """The current text prompt: its words and its embedding (or two Nones)."""
        return self._state.text, self._state.text_embedding

    def _push(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
              text: str | None = None, embedding: torch.Tensor | None = None,
              first: bool | None = None) -> Prediction:
        prediction = self._predict(points, labels, box, embedding, first)
        self._history.append(self._state)
        self._state = _State(points, labels, box, prediction, text, embedding)
        return prediction

    def _predict(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                 text: torch.Tensor | None = None, first: bool | None = None) -> Prediction:
        """Rules 2 and 3 of the module docstring, then one prompt-encoder + decoder call.
        Text counts as one prompt: alone it is a first prompt, as a click is (``first``: say
        so, for text with the model's own click)."""
        if self.predictor.features is not self._features:  # the predictor was used elsewhere
            self.predictor.set_image(self.image)
            self._features = self.predictor.features
        if first is None:
            first = len(points) + (box is not None) + (text is not None) == 1
        previous = self._state.prediction
        mask_input = None
        if not first and previous is not None:
            mask_input = previous.logits[previous.chosen][None]  # (1, h, w)
        start = time.perf_counter()
        masks, scores, logits = self.predictor.predict(
            point_coords=points if len(points) else None,
            point_labels=labels if len(points) else None,
            box=box, mask_input=mask_input, multimask_output=first, text=text)
        seconds = time.perf_counter() - start
        return Prediction(masks, scores, logits, int(np.argmax(scores)), seconds)

    def _check_xy(self, x: float, y: float, clip: bool = False) -> np.ndarray:
        """A pixel position inside the image (or clipped to it) -> (2,) float array."""
        h, w = self.size
        for name, value in (("x", x), ("y", y)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value):
                raise TypeError(f"{name} must be a finite number of pixels; got {value!r}")
        if clip:
            return np.array([min(max(float(x), 0.0), w - 1), min(max(float(y), 0.0), h - 1)])
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"the click ({x}, {y}) is outside the {w}x{h} (W x H) image: x must "
                             f"be in [0, {w}) and y in [0, {h})")
        return np.array([float(x), float(y)])

    def _require_target(self, method: str) -> np.ndarray:
        if self.target is None:
            raise ValueError(f"{method} is part of teaching mode: give the session the object's "
                             "ground-truth mask first (PromptSession(..., target=mask) or "
                             "set_target(mask))")
        return self.target

    def __repr__(self) -> str:
        h, w = self.size
        box = ", a box" if self._state.box is not None else ""
        text = f", text {self._state.text!r}" if self._state.text is not None else ""
        n = len(self._state.points)
        return f"PromptSession({w}x{h} image, {n} click{'s' * (n != 1)}{box}{text})"


