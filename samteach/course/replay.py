"""Grade one submitted notebook in a clean process: the student's code re-run, every check called
by the grader, not by the notebook, and tampering detected.

    python -m samteach.course.replay SUBMISSION.ipynb --timeout 120   (a nonce on stdin)

``grading.grade_folder`` starts one such process per notebook. Here, before any student code:

1. samteach's checks (and torch, numpy, everything they use) are imported, and the grader keeps
   its own reference to each check function;
2. a fingerprint is taken of every attribute the checks could rely on: each samteach module and
   class, their functions' code, defaults and closures, and the torch, numpy and builtins
   functions (``_Watch``).

Then the notebook's code cells run one by one in an IPython shell (magics work), with the
released check cells in place of whatever the student left there. After every cell the
fingerprint is compared: a change (``samteach.checks.check_patchify`` replaced, a helper of the
checks patched, ``torch.allclose`` monkeypatched, ...) flags the exercise whose check comes next,
and the original attributes are put back, so later exercises are graded in a clean state again.
At a check cell the grader evaluates the object the cell passes (``check_patchify(patchify)`` ->
the student's ``patchify``) and calls its own check on it. While the check runs the student's
code, a profiler watches for samteach's own solution of that exercise being called
(``Exercise.reference``): an answer that is samteach's function, or a thin wrapper around it,
is flagged too, and so is a notebook that prints a check's success line itself. What the
notebook prints counts for nothing otherwise; the verdicts go back to the grader on a private
channel, tagged with the nonce it sent.
"""

import argparse
import ast
import builtins
import contextlib
import functools
import importlib
import io
import json
import math
import os
import signal
import sys
import types

import numpy
import torch
import torch.nn.functional

from ..checks import EXERCISES, CheckFailed, set_student_call_guard
from .grading import _check_name

__all__ = ["grade_notebook"]


class CellTimeout(BaseException):
    """A cell or a check ran past its time (a BaseException: ``except Exception`` in student
    code does not swallow it)."""


# ------------------------------------------------------------------------------ tampering


def _parts(value: object) -> tuple | None:
    """A function's swappable insides: code, defaults, keyword defaults, closure contents."""
    if not isinstance(value, types.FunctionType):
        return None
    contents = []
    for cell in value.__closure__ or ():
        try:
            contents.append(cell.cell_contents)
        except ValueError:  # an empty cell
            contents.append(_EMPTY)
    return value.__code__, value.__defaults__, value.__kwdefaults__, tuple(contents)


_EMPTY = object()


def _fingerprint(value: object) -> tuple:
    """What identifies an attribute's value: the object, and for a function also its insides
    (all of which can be swapped without replacing the function)."""
    parts = _parts(value)
    inside = () if parts is None else (*map(id, parts[:3]), *map(id, parts[3]))
    return (id(value), *inside)


class _Watch:
    """A fingerprint of everything the checks rely on, to compare and restore after student
    code ran."""

    def __init__(self) -> None:
        owners = [("builtins", builtins), ("math", math), ("contextlib", contextlib),
                  ("io", io), ("functools", functools), ("numpy", numpy), ("torch", torch),
                  ("torch.nn.functional", torch.nn.functional), ("torch.linalg", torch.linalg),
                  ("torch.Tensor", torch.Tensor), ("torch.nn.Module", torch.nn.Module)]
        for name, module in sorted(sys.modules.items()):
            if name == "samteach" or name.startswith("samteach."):
                owners.append((name, module))
                owners += [(f"{name}.{attr}", value) for attr, value in vars(module).items()
                           if isinstance(value, type) and value.__module__ == name]
        self.owners = owners
        self.saved = {label: {attr: (value, _fingerprint(value), _parts(value))
                              for attr, value in list(vars(owner).items())}
                      for label, owner in owners}

    def changes(self) -> list[str]:
        """The attributes replaced, deleted or changed inside since the fingerprint; each is
        put back as it was.

        New attributes are allowed (importing a submodule adds one to its package), except in
        samteach's classes, where one would override an inherited method: those are removed.
        """
        changed = []
        for label, owner in self.owners:
            now, saved = vars(owner), self.saved[label]
            if isinstance(owner, type) and label.startswith("samteach"):
                # (copy and pickle cache __slotnames__ on a class: Python's own, harmless)
                for attr in [a for a in now if a not in saved and a != "__slotnames__"]:
                    changed.append(f"{label}.{attr}")
                    delattr(owner, attr)
            for attr, (value, print_, parts) in list(saved.items()):
                if attr in now and _fingerprint(now[attr]) == print_:
                    continue
                if attr in now and _torch_wrapped(now[attr], value):  # torch's own doing
                    saved[attr] = (now[attr], _fingerprint(now[attr]), _parts(now[attr]))
                    continue
                changed.append(f"{label}.{attr}")
                _restore(owner, attr, value, parts)
        return changed


