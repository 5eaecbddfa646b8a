"""The machinery every exercise check shares: call the student's code, compare, name the mistake.

A check runs the student's function or class and samteach's on the same seeded inputs. When the
two disagree it does not stop at "wrong": it also runs *known wrong versions* of the reference
(a swapped x/y, a missing +0.5, softmax over the wrong axis, ...) and, when the student's
output equals one of them, says which mistake that is and how to fix it.

On success a check prints one line that depends on nothing but the exercise (nbval compares it
on CPU and GPU); on failure it raises :class:`CheckFailed`, an ``AssertionError``.
"""

import contextlib
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["EXERCISES", "CheckFailed", "Context", "Exercise", "exercise", "nearest",
           "seeded_generator", "seeded_randn", "set_student_call_guard"]

NOT_IMPLEMENTED = ("not implemented yet: replace `raise NotImplementedError()` in the exercise "
                   "cell with your code, run that cell, then run this check again")


class CheckFailed(AssertionError):
    """A check found a mistake; the message says which and how to fix it."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lab and the check that grades it."""

    name: str  # the check is samteach.checks.<name>(student_object)
    lab: str  # the notebook's stem, e.g. "01_patch_embedding"
    points: int  # what the gradebook gives for a passing check
    what: str  # how the student's object is called, for messages: "patchify(images, 8)"
    mistakes: dict[str, str] = field(default_factory=dict)  # key -> the hint shown for it
    check: Callable[..., int] | None = field(default=None, compare=False, repr=False)
    # samteach's own solution (dotted names of functions): an answer that calls it is no answer;
    # the grader watches for it (samteach.course.replay)
    reference: tuple[str, ...] = ()

    def hint(self, key: str) -> str:
        return self.mistakes[key]


# Every check registers itself here on import (samteach.checks imports all labs).
EXERCISES: dict[str, Exercise] = {}

# Wraps every call of the student's code when set: the grader's watch for samteach's own
# solution being called (samteach.course.replay); None in a notebook.
_student_call_guard: Callable[[], contextlib.AbstractContextManager] | None = None


def set_student_call_guard(guard: Callable[[], contextlib.AbstractContextManager] | None) -> None:
    global _student_call_guard
    _student_call_guard = guard


class Context:
    """What a check function receives besides the student's object."""

    def __init__(self, ex: Exercise, student: object) -> None:
        self.ex = ex
        self.student = student

    def fail(self, message_or_key: str, case: str | None = None) -> None:
        """Raise CheckFailed with a mistake's hint (if a key is given) or with the message."""
        message = self.ex.mistakes.get(message_or_key, message_or_key)
        where = f" [{case}]" if case else ""
        raise CheckFailed(f"{self.ex.name}{where}: {message}")

    def call(self, *args, case: str | None = None, **kwargs):
        """Call the student's object; their prints are swallowed so the check's line is alone."""
        return self.run(self.student, *args, case=case, **kwargs)

    def run(self, fn: Callable, *args, case: str | None = None, **kwargs):
        """Run any piece of the student's code (a method of their module, say) the same way."""
        guard = _student_call_guard or contextlib.nullcontext
        try:
            with contextlib.redirect_stdout(io.StringIO()), guard():
                return fn(*args, **kwargs)
        except NotImplementedError:
            raise CheckFailed(f"{self.ex.name}: {NOT_IMPLEMENTED}") from None
        except CheckFailed:
            raise
        except Exception as error:  # the student's code crashed: say where and on what
            self.fail(f"calling {self.ex.what} raised {type(error).__name__}: {error}", case)

    def expect(
        self,
        got: object,
        expected: torch.Tensor,
        case: str,
        mistakes: dict[str, Callable[[], torch.Tensor]] | None = None,
        atol: float = 1e-5,
        rtol: float = 1e-4,
        name: str = "the result",
    ) -> None:
        """Pass if ``got`` equals ``expected``; otherwise name the mistake it equals, if any
        (all of them, when several give the same numbers on these inputs).

        ``mistakes`` maps a mistake's key to a function computing what that mistake returns;
        they are only computed when the answer is wrong.
        """
        if not isinstance(got, torch.Tensor):
            self.fail(f"{name} should be a torch.Tensor, got {type(got).__name__}", case)
        if got.shape == expected.shape and _close(got, expected, atol, rtol):
            return
        matched = []
        for key, wrong in (mistakes or {}).items():
            candidate = wrong()
            if candidate.shape == got.shape and _close(got, candidate, atol, rtol):
                matched.append(key)
        if len(matched) == 1:
            self.fail(matched[0], case)
        if matched:  # different mistakes, the same numbers on these inputs: name them all
            readings = "; OR ".join(self.ex.mistakes.get(key, key) for key in matched)
            self.fail(f"one of {len(matched)} mistakes that give the same numbers here: "
                      f"{readings}", case)
        if got.shape != expected.shape:
            self.fail(f"{name} has shape {tuple(got.shape)}; expected {tuple(expected.shape)}",
                      case)
        if got.dtype.is_floating_point and expected.dtype.is_floating_point:
            worst = (got.detach().double() - expected.detach().double()).abs().max().item()
            detail = f"differ from samteach's by up to {worst:.3g}"
        else:
            detail = f"differ from samteach's in {int((got != expected).sum())} entries"
        self.fail(f"the values of {name} {detail}", case)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator of its own, so a check's inputs never depend on the global RNG."""
    return torch.Generator().manual_seed(seed)


def seeded_randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=seeded_generator(seed))


def nearest(got: object, *candidates: torch.Tensor | Callable[[], torch.Tensor]) -> torch.Tensor:
    """Of several ways to make one mistake, the output nearest to the student's ``got``.

    Candidates are tensors or functions making them; when none has ``got``'s shape (or ``got``
    is no tensor) the first is returned, so the mistake simply does not match.
    """
    made = [c() if callable(c) else c for c in candidates]

    def distance(c: torch.Tensor) -> float:
        if not isinstance(got, torch.Tensor) or c.shape != got.shape:
            return float("inf")
        return (c.detach().cpu().double() - got.detach().cpu().double()).abs().max().item()

    return min(made, key=distance)  # ties (all inf) keep the first


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float) -> bool:
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.dtype == torch.bool or b.dtype == torch.bool or not a.dtype.is_floating_point:
        return a.dtype == b.dtype and bool(torch.equal(a, b)) or (
            not a.dtype.is_floating_point and torch.equal(a.long(), b.long()))
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol))


def exercise(name: str, lab: str, points: int, what: str, mistakes: dict[str, str],
             reference: tuple[str, ...] = ()):
    """Register ``fn(ctx) -> number of cases`` as the check of exercise ``name``.

    The decorated function becomes ``check(student_object)``: it runs the cases and prints
    the success line, or raises CheckFailed.
    """

    def wrap(fn: Callable[[Context], int]) -> Callable[[object], None]:
        ex = Exercise(name, lab, points, what, dict(mistakes))

        @functools.wraps(fn)
        def check(student: object) -> None:
            if student is None or not callable(student):
                raise CheckFailed(f"{name}: pass the function or class you wrote, e.g. "
                                  f"{what.split('(')[0]}; got {type(student).__name__}")
            cases = fn(Context(ex, student))
            print(f"✔ {name}: {cases} cases match samteach — {points} "
                  f"point{'s' if points != 1 else ''}")

        EXERCISES[name] = Exercise(name, lab, points, what, dict(mistakes), check,
                                   tuple(reference))
        return check

    return wrap
