"""The course's own tooling: it builds the labs, refreshes their outputs, grades, releases.

* :mod:`~samteach.course.labs` -- student labs from the solutions, fresh outputs, the source
  hash that tells stale outputs;
* :mod:`~samteach.course.grading` -- grading a folder of submissions;
* :mod:`~samteach.course.replay` -- one submission re-run in a clean process, checks called by
  the grader, tampering detected;
* :mod:`~samteach.course.release` -- shipping trained weights with their JSON and README;
* ``python -m samteach.course`` (:mod:`samteach.course.__main__`) -- the command line.
"""