_TORCH_DIR = os.path.dirname(torch.__file__)


def _torch_wrapped(new: object, old: object) -> bool:
    """Whether ``new`` is torch wrapping ``old`` (importing torch._dynamo, which student code or
    torch itself may do lazily, wraps torch.manual_seed so): a wrapper written in torch's own
    files around the very same function."""
    code = getattr(new, "__code__", None)
    return (getattr(new, "__wrapped__", None) is old and code is not None
            and os.path.abspath(code.co_filename).startswith(_TORCH_DIR + os.sep))


def _restore(owner: object, attr: str, value: object, parts: tuple | None) -> None:
    setattr(owner, attr, value)
    if parts is not None:  # the function may be the same object with other insides
        value.__code__, value.__defaults__, value.__kwdefaults__, contents = parts
        for cell, content in zip(value.__closure__ or (), contents, strict=True):
            if content is not _EMPTY:
                cell.cell_contents = content


class _ReferenceGuard:
    """While the student's code runs inside a check: did it call samteach's own solution of
    the exercise (``Exercise.reference``)? Installed as the checks' student-call guard."""

    def __init__(self) -> None:
        self.codes: dict[types.CodeType, str] = {}
        self.used: str | None = None

    def arm(self, exercise) -> None:
        self.codes = {_resolve(dotted).__code__: dotted for dotted in exercise.reference}
        self.used = None

    @contextlib.contextmanager
    def __call__(self):
        def profile(frame, event, arg):
            if event == "call" and self.used is None:
                self.used = self.codes.get(frame.f_code)

        sys.setprofile(profile if self.codes else None)
        try:
            yield
        finally:
            if self.codes and sys.getprofile() is not profile and self.used is None:
                self.used = "sys.setprofile (it switched the grader's watch off)"
            sys.setprofile(None)


