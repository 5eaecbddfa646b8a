"""The clicking demo: SAM answering clicks and boxes as a person gives them (lab 05).

* :mod:`~samteach.demo.session` -- :class:`PromptSession`, the logic, usable without a screen
  (the data engine's robot annotator uses it too);
* :mod:`~samteach.demo.widget` -- :class:`ClickDemo`, the ipycanvas widget on top of it
  (imported lazily: ``import samteach.demo`` does not load ipywidgets).
"""

from .session import RULES, Prediction, PromptSession

__all__ = ["RULES", "ClickDemo", "Prediction", "PromptSession"]


def __getattr__(name: str):
    if name == "ClickDemo":  # ipycanvas and ipywidgets load only when the widget is wanted
        from .widget import ClickDemo

        return ClickDemo
    raise AttributeError(f"module 'samteach.demo' has no attribute {name!r}")
