"""What samteach's command-line tools share: they fail like Unix tools.

A bad flag or a bad input prints one line, ``error: ...``, naming what was wrong and what was
expected, and the command exits with status 2 -- no Python traceback (``--debug`` shows it). The
tools' ``main`` functions raise as library code does (``ValueError``, ``TypeError``, a missing
file, ...); :func:`run` is what turns that into the one line, at the command's entry point only.
"""

import argparse
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


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are raised (then :func:`run` prints them as one
    line), with the ``--debug`` flag every samteach command has."""

    def __init__(self, prog: str | None = None, description: str | None = None,
                 **kwargs) -> None:  # argparse makes subcommands' parsers with keywords
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, description=description, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help="on an error, show the Python traceback, not one line")

    def error(self, message: str):
        raise UsageError(message)


def run(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None):
    """Run a command's ``main(argv)`` and exit: status 0; 2 with one ``error:`` line for bad
    input; 1 (also one line) when the command failed at its job (``CommandFailed``)."""
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        main(given)
    except USER_ERRORS as error:
        if "--debug" in given:
            raise
        message = str(error) or type(error).__name__
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
