"""ClickDemo: click on an image and watch SAM segment it, in a Jupyter notebook.

A thin adapter between the browser and :class:`~samteach.demo.session.PromptSession`, which holds
all the logic (first click multimask, later clicks fed the previous logits, undo, teaching
mode). This module only turns mouse events into session calls and session state into pictures.

The picture is an ipycanvas ``MultiCanvas`` of three layers, so that a click redraws only what
changed: 0 the image (drawn once), 1 the mask overlay, 2 the prompts (stars, box, the teaching
suggestion, the rubber band of a box being dragged).

Mouse input:
    * left click: a foreground click ("this"); right click or shift+click: background ("not
      this"); the "clicks add" toggle does the same for touch pads and tablets;
    * press, drag, release: a box.
ipycanvas reports where the mouse is, in canvas pixels, but not which button or modifier was
used; ipyevents reports the button and modifiers. Each press makes one message of each, and
they reach the kernel in either order -- ipyevents' even after ipycanvas' release, now and
then. So they are paired by count, never by arrival: the n-th press on the canvas gets the n-th
ipyevents report. A click whose report is not there at its release waits for it (the kernel is
not blocked: the report's own message completes the click), for at most ``REPORT_WAIT``
seconds, after which it counts as a left click; a box needs no button and never waits.

Coordinates: the canvas is the image scaled by ``sx = canvas_width / W`` and
``sy = canvas_height / H``; a canvas position (x, y) falls in image pixel
(floor(x / sx), floor(y / sy)), the (column, row) SAM's prompt encoder receives. The browser
may display the canvas at yet another size; ipycanvas already converts to canvas pixels.

Nothing here raises into the notebook: a callback's error (a click outside the image, undo with
nothing to undo, a picture that cannot be read) is written on the status line instead.
"""

import asyncio
import functools
import html
import time

import ipywidgets as widgets
import numpy as np
from ipycanvas import MultiCanvas, hold_canvas
from ipyevents import Event

from ..utils.arguments import validate_int
from ..utils.images import load_image
from ..viz import FN_COLOR, FP_COLOR, MASK_COLOR
from .session import RULES, Prediction, PromptSession

__all__ = ["ClickDemo"]

DRAG_PIXELS = 5  # a press that moves further than this (canvas pixels) draws a box
REPORT_WAIT = 0.5  # seconds a click waits for ipyevents' report of its button
_RGBA = np.array([  # overlay colour of each pixel kind, indexed by _overlay_kinds
    (0, 0, 0, 0),  # nothing
    (*(round(255 * c) for c in MASK_COLOR), 115),  # the mask, translucent blue
    (*bytes.fromhex(FN_COLOR[1:]), 160),  # teaching: missed (FN)
    (*bytes.fromhex(FP_COLOR[1:]), 160),  # teaching: spill (FP)
], dtype=np.uint8)
_STAR = np.array([(np.sin(a) * r, -np.cos(a) * r) for a, r in zip(
    np.linspace(0, 2 * np.pi, 10, endpoint=False), [1.0, 0.45] * 5, strict=True)])  # (10, 2)


