"""``python -m samteach.train``: the training command line (:mod:`samteach.training.__main__`)."""

from .training.__main__ import main
from .utils.cli import run

if __name__ == "__main__":
    run(main)
