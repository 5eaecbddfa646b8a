"""One check per exercise of the labs: ``samteach.checks.<exercise>(your_object)``.

Each check runs your function or class and samteach's on seeded inputs, edge cases included.
It prints one line when they agree and otherwise raises ``AssertionError`` with a hint that
names the likely mistake. ``EXERCISES`` lists them all (lab, points, the mistakes it knows).
"""

from ._core import EXERCISES, CheckFailed, Exercise, set_student_call_guard
from .lab01 import *  # noqa: F403 -- each lab module exports its checks
from .lab02 import *  # noqa: F403
from .lab03 import *  # noqa: F403
from .lab04 import *  # noqa: F403
from .lab06 import *  # noqa: F403
from .lab07 import *  # noqa: F403

__all__ = ["EXERCISES", "CheckFailed", "Exercise", "set_student_call_guard",
           *sorted(f"check_{n}" for n in EXERCISES)]
