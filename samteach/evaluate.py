"""``python -m samteach.evaluate``: the evaluation command line (:mod:`samteach.evaluation`)."""

from .evaluation.__main__ import main
from .utils.cli import run

if __name__ == "__main__":
    run(main)