def _resolve(dotted: str):
    """"samteach.modeling.image_encoder.Attention.forward" -> the function."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            value = vars(value)[attr] if isinstance(value, type) else getattr(value, attr)
        return value
    raise ValueError(f"no such reference: {dotted}")


# --------------------------------------------------------------------------------- grading


def _argument(source: str) -> str:
    """The expression a check cell passes to its check: ``check_x(patchify)`` -> "patchify"."""
    for node in reversed(ast.parse(source).body):
        call = getattr(node, "value", None)
        if isinstance(call, ast.Call) and call.args and getattr(call.func, "id", "").startswith(
                "check_"):
            return ast.unparse(call.args[0])
    raise ValueError("a check cell without a check_...(...) call")


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise CellTimeout in the block once ``seconds`` have passed (SIGALRM, main thread)."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _on_alarm(signum, frame):
    raise CellTimeout()


def grade_notebook(notebook, timeout: float) -> dict[str, dict]:
    """Run a restored submission (check cells as released) and grade each exercise:
    name -> {"points", "message", "flag" (what was detected, or "")}."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    checks = {name: ex.check for name, ex in EXERCISES.items()}  # ours, held from the start
    config = Config()
    config.HistoryManager.enabled = False  # no history database shared by parallel graders
    shell = InteractiveShell.instance(config=config)
    guard = _ReferenceGuard()
    set_student_call_guard(guard)
    signal.signal(signal.SIGALRM, _on_alarm)
    watch = _Watch()
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    upcoming = [_check_name(c) for c in cells]
    # What follows the last check cannot change a verdict: demos and training runs are skipped.
    last = max((i for i, name in enumerate(upcoming) if name), default=-1)
    cells = cells[: last + 1]
    results, flags = {}, {}
    for index, cell in enumerate(cells):
        name = upcoming[index]
        if name is None:
            printed = _run_cell(shell, cell.source, timeout)
            following = next((n for n in upcoming[index:] if n), None)
            changed = [f"changed {what}" for what in watch.changes()]
            if changed and following:
                flags.setdefault(following, []).extend(changed)
            for other in EXERCISES:  # a check's success line, printed by the student's code
                if f"✔ {other}:" in printed:
                    flags.setdefault(other, []).append("prints the check's success line")
            continue
        results[name] = _grade(name, cell.source, checks[name], shell, guard, watch, timeout,
                               flags.get(name))
    return results


def _flagged(flag: str, message: str) -> dict:
    """The verdict of an exercise where something was detected: 0 points, and why."""
    return {"points": 0, "flag": flag, "message": f"{message}; this exercise scores 0"}


def _grade(name, source, check, shell, guard, watch, timeout, tampered) -> dict:
    points = EXERCISES[name].points
    if tampered:
        what = ", ".join(sorted(set(tampered))[:5])
        return _flagged(what, f"tampering detected: the notebook {what} (the checks are the "
                              "grader's, not the notebook's)")
    try:
        student = eval(_argument(source), shell.user_ns)  # the object the cell passes
    except Exception as error:
        return {"points": 0, "flag": "",
                "message": f"the check cell raised {type(error).__name__}: {error}"}
    guard.arm(EXERCISES[name])
    verdict = {"points": 0, "flag": ""}
    try:  # gradients on, as a fresh kernel has them (a notebook may have switched them off)
        with contextlib.redirect_stdout(io.StringIO()), torch.enable_grad(), \
                _time_limit(timeout):
            check(student)
        verdict.update(points=points, message="passed")
    except CellTimeout:
        verdict["message"] = f"timed out after {timeout:g} s"
    except CheckFailed as error:
        verdict["message"] = str(error)
    except Exception as error:
        verdict["message"] = f"the check cell raised {type(error).__name__}: {error}"
    changed = watch.changes()
    if changed:
        what = ", ".join(sorted(set(changed))[:5])
        return _flagged(f"changed {what}",
                        f"tampering detected: the answer changed {what} while it was checked")
    if guard.used:
        return _flagged(f"uses {guard.used}", f"the answer calls samteach's own solution, "
                                              f"{guard.used}: write it yourself")
    return verdict


def _run_cell(shell, source: str, timeout: float) -> str:
    """Run one cell like a kernel would; an error or a timeout ends the cell, not the run.
    Returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        try:
            with _time_limit(timeout):
                shell.run_cell(source, store_history=False)
        except CellTimeout:  # raised between statements IPython does not guard
            pass
    return printed.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m samteach.course.replay")
    parser.add_argument("notebook")
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args()
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")  # the verdicts' way out
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # what the student's code prints goes nowhere
    import nbformat

    notebook = nbformat.read(args.notebook, as_version=4)
    results = grade_notebook(notebook, args.timeout)
    channel.write(json.dumps({"nonce": nonce, "results": results}) + "\n")
    channel.flush()
    os._exit(0)  # no atexit hook of the student's runs after the verdict


if __name__ == "__main__":
    main()