def _reported(handler):
    """Run an event handler; show an error on the status line instead of raising it."""

    @functools.wraps(handler)
    def run(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as error:  # a widget callback must never raise
            self.last_error = f"{type(error).__name__}: {error}"
            self._show_status(str(error), error=True)
            return None

    return run


class ClickDemo(widgets.VBox):
    """SAM's interactive demo as a notebook widget.

    Args:
        predictor: a samteach ``SamPredictor`` or ``Sam`` (the tiny model, or an official
            checkpoint loaded with ``build_sam``).
        image: (H, W, 3) uint8 RGB, a PIL image or an image file path (see ``load_image``).
        target: optional (H, W) bool ground-truth mask: enables teaching mode.
        display_size: the canvas' longest side in pixels; the image is scaled to it.
        rule: who suggests the next click in teaching mode, "ritm" (evaluation) or "training".

    Attributes:
        session: the PromptSession behind the picture (None while no image is loaded).
        last_latency: seconds from the release of the mouse to the redrawn mask.
        last_error: the last message shown as an error, or None.
    """

    def __init__(self, predictor, image, target: np.ndarray | None = None,
                 display_size: int = 512, rule: str = "ritm") -> None:
        from ..predictor import as_predictor

        predictor = as_predictor(predictor)
        validate_int(display_size, "display_size", 16, 4096)
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
        self.predictor, self.display_size, self.rule = predictor, display_size, rule
        self.session: PromptSession | None = None
        self.last_latency: float | None = None
        self.last_error: str | None = None
        self._press, self._dragging = None, False  # the gesture in progress
        self._suggested = None  # teaching mode's next click for the mask shown
        self._pairs = _PressPairs()
        self.canvas = MultiCanvas(3, width=display_size, height=display_size)
        self.buttons = _Controls()
        self.status = widgets.HTML()
        super().__init__([self.canvas, self.buttons.box, self.status])
        self._connect()
        self.set_image(image, target)

    # ------------------------------------------------------------------ images
    @_reported
    def set_image(self, image: object, target: np.ndarray | None = None) -> None:
        """Show a new image (encoded once) with an optional teaching target."""
        try:
            image = load_image(image)
        except (TypeError, ValueError) as error:
            self._show_status(f"{error} -- the previous image stays", error=True)
            self.last_error = str(error)
            return
        self.session = PromptSession(self.predictor, image, target=target)
        h, w = self.session.size
        scale = self.display_size / max(h, w)
        width, height = max(1, round(w * scale)), max(1, round(h * scale))
        self.canvas.width, self.canvas.height = width, height
        # Shown at its own size (JupyterLab would stretch it to the output's width); whatever
        # size the browser shows it at, ipycanvas reports events in canvas pixels.
        self.canvas.layout = widgets.Layout(width=f"{width}px", height=f"{height}px")
        self.buttons.teach.disabled = target is None
        self.buttons.teach.value = target is not None
        # The text box only for models trained with text prompts (SAM §7.5).
        has_text = self.predictor.model.prompt_encoder.has_text_prompts
        self.buttons.text_row.layout.display = None if has_text else "none"
        self._suggest()
        self._redraw()
        self._show_status("left click: foreground · right or shift+click: background · "
                          "drag: box")

    def to_image(self, x: float, y: float) -> tuple[int, int] | None:
        """Canvas pixel (x, y) -> image pixel (column, row), or None if outside the image."""
        w, h = self.canvas.width, self.canvas.height
        if self.session is None or not (0 <= x <= w and 0 <= y <= h):
            return None
        H, W = self.session.size
        # A release exactly on the right/bottom edge belongs to the last pixel.
        return min(int(x * W / w), W - 1), min(int(y * H / h), H - 1)

    # ------------------------------------------------------------------ events
    def _connect(self) -> None:
        self.canvas.on_mouse_down(self._on_mouse_down)
        self.canvas.on_mouse_move(self._on_mouse_move)
        self.canvas.on_mouse_up(self._on_mouse_up)
        self.canvas.on_mouse_out(self._on_mouse_out)
        self.canvas.on_client_ready(self._redraw)  # a new browser view starts blank
        # Buttons and modifiers; also stops the browser's context menu on right clicks.
        self.events = Event(source=self.canvas, watched_events=["mousedown", "contextmenu"],
                            prevent_default_action=True)
        self.events.on_dom_event(self._on_dom_event)
        b = self.buttons
        b.undo.on_click(lambda _: self._undo())
        b.reset.on_click(lambda _: self._reset())
        b.suggest.on_click(lambda _: self._take_suggestion())
        b.mask.observe(self._on_mask_choice, "value")
        b.teach.observe(self._on_teach, "value")
        b.text.observe(self._on_text, "value")  # on Enter (continuous_update is off)

    @_reported
    def _on_dom_event(self, event: dict) -> None:
        if event.get("type") == "mousedown":
            waiting = self._pairs.report(event)
            if waiting is not None:  # a click released before its report came: finish it
                self._click(*waiting, event)

    @_reported
    def _on_mouse_down(self, x: float, y: float) -> None:
        self._press, self._dragging = (x, y), False
        self._pairs.press()

    @_reported
    def _on_mouse_move(self, x: float, y: float) -> None:
        if self._press is None:
            return
        x0, y0 = self._press
        self._dragging = self._dragging or max(abs(x - x0), abs(y - y0)) > DRAG_PIXELS
        if self._dragging:
            with hold_canvas():
                self._draw_prompts(rubber_band=(x0, y0, x, y))

    @_reported
    def _on_mouse_up(self, x: float, y: float) -> None:
        press, dragging, self._press = self._press, self._dragging, None
        if press is None or self.session is None:
            return
        start = time.perf_counter()
        if dragging:
            corners = self.to_image(*press), self.to_image(x, y)
            if None in corners:
                return self._ignored("the box must start and end on the image")
            self.session.set_box(*corners[0], *corners[1])
            return self._after_prediction(start)
        pixel = self.to_image(*press)
        if pixel is None:
            return self._ignored(f"the click ({press[0]:.0f}, {press[1]:.0f}) is outside the "
                                 "image")
        loop = _running_loop()
        report, waiting = self._pairs.release(pixel, start, can_time_out=loop is not None)
        if waiting is None:
            return self._click(pixel, start, report)
        if loop is not None:
            loop.call_later(REPORT_WAIT, self._give_up, waiting)

    @_reported
    def _give_up(self, index: int) -> None:
        waiting = self._pairs.give_up(index)
        if waiting is not None:
            self._click(*waiting, None)

    def _click(self, pixel: tuple[int, int], start: float, report: dict | None) -> None:
        self.session.add_point(*pixel, foreground=not self._background(report))
        self._after_prediction(start)

    @_reported
    def _on_mouse_out(self, x: float, y: float) -> None:
        if self._press is not None and self._dragging:  # a box dragged off the canvas: drop it
            self._press = None
            self._draw_prompts()

    def _background(self, report: dict | None) -> bool:
        """Right button, shift held, or the "clicks add: background" toggle."""
        if self.buttons.label.value == "background":
            return True
        return report is not None and (report.get("button") == 2 or bool(report.get("shiftKey")))

    # ------------------------------------------------------------------ buttons
    @_reported
    def _undo(self) -> None:
        if self.session is None or not self.session.can_undo:
            return self._ignored("nothing to undo")
        self.session.undo()
        self._after_prediction(time.perf_counter())

    @_reported
    def _reset(self) -> None:
        if self.session is not None:
            self.session.reset()
            self._after_prediction(time.perf_counter())

    @_reported
    def _take_suggestion(self) -> None:
        click = self._suggested if self._teaching else None
        if click is None:
            return self._ignored("no suggestion: teaching mode needs a target, and an error")
        start = time.perf_counter()
        self.session.add_point(click.x, click.y, foreground=click.is_positive)
        self._after_prediction(start)

    @_reported
    def _on_mask_choice(self, change: dict) -> None:
        prediction = self.session.prediction if self.session is not None else None
        if self.buttons.syncing or prediction is None or len(prediction.masks) < 2:
            return
        self.session.choose_mask(change["new"])
        self._after_prediction(time.perf_counter())

    @_reported
    def _on_text(self, change: dict) -> None:
        if self.session is None or self.buttons.syncing:
            return
        start = time.perf_counter()
        words = change["new"].strip() or None  # emptied: the text is removed
        first = words is not None and not self.session.has_clicks_or_box
        own = self.buttons.text_click.value if first else False  # words before any click or box
        self.session.set_text(words, text_click=own)
        self._after_prediction(start)

    @_reported
    def _on_teach(self, change: dict) -> None:
        if self.session is None:
            return
        self._suggest()
        self._paint()
        self._show_status(self._describe())

    # ------------------------------------------------------------------ drawing
    def _after_prediction(self, start: float) -> None:
        self.buttons.show(self.session)
        self._suggest()
        self._paint()
        self.last_latency = time.perf_counter() - start
        self._show_status(self._describe())

    def _redraw(self, *_) -> None:
        if self.session is not None:
            self._paint(image=True)

    def _paint(self, image: bool = False) -> None:
        """Send the mask overlay and the prompts (and the image) in one batch of commands."""
        with hold_canvas():
            if image:
                self._put(0, np.dstack([self.session.image,
                                        np.full(self.session.size, 255, np.uint8)]))
            self._draw_overlay()
            self._draw_prompts()

    def _draw_overlay(self) -> None:
        kinds = self.session.mask.astype(np.uint8)  # (H, W): 0 nothing, 1 mask
        if self._teaching:
            fn, fp = self.session.error_regions()
            kinds[fn], kinds[fp] = 2, 3
        self._put(1, _RGBA[kinds])

    def _put(self, layer: int, rgba: np.ndarray) -> None:
        """Draw an (H, W, 4) picture over the whole canvas, at no more pixels than needed."""
        canvas, (H, W) = self.canvas[layer], rgba.shape[:2]
        w, h = canvas.width, canvas.height
        rows = (np.arange(min(H, h)) + 0.5) * H / min(H, h)  # sample centres, nearest pixel
        cols = (np.arange(min(W, w)) + 0.5) * W / min(W, w)
        small = rgba[rows.astype(int)[:, None], cols.astype(int)[None, :]]  # (h', w', 4)
        canvas.image_smoothing_enabled = False  # enlarged pixels stay square: what SAM saw
        canvas.clear()
        canvas.save()
        canvas.scale(w / small.shape[1], h / small.shape[0])
        canvas.put_image_data(small, 0, 0)
        canvas.restore()

    def _draw_prompts(self, rubber_band: tuple[float, float, float, float] | None = None) -> None:
        layer, session = self.canvas[2], self.session
        layer.clear()
        if session is None:
            return
        sx, sy = self.canvas.width / session.size[1], self.canvas.height / session.size[0]
        if session.box is not None:
            x0, y0, x1, y1 = session.box
            layer.stroke_style, layer.line_width = "lime", 2
            layer.stroke_rect(x0 * sx, y0 * sy, (x1 - x0 + 1) * sx, (y1 - y0 + 1) * sy)
        for (x, y), label in zip(session.points, session.labels, strict=True):
            _star(layer, (x + 0.5) * sx, (y + 0.5) * sy, "#00c000" if label else "#e00000")
        click = self._suggested if self._teaching else None
        if click is not None:
            _star(layer, (click.x + 0.5) * sx, (click.y + 0.5) * sy, None)
        if rubber_band is not None:
            x0, y0, x1, y1 = rubber_band
            layer.stroke_style, layer.line_width = "lime", 1
            layer.set_line_dash([4, 4])
            layer.stroke_rect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))
            layer.set_line_dash([])

    # ------------------------------------------------------------------ status
    @property
    def _teaching(self) -> bool:
        return self.session is not None and self.session.target is not None \
            and self.buttons.teach.value

    def _suggest(self) -> None:
        """The robot's next click, made once per new mask: the star, the status line and the
        "take suggested click" button all show the same one (the training rule is random)."""
        self._suggested = self.session.suggest_click(self.rule) if self._teaching else None

    def _describe(self) -> str:
        session = self.session
        n, fg = len(session.labels), int(session.labels.sum())
        parts = [f"{n} click{'s' * (n != 1)} ({fg} fg, {n - fg} bg)"
                 + (" + box" if session.box is not None else "")
                 + (f" + text “{session.text}”" if session.text is not None else "")]
        prediction: Prediction | None = session.prediction
        if prediction is not None:
            parts.append(f"mask {prediction.chosen + 1}/{len(prediction.masks)}, predicted IoU "
                         f"{prediction.score:.2f}")
            parts.append(f"click → mask {1000 * self.last_latency:.0f} ms "
                         f"(model {1000 * prediction.seconds:.0f} ms)")
        if self._teaching:
            parts.append(f"IoU with the target {session.target_iou():.2f}")
            click = self._suggested
            if click is not None:
                kind = "foreground" if click.is_positive else "background"
                parts.append(f"{self.rule} would click {kind} at ({click.x}, {click.y}) ☆")
        return " · ".join(parts)

    def _ignored(self, message: str) -> None:
        self._show_status(message)

    def _show_status(self, message: str, error: bool = False) -> None:
        color = "#c00000" if error else "inherit"
        self.status.value = f'<span style="color:{color}">{html.escape(message)}</span>'

    def __repr__(self) -> str:
        if self.session is None:
            return "ClickDemo(no image)"
        h, w = self.session.size
        return f"ClickDemo({w}x{h} image, canvas {self.canvas.width}x{self.canvas.height})"


