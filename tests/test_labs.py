"""The labs: generated from the solutions, every check passes on the solution, fails with "not
implemented" on the untouched lab, and recognises each planted mistake with its own hint."""

import re
from pathlib import Path

import nbformat
import pytest

from samteach.checks import EXERCISES, CheckFailed
from samteach.checks._core import NOT_IMPLEMENTED
from samteach.course import labs as course

from .planted import PLANTED

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
# What a lab may not contain in any output: paths of the machine that ran it.
_MACHINE_PATHS = re.compile(r"(/work/|/tmp/|/home/|/root/|/Users/|[A-Z]:\\\\)")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def check_cells(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """Exercise name -> index of its check cell."""
    found = {}
    for i, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("samteach", {})
        if "check" in cell.metadata.get("tags", []):
            assert meta.get("exercise") not in found, f"two check cells for {meta}"
            found[meta.get("exercise")] = i
    return found


def exercise_cell(notebook: nbformat.NotebookNode, name: str) -> int:
    """The code cell holding the solution block that exercise ``name`` checks."""
    index = check_cells(notebook)[name]
    for i in range(index - 1, -1, -1):
        cell = notebook.cells[i]
        if cell.cell_type == "code" and ("### BEGIN SOLUTION" in cell.source
                                         or "# YOUR CODE HERE" in cell.source):  # or its lab
            return i
    raise AssertionError(f"no solution cell before the check of {name}")


def first_code_cell(notebook: nbformat.NotebookNode) -> str:
    return next(c.source for c in notebook.cells if c.cell_type == "code")


def load_exercise(name: str, lab: bool = False, edit: tuple[str, str] | None = None):
    """Exec the notebook's first code cell and the exercise cell; return the student's object."""
    ex = EXERCISES[name]
    notebook = read(ROOT / "solutions" / f"{ex.lab}.ipynb")
    index = exercise_cell(notebook, name)
    source = notebook.cells[index].source
    if lab:
        source = course.strip_solutions(source)
    if edit is not None:
        old, new = edit
        assert source.count(old) == 1, f"planted edit {old!r} must occur once in the cell"
        source = source.replace(old, new)
    namespace: dict = {}
    exec(compile(first_code_cell(notebook), f"{ex.lab}:first", "exec"), namespace)
    exec(compile(source, f"{ex.lab}:{name}", "exec"), namespace)
    return EXERCISES[name].check, namespace[ex.what.split("(")[0]]


# ------------------------------------------------------------------------------ generation


def test_every_lab_is_generated_from_its_solution():
    assert SOLUTIONS, "no solution notebooks"
    for path in SOLUTIONS:
        lab = ROOT / "labs" / path.name
        assert lab.is_file(), f"labs/{path.name} missing: python -m samteach.course build-labs"
        assert lab.read_text() == course.lab_text(path), (
            f"labs/{path.name} differs from what solutions/{path.name} generates: never edit "
            "labs/ by hand; run python -m samteach.course build-labs")
    extra = {p.name for p in (ROOT / "labs").glob("*.ipynb")} - {p.name for p in SOLUTIONS}
    assert not extra, f"labs without a solution: {extra}"


def test_labs_hold_no_solution_and_no_output():
    for path in SOLUTIONS:
        lab = read(ROOT / "labs" / path.name)
        for cell in lab.cells:
            assert "### BEGIN SOLUTION" not in cell.source
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None


def test_strip_solutions_keeps_signature_and_indentation():
    source = ('def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return x + 1\n'
              "    ### END SOLUTION\n\n\ny = 2\n")
    assert course.strip_solutions(source) == (
        'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n\n'
        "y = 2\n")


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1\n",
                                    "### END SOLUTION\n### BEGIN SOLUTION\n"])
