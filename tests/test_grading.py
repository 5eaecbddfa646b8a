"""Grading a folder of submissions: every kind of submission is scored as it deserves, and no
submission stops the run."""

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from samteach.checks import EXERCISES
from samteach.course import grading
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
    # Tampering, each beside a *wrong* patchify (a planted mistake): the check must not be
    # fooled by anything the notebook does at run time.
    for student, code in TAMPERING.items():
        tampered = edit_cell(solution(), "patchify", old, new)
        tampered.cells[exercise_cell(tampered, "patchify")].source += "\n" + code
        if student == "swaps_code":  # and a wrong later answer: the restored checks see it
            _, w_old, w_new = PLANTED["window_partition"][0]
            tampered = edit_cell(tampered, "window_partition", w_old, w_new)
        put(student, tampered)
    # A correct answer that is samteach's own function, or a thin wrapper around it.
    imports = solution()
    imports.cells[exercise_cell(imports, "patchify")].source = (
        "from samteach.modeling.image_encoder import patchify\n")
    put("imports_reference", imports)
    wraps = solution()
    wraps.cells[exercise_cell(wraps, "patchify")].source = (
        "from samteach.modeling import image_encoder\n\n"
        "def patchify(images, patch_size):\n"
        "    return image_encoder.patchify(images, patch_size).clone()\n")
    put("wraps_reference", wraps)
    return key


SUCCESS = "✔ patchify: 3 cases match samteach — 2 points"
TAMPERING = {  # student -> code appended to the patchify cell
    "replaces_check": "import samteach.checks\n"
                      f"samteach.checks.check_patchify = lambda f: print({SUCCESS!r})\n",
    "patches_helper": "from samteach.checks import _core\n_core._close = lambda *a: True\n",
    "patches_context": "from samteach.checks._core import Context\n"
                       "Context.expect = lambda *a, **k: None\n",
    "patches_torch": "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a: True\n",
    # the same function object, its code swapped in place
    "swaps_code": "from samteach.checks import _core\n"
                  "_core._close.__code__ = (lambda a, b, atol, rtol: True).__code__\n",
    "prints_success": f"print({SUCCESS!r})\n",
}


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
    for student in [*TAMPERING, "imports_reference", "wraps_reference"]:
        # 0 on the exercise tried, flagged; the others graded as usual, by restored checks
        wrong = {"patchify": 0, **({"window_partition": 0} if student == "swaps_code" else {})}
        assert {n: book.points[student][n] for n in NAMES} == {**FULL, **wrong}, student
        assert set(book.flags[student]) == {"patchify"}, student
    assert set(book.flags) == {*TAMPERING, "imports_reference", "wraps_reference",
                               "fakes_success"}  # the honest are never flagged


def test_feedback_says_why(graded):
    book, out, key = graded
    fb = book.feedback
    assert "not implemented" in fb["blank"]["attention"]
    assert "prints the check's success line" in fb["fakes_success"]["patchify"]
    assert "not implemented" in fb["fakes_success"]["attention"]
    assert "changed samteach.checks.check_patchify" in fb["replaces_check"]["patchify"]
    assert "changed samteach.checks._core._close" in fb["patches_helper"]["patchify"]
    assert "samteach.checks._core.Context.expect" in fb["patches_context"]["patchify"]
    assert "torch.allclose" in fb["patches_torch"]["patchify"]
    assert "samteach.checks._core._close" in fb["swaps_code"]["patchify"]
    assert "samteach's own solution" in fb["imports_reference"]["patchify"]
    assert "samteach.modeling.image_encoder.patchify" in fb["wraps_reference"]["patchify"]
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
                         "fakes_success", "raises_at_import", "unreadable", *TAMPERING,
                         "imports_reference", "wraps_reference"}
    flagged = {student for student, row in rows.items() if row["flagged"]}
    assert flagged == set(book.flags)  # the column an instructor filters on
    assert rows["wraps_reference"]["flagged"].startswith("patchify: uses samteach.")
    best = sum(ex.points for ex in EXERCISES.values())
    assert rows["correct"]["total"] == str(sum(FULL.values())) and rows["correct"]["max"] == str(
        best)
    assert rows["planted"]["patchify"] == "0"