class _Controls:
    """The row of buttons under the canvas."""

    def __init__(self) -> None:
        fit = widgets.Layout(width="auto")
        self.undo = widgets.Button(description="undo", icon="undo", layout=fit)
        self.reset = widgets.Button(description="reset", icon="trash", layout=fit)
        self.mask = widgets.ToggleButtons(options=[("1", 0), ("2", 1), ("3", 2)], value=None,
                                          disabled=True, style={"button_width": "2.5em"})
        self.label = widgets.ToggleButtons(options=["foreground", "background"],
                                           style={"button_width": "7.5em"})
        self.teach = widgets.ToggleButton(description="teaching mode", disabled=True, layout=fit)
        self.suggest = widgets.Button(description="take suggested click", icon="star-o",
                                      layout=fit)
        self.text = widgets.Text(placeholder="type what to segment, then correct with clicks",
                                 continuous_update=False, layout=widgets.Layout(width="24em"))
        self.text_click = widgets.Dropdown(  # the model's own click with the words, or none
            options=[("words alone", False), ("+ a click where the words point", "map"),
                     ("+ a click where CLIP points", "clip")], value=False,
            layout=widgets.Layout(width="17em"))
        self.text_row = widgets.HBox([widgets.Label("text"), self.text, self.text_click])
        self.syncing = False
        self.box = widgets.VBox([widgets.HBox([self.undo, self.reset, self.teach, self.suggest]),
                                 widgets.HBox([widgets.Label("clicks add"), self.label,
                                               widgets.Label("mask"), self.mask]),
                                 self.text_row])

    def show(self, session: PromptSession) -> None:
        """Mask choice: enabled for the three masks of a first prompt, showing their scores."""
        prediction, self.syncing = session.prediction, True
        try:
            self.text.value = session.text or ""  # undo and reset bring the text back too
            multi = prediction is not None and len(prediction.masks) > 1
            self.mask.disabled = not multi
            self.mask.value = prediction.chosen if multi else None
            self.mask.tooltips = [f"predicted IoU {s:.2f}" for s in prediction.scores] \
                if multi else []
        finally:
            self.syncing = False


