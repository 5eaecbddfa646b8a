"""``python -m samteach.evaluate``: the evaluation command line (:mod:`samteach.evaluation`)."""

from .evaluation.__main__ import main

if __name__ == "__main__":
    main()
