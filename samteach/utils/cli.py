"""What samteach's command-line tools share: they fail like Unix tools.

A bad flag or a bad input prints one line, ``error: ...``, naming what was wrong and what was
expected, and the command exits with status 2 -- no Python traceback (``--debug`` shows it). The
tools' ``main`` functions raise as library code does (``ValueError``, ``TypeError``, a missing
file, ...); :func:`run` is what turns that into the one line, at the command's entry point only.
"""

import argparse
import re
import sys
from collections.abc import Callable, Sequence

__all__ = ["ArgumentParser", "CommandFailed", "UsageError", "run"]

# What a user's input can cause: a wrong value or type, a file that is missing, is a folder, or
# cannot be written. Anything else is samteach's bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError,
               NotADirectoryError, PermissionError)


class UsageError(ValueError):
    """A flag argparse refused (unknown, missing, of the wrong type)."""


class CommandFailed(Exception):
    """The input was fine but the command could not do its whole job (exit status 1)."""


# The parsers of the command being run, so that an error raised deep in the library about a
# parameter ("eval_scenes must be ...") names the flag the user typed ("--eval-scenes").
_PARSERS: list["ArgumentParser"] = []


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are raised (then :func:`run` prints them as one
    line), with the ``--debug`` flag every samteach command has.

    ``aliases`` names the library parameters a flag of another name sets, e.g.
    ``{"max_steps": "--steps"}``; flags named like their parameter need none.
    """

    def __init__(self, prog: str | None = None, description: str | None = None,
                 aliases: dict[str, str] | None = None,
                 **kwargs) -> None:  # argparse makes subcommands' parsers with keywords
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, description=description, **kwargs)
        self.aliases = dict(aliases or {})
        self.add_argument("--debug", action="store_true",
                          help="on an error, show the Python traceback, not one line")
        _PARSERS.append(self)

    def error(self, message: str):
        raise UsageError(message)

    def flags(self) -> dict[str, str]:
        """Library parameter -> the flag that sets it."""
        named = {action.dest: action.option_strings[-1] for action in self._actions
                 if action.option_strings and action.dest != "help"}
        return {**named, **self.aliases}


def _name_the_flag(message: str) -> str:
    """"eval_scenes must be ..." -> "--eval-scenes must be ..." (when a flag sets it)."""
    first = re.match(r"\w+", message)
    if first is None:
        return message
    for parser in _PARSERS:
        flag = parser.flags().get(first.group())
        if flag is not None:
            return flag + message[first.end():]
    return message


def run(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None):
    """Run a command's ``main(argv)`` and exit: status 0; 2 with one ``error:`` line for bad
    input; 1 (also one line) when the command failed at its job (``CommandFailed``)."""
    given = list(sys.argv[1:] if argv is None else argv)
    _PARSERS.clear()
    try:
        main(given)
    except USER_ERRORS as error:
        if "--debug" in given:
            raise
        message = _name_the_flag(str(error) or type(error).__name__)
        if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
            message = f"{message}: {error.filename}"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except CommandFailed as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(0)
