"""Grading a folder of submissions: every kind of submission is scored as it deserves, and no
submission stops the run."""

import copy
import csv
from pathlib import Path

import nbformat
import pytest

from samteach.checks import EXERCISES
from samteach.course.grading import grade_folder, restore_checks

from .planted import PLANTED
from .test_labs import check_cells, exercise_cell, read

ROOT = Path(__file__).resolve().parents[1]
LAB = "01_patch_embedding"
NAMES = [name for name, ex in EXERCISES.items() if ex.lab == LAB]
FULL = {name: EXERCISES[name].points for name in NAMES}


def solution() -> nbformat.NotebookNode:
    return read(ROOT / "solutions" / f"{LAB}.ipynb")


def lab() -> nbformat.NotebookNode:
    return read(ROOT / "labs" / f"{LAB}.ipynb")


def edit_cell(notebook, name: str, old: str, new: str) -> nbformat.NotebookNode:
    cell = notebook.cells[exercise_cell(notebook, name)]
    assert cell.source.count(old) == 1
    cell.source = cell.source.replace(old, new)
    return notebook


def submissions(folder: Path) -> None:
    """One student folder per kind of submission."""
    def put(student: str, notebook) -> None:
        (folder / student).mkdir(parents=True)
        nbformat.write(notebook, folder / student / f"{LAB}.ipynb")

    put("correct", solution())
    put("blank", lab())
    key, old, new = PLANTED["patchify"][0]
    put("planted", edit_cell(solution(), "patchify", old, new))
    looping = solution()
    looping.cells[exercise_cell(looping, "window_partition")].source = (
        "def window_partition(x, window_size):\n    while True:\n        pass\n")
    put("loops", looping)
    deleted = solution()
    del deleted.cells[check_cells(deleted)["patchify"]]
    put("deletes_check", deleted)
    fake = lab()
    line = "✔ patchify: 3 cases match samteach — 2 points"
    fake.cells[check_cells(fake)["patchify"]].source = f"print({line!r})"
    fake.cells[exercise_cell(fake, "patchify")].source += f"\nprint({line!r})\n"
    put("fakes_success", fake)
    broken = solution()
    first = next(c for c in broken.cells if c.cell_type == "code")
    first.source = "import samteach_module_that_does_not_exist\n" + first.source
    put("raises_at_import", broken)
    (folder / "unreadable").mkdir()
    (folder / "unreadable" / f"{LAB}.ipynb").write_text("{ this is not a notebook")
    return key


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    key = submissions(folder)
    out = tmp_path_factory.mktemp("grades")
    book = grade_folder(folder, out, timeout=30, workers=2)
    return book, out, key


def test_each_submission_gets_what_it_deserves(graded):
    book, _, key = graded
    zero = dict.fromkeys(NAMES, 0)
    assert {n: book.points["correct"][n] for n in NAMES} == FULL
    assert {n: book.points["deletes_check"][n] for n in NAMES} == FULL
    assert {n: book.points["blank"][n] for n in NAMES} == zero
    assert {n: book.points["fakes_success"][n] for n in NAMES} == zero
    assert {n: book.points["raises_at_import"][n] for n in NAMES} == zero
    assert {n: book.points["unreadable"][n] for n in NAMES} == zero
    assert {n: book.points["planted"][n] for n in NAMES} == {**FULL, "patchify": 0}
    assert {n: book.points["loops"][n] for n in NAMES} == {**FULL, "window_partition": 0}


def test_feedback_says_why(graded):
    book, out, key = graded
    fb = book.feedback
    assert "not implemented" in fb["blank"]["attention"]
    assert "not implemented" in fb["fakes_success"]["patchify"]
    assert EXERCISES["patchify"].hint(key) in fb["planted"]["patchify"]
    assert "timed out after 30 s" in fb["loops"]["window_partition"]
    assert "could not be read" in fb["unreadable"]["patchify"]
    assert "NameError" in fb["raises_at_import"]["patchify"]
    text = (out / "feedback" / "planted.txt").read_text()
    assert f"{LAB} / patchify: 0/{FULL['patchify']}" in text
    # Labs nobody submitted are listed as such, worth 0.
    other = [n for n, ex in EXERCISES.items() if ex.lab != LAB]
    assert all(fb["correct"][n] == "no submission" for n in other)


def test_gradebook_csv(graded):
    book, out, _ = graded
    with open(out / "gradebook.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"correct", "blank", "planted", "loops", "deletes_check",
                         "fakes_success", "raises_at_import", "unreadable"}
    best = sum(ex.points for ex in EXERCISES.values())
    assert rows["correct"]["total"] == str(sum(FULL.values())) and rows["correct"]["max"] == str(
        best)
    assert rows["planted"]["patchify"] == "0"


def test_restore_puts_back_edited_and_deleted_check_cells():
    pristine = lab()
    submitted = copy.deepcopy(solution())
    checks = check_cells(submitted)
    submitted.cells[checks["attention"]].source = "print('all good')"
    del submitted.cells[checks["patchify"]]
    restored = restore_checks(submitted, pristine, {})
    assert check_cells(restored).keys() == check_cells(pristine).keys()
    for name, index in check_cells(restored).items():
        cell = restored.cells[index]
        assert cell.source == pristine.cells[check_cells(pristine)[name]].source
        assert "nbval-check-output" in cell.metadata.tags
        assert exercise_cell(restored, name) == index - 1  # right after its exercise
    assert all(not c.outputs for c in restored.cells if c.cell_type == "code"
               and "check" not in c.metadata.get("tags", []))


def test_a_relative_out_inside_the_submissions(tmp_path, monkeypatch):
    """The README's command with a relative ``--out``, here even inside the submissions folder,
    graded twice into the same folder: full marks both times, the grades nobody's submission."""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    nbformat.write(solution(), tmp_path / "subs" / "alice" / f"{LAB}.ipynb")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        book = grade_folder(Path("subs"), Path("subs/grades"), timeout=30, workers=1)
        assert book.failure is None
        assert set(book.points) == {"alice"}
        assert {n: book.points["alice"][n] for n in NAMES} == FULL
    assert (tmp_path / "subs" / "grades" / "gradebook.csv").is_file()


def test_a_failed_inner_run_is_quoted_not_blamed_on_the_kernel(tmp_path, monkeypatch):
    """When the inner pytest cannot run (here: a broken PYTEST_ADDOPTS in the environment), the
    feedback and ``failure`` carry pytest's own message."""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    nbformat.write(solution(), tmp_path / "subs" / "alice" / f"{LAB}.ipynb")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--no-such-flag")
    book = grade_folder(tmp_path / "subs", tmp_path / "grades", timeout=30, workers=1)
    assert "unrecognized arguments: --no-such-flag" in book.failure
    for name in NAMES:
        assert book.points["alice"][name] == 0
        assert "unrecognized arguments: --no-such-flag" in book.feedback["alice"][name]
        assert "kernel" not in book.feedback["alice"][name]