def test_strip_solutions_rejects_unbalanced_markers(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        course.strip_solutions(source, "lab 9, cell 3")


# ---------------------------------------------------------------------- committed outputs


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_outputs_come_from_the_current_code(path):
    notebook = read(path)
    stored = notebook.metadata.get("samteach", {}).get("source_hash")
    assert stored == course.source_hash(notebook), (
        f"{path.name}'s outputs were made by other code than the current library/notebook: "
        f"run python -m samteach.course refresh {path.stem[:2]}")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_are_clean_and_render_with_figures(path):
    notebook = read(path)
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"cell {i} was not run"
        for output in cell.outputs:
            where = f"{path.name}, cell {i}"
            assert output.output_type != "error", f"{where} has an error output"
            assert output.get("name") != "stderr", f"{where} wrote to stderr: {output.text!r}"
            assert not _MACHINE_PATHS.search(str(output)), f"{where} shows a path of this machine"
    assert any(o.get("data", {}).get("image/png") for c in notebook.cells
               if c.cell_type == "code" for o in c.outputs), f"{path.name} has no figure"


# ---------------------------------------------------------------------------- exercises


def test_every_exercise_has_one_check_cell_with_its_points():
    seen = {}
    for path in SOLUTIONS:
        notebook = read(path)
        for name, index in check_cells(notebook).items():
            assert name in EXERCISES, f"{path.name}: check cell for unknown exercise {name}"
            ex = EXERCISES[name]
            assert ex.lab == path.stem, f"{name} is registered for {ex.lab}, found in {path.stem}"
            cell = notebook.cells[index]
            assert cell.metadata["samteach"]["points"] == ex.points
            assert cell.source.strip() == (
                f"from samteach.checks import check_{name}\ncheck_{name}({ex.what.split('(')[0]})")
            seen[name] = path.stem
    missing = set(EXERCISES) - set(seen)
    assert not missing, f"exercises without a check cell in their lab: {missing}"


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_check_passes_on_the_solution(name, capsys):
    check, student = load_exercise(name)
    check(student)
    line = capsys.readouterr().out
    assert line.startswith(f"✔ {name}:") and line.count("\n") == 1


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_check_fails_on_the_untouched_lab_with_not_implemented(name):
    check, student = load_exercise(name, lab=True)
    with pytest.raises(CheckFailed) as failure:
        check(student)
    assert NOT_IMPLEMENTED in str(failure.value) and "not implemented" in str(failure.value)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_mistake_has_a_planted_edit(name):
    mistakes = EXERCISES[name].mistakes
    assert len(mistakes) >= 2, f"{name} knows fewer than two mistakes"
    planted = {key for key, _, _ in PLANTED.get(name, [])}
    assert planted == set(mistakes), f"{name}: planted {sorted(planted)} vs {sorted(mistakes)}"


PLANTED_CASES = [(name, key, old, new) for name, edits in sorted(PLANTED.items())
                 for key, old, new in edits]


@pytest.mark.parametrize(("name", "key", "old", "new"), PLANTED_CASES,
                         ids=[f"{n}-{k}" for n, k, _, _ in PLANTED_CASES])
def test_planted_mistake_is_caught_with_its_hint(name, key, old, new):
    check, student = load_exercise(name, edit=(old, new))
    with pytest.raises(CheckFailed) as failure:
        check(student)
    assert EXERCISES[name].hint(key) in str(failure.value), (
        f"expected the hint for {key!r}, got: {failure.value}")


def test_mistakes_with_the_same_numbers_are_named_together():
    """pi instead of 2 pi gives exactly the numbers of centring with p - 0.5: the hint names both
    readings. And where two registered mistakes coincide on a case's inputs (1 / c equals
    1 / sqrt(C) for C = 64, c = 8), the check names both hints, not the first it tried."""
    check, student = load_exercise("fourier_features", edit=(
        "2 * math.pi * ((2 * coords - 1)", "math.pi * ((2 * coords - 1)"))
    with pytest.raises(CheckFailed) as failure:
        check(student)
    assert "pi instead of 2*pi" in str(failure.value) and "p - 0.5" in str(failure.value)
    check, student = load_exercise("downsampled_attention", edit=(" / math.sqrt(c)", " / c"))
    with pytest.raises(CheckFailed) as failure:
        check(student)
    message = str(failure.value)
    assert "one of 2 mistakes that give the same numbers here" in message
    for key in ("scale_by_c", "scale_full_width"):
        assert EXERCISES["downsampled_attention"].hint(key) in message


def test_a_check_rejects_something_that_is_not_code():
    with pytest.raises(CheckFailed, match="pass the function"):
        EXERCISES["patchify"].check(None)
