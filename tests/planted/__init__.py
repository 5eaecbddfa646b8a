"""Planted mistakes: edits of the solution code that a lab's checks must recognise.

Each ``labNN.py`` defines ``PLANTED = {exercise: [(mistake_key, old, new), ...]}``: replacing the
text ``old`` (which occurs exactly once in that exercise's solution cell) by ``new`` must make
``samteach.checks.check_<exercise>`` fail with the hint registered under ``mistake_key``.
"""

from . import lab01, lab02, lab03, lab04, lab06, lab07

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    **lab01.PLANTED, **lab02.PLANTED, **lab03.PLANTED, **lab04.PLANTED, **lab06.PLANTED,
    **lab07.PLANTED}