class _PressPairs:
    """Pairs the n-th press on the canvas with ipyevents' n-th report, whenever each arrives."""

    def __init__(self) -> None:
        self.presses = 0  # ipycanvas mouse_down messages so far
        self.reports: dict[int, dict] = {}  # press index -> its ipyevents report, not yet used
        self.reported = 0  # ipyevents mousedown reports so far
        self.waiting: dict[int, tuple] = {}  # press index -> (pixel, start) of a waiting click
        self.absent = False  # waited once and no report ever came: ipyevents is not rendering

    def press(self) -> None:
        self.presses += 1

    def report(self, event: dict) -> tuple | None:
        """Store the next report; returns the (pixel, start) of the click it completes, if any."""
        index, self.reported = self.reported, self.reported + 1
        for old in [i for i in self.reports if i < index - 16]:  # reports of boxes, unused
            del self.reports[old]
        if index in self.waiting:
            return self.waiting.pop(index)
        self.reports[index] = event
        return None

    def release(self, pixel: tuple[int, int], start: float, can_time_out: bool):
        """The release of the latest press as a click: (its report, None) when it can be decided
        now (report known, or none expected), else (None, index to wait for)."""
        index = self.presses - 1
        if index in self.reports:
            return self.reports.pop(index), None
        # Wait only where a report will come: ipyevents has reported before, or a kernel event
        # loop can end the wait (headless, without either, there is nothing to wait for).
        if self.absent or not (self.reported > 0 or can_time_out):
            return None, None
        self.waiting[index] = (pixel, start)
        return None, index

    def give_up(self, index: int) -> tuple | None:
        if index not in self.waiting:
            return None
        self.absent = self.reported == 0
        return self.waiting.pop(index)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The kernel's event loop while it handles a message; None outside one (headless)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _star(layer, x: float, y: float, fill: str | None, radius: float = 9.0) -> None:
    """A five-pointed star at canvas (x, y): filled (a click) or hollow gold (a suggestion)."""
    points = _STAR * radius + (x, y)  # (10, 2)
    layer.line_width = 1.5 if fill else 2.5
    if fill is not None:
        layer.fill_style = fill
        layer.fill_polygon(points)
    layer.stroke_style = "white" if fill else "gold"
    layer.stroke_polygon(points)
