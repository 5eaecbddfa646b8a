"""The command-line tools fail like Unix tools: a bad flag or input prints one line ``error: ...``
naming the flag as typed, exit status 2, no traceback (``--debug`` shows one); and nothing runs
before the settings are checked."""

import subprocess
import sys

import nbformat
import pytest

from samteach.course.__main__ import main as course_main
from samteach.evaluation.__main__ import main as evaluate_main
from samteach.training.__main__ import main as train_main
from samteach.utils.cli import run

from .test_grading import LAB, solution


@pytest.fixture
def folders(tmp_path):
    """A submissions folder with one student, and a file where a folder is expected."""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    nbformat.write(solution(), tmp_path / "subs" / "alice" / f"{LAB}.ipynb")
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path


CASES = [  # (tool, arguments, what the line must name); {t} is a temporary folder
    (train_main, ["--steps", "x", "--out", "{t}/run"], "--steps"),
    (train_main, ["--steps", "2"], "--out"),
    (train_main, ["--steps", "0", "--out", "{t}/run"], "--steps must be a positive int"),
    (train_main, ["--minutes", "-1", "--out", "{t}/run"], "--minutes must be"),
    (train_main, ["--steps", "2", "--eval-scenes", "0", "--out", "{t}/run"], "--eval-scenes must"),
    (train_main, ["--steps", "2", "--eval-every", "-3", "--out", "{t}/run"], "--eval-every must"),
    (train_main, ["--steps", "2", "--preset", "vit_q", "--out", "{t}/run"], "vit_q"),
    (train_main, ["--steps", "2", "--images", "0", "--out", "{t}/run"], "--images must"),
    (train_main, ["--steps", "2", "--p-box", "1.5", "--out", "{t}/run"], "--p-box must be a share"),
    (train_main, ["--steps", "2", "--init", "nope", "--out", "{t}/run"], "init"),
    (evaluate_main, ["--pretrained", "nope"], "nope"),
    (evaluate_main, ["--checkpoint", "{t}/missing.safetensors"], "does not exist"),
    (evaluate_main, ["--pretrained", "tiny", "--scenes", "0"], "--scenes must be a positive int"),
    (evaluate_main, ["--pretrained", "tiny", "--plot", "{t}/no/such/curve.png"], "--plot"),
    (course_main, ["bogus"], "bogus"),
    (course_main, ["grade", "{t}/missing", "--out", "{t}/grades"], "submissions"),
    (course_main, ["grade", "{t}/subs", "--out", "{t}/grades", "--timeout", "-5"],
     "--timeout must"),
    (course_main, ["grade", "{t}/subs", "--out", "{t}/a_file"], "is a file"),
    (course_main, ["grade", "{t}/subs", "--out", "{t}/grades", "--workers", "0"], "--workers must"),
    (course_main, ["grade", "{t}/subs", "--out", "{t}/grades", "--workers", "many"],
     "--workers must"),
    (course_main, ["reevaluate", "nothing", "--reason", "x"], "no shipped weights named"),
    (course_main, ["reevaluate", "tiny"], "--reason"),
    (course_main, ["reevaluate", "tiny", "--reason", " "], "reason must say"),
]


@pytest.mark.parametrize("tool, argv, named", CASES,
                         ids=[f"{t.__module__.split('.')[1]}:{' '.join(a)}" for t, a, _ in CASES])
def test_a_bad_flag_is_one_error_line_and_status_2(folders, capsys, tool, argv, named):
    argv = [a.replace("{t}", str(folders)) for a in argv]
    with pytest.raises(SystemExit) as stop:
        run(tool, argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], err
    assert not (folders / "run").exists()  # nothing trained before the settings were checked
    assert not (folders / "grades").exists()


def test_debug_shows_the_traceback(folders):
    with pytest.raises(ValueError, match="timeout must be a number > 0"):
        run(course_main, ["grade", str(folders / "subs"), "--out", str(folders / "grades"),
                          "--timeout", "-5", "--debug"])


@pytest.mark.parametrize("module", ["samteach.train", "samteach.evaluate", "samteach.course"])
def test_the_real_commands(module, tmp_path):
    """``python -m ...`` as a user types it: the entry points go through the same wrapper."""
    argv = {"samteach.train": ["--steps", "x", "--out", str(tmp_path)],
            "samteach.evaluate": ["--pretrained", "nope"],
            "samteach.course": ["grade", str(tmp_path / "missing"), "--out", str(tmp_path)]}
    done = subprocess.run([sys.executable, "-m", module, *argv[module]], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