def test_the_report_page(graded):
    """report.md: a row per exercise with the counts and the most common reason for a 0, the
    flagged students with what was detected; report.png beside it."""
    book, out, key = graded
    text = (out / "report.md").read_text()
    assert f"# Grading report: {len(book.points)} students" in text
    assert "![how each exercise went, and the totals](report.png)" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {LAB} | patchify |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # passed: correct, deletes_check, loops; flagged: the 8 tamperers and fakes_success
    assert cells[3:7] == ["3", "4", "0", str(len(TAMPERING) + 3)]
    reason, count = cells[7].rsplit(" (", 1)  # the most common reason for a 0, how often
    wrong = [m for student, m in ((s, book.feedback[s]["patchify"]) for s in book.points)
             if book.points[student]["patchify"] == 0 and student not in book.flags]
    assert count == f"{max(sum(reason in m for m in wrong), 1)}x)"
    assert any(reason in m for m in wrong) and not reason.startswith("patchify")
    assert f"## Flagged: {sum(len(f) for f in book.flags.values())}" in text
    assert "| wraps_reference | patchify | uses samteach.modeling.image_encoder.patchify |" in text
    assert (out / "report.png").stat().st_size > 1000


def test_restore_puts_back_edited_and_deleted_check_cells():
    pristine = lab()
    submitted = copy.deepcopy(solution())
    checks = check_cells(submitted)
    submitted.cells[checks["attention"]].source = "print('all good')"
    del submitted.cells[checks["patchify"]]
    restored = restore_checks(submitted, pristine)
    assert check_cells(restored).keys() == check_cells(pristine).keys()
    for name, index in check_cells(restored).items():
        cell = restored.cells[index]
        assert cell.source == pristine.cells[check_cells(pristine)[name]].source
        assert exercise_cell(restored, name) == index - 1  # right after its exercise
    assert all(not c.outputs for c in restored.cells if c.cell_type == "code")


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


def test_a_grading_process_that_cannot_start_is_reported(tmp_path, monkeypatch):
    """A broken environment (here: the Python to run the notebooks is missing): the feedback
    and ``failure`` carry the real error, not a verdict on the student."""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    nbformat.write(solution(), tmp_path / "subs" / "alice" / f"{LAB}.ipynb")
    monkeypatch.setattr(grading.sys, "executable", str(tmp_path / "no-such-python"))
    book = grade_folder(tmp_path / "subs", tmp_path / "grades", timeout=30, workers=1)
    assert "could not start" in book.failure and "no-such-python" in book.failure
    for name in NAMES:
        assert book.points["alice"][name] == 0
        assert "no-such-python" in book.feedback["alice"][name]


def test_a_notebook_that_switches_gradients_off_is_still_graded_fairly(tmp_path):
    """``torch.set_grad_enabled(False)`` at the top of a notebook (harmless for its own cells)
    must not fail the loss checks, which need gradients: the grader turns them on to check."""
    lab4 = "04_interactive_training"
    notebook = restore_checks(read(ROOT / "solutions" / f"{lab4}.ipynb"),
                              read(ROOT / "labs" / f"{lab4}.ipynb"))
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import torch\n"
                                                       "torch.set_grad_enabled(False)\n"))
    path = tmp_path / f"{lab4}.ipynb"
    nbformat.write(notebook, path)
    done = subprocess.run([sys.executable, "-m", "samteach.course.replay", str(path), "--timeout",
                           "60"], input="n0nce\n", capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["nonce"] == "n0nce"
    verdicts = results["results"]
    assert verdicts["sam_loss"]["points"] == EXERCISES["sam_loss"].points, verdicts["sam_loss"]
    assert all(v["points"] == EXERCISES[n].points for n, v in verdicts.items())
