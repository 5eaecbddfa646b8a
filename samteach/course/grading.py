"""Grade a folder of submitted labs: restore the check cells, run them under nbval, score them.

    python -m samteach.course grade SUBMISSIONS --out GRADES [--timeout 120] [--workers auto]

SUBMISSIONS holds one folder per student with their lab notebooks
(``alice/01_patch_embedding.ipynb``), or the notebooks themselves named
``alice__01_patch_embedding.ipynb``. For every submission:

1. every check cell of the pristine lab is put back as it was released (matched by cell id; a
   deleted one is re-inserted after the cell it followed), so an edited, deleted or faked check
   cell counts for nothing; all outputs are cleared;
2. the notebooks run under ``pytest --nbval-lax`` -- each in its own kernel, top to bottom, with
   a per-cell timeout, in parallel (pytest-xdist, ``--dist loadscope`` keeps a notebook's cells
   on one worker) -- where only the check cells' outputs are compared, with the success line the
   solution prints;
3. a check cell that passes earns its exercise's points; anything else (a wrong answer, an
   error, a timeout, a kernel that died) earns 0 and the reason goes into the feedback.

Results: GRADES/gradebook.csv (student x exercise -> points, total) and
GRADES/feedback/STUDENT.txt, each written whole or not at all; pytest's own output in
GRADES/work/pytest.log. A notebook that cannot be read, hangs or crashes costs its own points
only; the run always goes on. If the inner pytest run itself fails (it cannot start, or it
stops before running the notebooks), every check it did not run gets pytest's own message as
feedback and ``Gradebook.failure`` says why (the command then exits with status 1).
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..checks import EXERCISES
from ..utils.arguments import validate_int, validate_number
from ..utils.files import write_text_atomic
from .labs import LABS, SOLUTIONS

_REPORT_ENV = "SAMTEACH_GRADING_REPORT"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Gradebook:
    """Points and feedback per student and exercise."""

    exercises: list[str]
    points: dict[str, dict[str, int]] = field(default_factory=dict)
    feedback: dict[str, dict[str, str]] = field(default_factory=dict)
    failure: str | None = None  # why the inner pytest run failed, if it did

    def set(self, student: str, exercise: str, points: int, message: str) -> None:
        self.points.setdefault(student, {})[exercise] = points
        self.feedback.setdefault(student, {})[exercise] = message

    def total(self, student: str) -> int:
        return sum(self.points.get(student, {}).values())

    def summary(self) -> str:
        best = sum(EXERCISES[e].points for e in self.exercises)
        rows = [f"{s}: {self.total(s)}/{best}" for s in sorted(self.points)]
        return "\n".join(rows)


# ------------------------------------------------------------------------------- preparing


def find_submissions(folder: Path, skip: Path | None = None) -> dict[str, dict[str, Path]]:
    """Student -> lab stem -> notebook path (``skip``: a folder that is nobody's, the grades)."""
    if not folder.is_dir():
        raise ValueError(f"submissions must be a folder of student folders; got {folder}")
    found: dict[str, dict[str, Path]] = {}
    ignored = set() if skip is None else {skip, skip / "work", skip / "feedback"}
    for path in sorted(folder.iterdir()):
        if path in ignored:
            continue
        if path.is_dir():
            for notebook in sorted(path.glob("*.ipynb")):
                found.setdefault(path.name, {})[notebook.stem] = notebook
        elif path.suffix == ".ipynb" and "__" in path.stem:
            student, lab = path.stem.split("__", 1)
            found.setdefault(student, {})[lab] = path
    return found


def _check_name(cell) -> str | None:
    if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
        return cell.metadata.get("samteach", {}).get("exercise")
    return None


def _success_lines(lab: str) -> dict[str, list]:
    """Exercise -> the outputs its check cell has in the solution (what nbval compares)."""
    solution = nbformat.read(SOLUTIONS / f"{lab}.ipynb", as_version=4)
    return {name: cell.outputs for cell in solution.cells if (name := _check_name(cell))}


def restore_checks(submitted: nbformat.NotebookNode, pristine: nbformat.NotebookNode,
                   success: dict[str, list]) -> nbformat.NotebookNode:
    """The submission with the pristine check cells back in place, ready for nbval-lax."""
    cells = [c for c in submitted.cells if not _check_name(c)]  # drop check cells, fake or not
    for cell in cells:
        if "tags" in cell.metadata:
            cell.metadata.tags = [t for t in cell.metadata.tags if not t.startswith("nbval")]
    ids = [c.get("id") for c in cells]
    previous_id = None
    for cell in pristine.cells:
        name = _check_name(cell)
        if name is None:
            previous_id = cell.get("id")
            continue
        restored = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
        restored.metadata["tags"] = [*cell.metadata.get("tags", []), "nbval-check-output"]
        restored.outputs, restored.execution_count = success.get(name, []), 1
        at = ids.index(previous_id) + 1 if previous_id in ids else len(cells)
        cells.insert(at, restored)
        ids.insert(at, restored.get("id"))
        previous_id = restored.get("id")
    for cell in cells:
        if cell.cell_type == "code" and not _check_name(cell):
            cell.outputs, cell.execution_count = [], None  # run, never compared
    submitted.cells = cells
    return submitted


# -------------------------------------------------------------------------------- grading


def grade_folder(submissions: Path, out: Path, timeout: float = 120.0,
                 workers: str | int = "auto") -> Gradebook:
    """Grade every student's labs in ``submissions``; write the gradebook and feedback.

    ``timeout``: seconds per cell (> 0); ``workers``: pytest-xdist's number of processes, a
    positive int or "auto". ``out`` may be relative, exist already, or lie inside
    ``submissions`` (it is nobody's submission).
    """
    timeout = validate_number(timeout, "timeout", low=0, low_open=True)
    if workers != "auto":  # the command line hands over text
        if isinstance(workers, str) and not workers.strip().isdigit():
            raise ValueError(f'workers must be a positive int or "auto"; got {workers!r}')
        workers = validate_int(int(workers) if isinstance(workers, str) else workers,
                               "workers", what=' (or "auto")')
    # Absolute paths: the inner pytest runs in another folder.
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder for the gradebook; {out} is a file")
    found = find_submissions(submissions, skip=out)
    labs = sorted({ex.lab for ex in EXERCISES.values()})
    exercises = [name for lab in labs for name in _lab_exercises(lab)]
    book = Gradebook(exercises)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pytest.ini").write_text("[pytest]\naddopts =\n")  # not the repository's options
    cells: dict[str, tuple[str, str]] = {}  # nodeid -> (student, exercise)
    for student in sorted(found):
        for lab in labs:
            nodeids = _prepare(student, lab, found[student].get(lab), work, book)
            cells.update(nodeids)
    if cells:
        outcomes, book.failure = _run_nbval(work, timeout, workers)
        for nodeid, (student, name) in cells.items():
            points, message = _score(name, outcomes.get(nodeid), timeout, book.failure)
            book.set(student, name, points, message)
    _write(book, out)
    return book


def _lab_exercises(lab: str) -> list[str]:
    pristine = nbformat.read(LABS / f"{lab}.ipynb", as_version=4)
    return [name for cell in pristine.cells if (name := _check_name(cell))]


def _prepare(student: str, lab: str, path: Path | None, work: Path, book: Gradebook):
    """Write the restored notebook; return nodeid -> (student, exercise) of its check cells."""
    names = _lab_exercises(lab)
    if path is None:
        for name in names:
            book.set(student, name, 0, "no submission")
        return {}
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook, ...
        for name in names:
            book.set(student, name, 0, f"the notebook could not be read: {error}")
        return {}
    pristine = nbformat.read(LABS / f"{lab}.ipynb", as_version=4)
    notebook = restore_checks(submitted, pristine, _success_lines(lab))
    folder = work / _safe(student)
    folder.mkdir(exist_ok=True)
    target = folder / f"{lab}.ipynb"
    nbformat.write(notebook, target)
    nodeids, code = {}, 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if name := _check_name(cell):
            nodeids[f"{folder.name}/{lab}.ipynb::Cell {code}"] = (student, name)
        code += 1
    return nodeids


def _safe(student: str) -> str:
    return re.sub(r"[^\w.-]", "_", student) or "student"


def _run_nbval(work: Path, timeout: float, workers: str | int) -> tuple[dict[str, dict],
                                                                        str | None]:
    """Run every notebook under ``work`` with nbval: nodeid -> outcome record, and why the
    run failed as a whole (pytest's own message), or None."""
    report = work / "report.jsonl"
    report.unlink(missing_ok=True)
    notebooks = sorted(str(p.relative_to(work)) for p in work.glob("*/*.ipynb"))
    command = [sys.executable, "-m", "pytest", *notebooks, "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={timeout}", "-p", "samteach.course.grading", "-p",
               "no:cacheprovider", "-q", "--rootdir", str(work), "-n", str(workers),
               "--dist", "loadscope"]
    # A clean environment for the inner pytest: if grading itself runs inside an xdist worker,
    # its PYTEST_XDIST_* variables must not make the inner controller believe it is a worker.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env[_REPORT_ENV] = str(report)
    # Bounded even if a kernel ignores interrupts: every cell of every notebook timing out.
    cells = sum(len(nbformat.read(work / n, as_version=4).cells) for n in notebooks)
    limit = timeout * (cells + 2) + 120
    log = work / "pytest.log"
    failure = None
    with open(log, "w") as output:
        try:
            status = subprocess.run(command, cwd=work, env=env, stdout=output,
                                    stderr=subprocess.STDOUT, timeout=limit,
                                    check=False).returncode
        except subprocess.TimeoutExpired:
            status, failure = None, f"the grading run was stopped after {limit:g} s"
    # pytest's exit status: 0 all passed, 1 some failed (both normal for grading); 2
    # interrupted, 3 internal error, 4 usage error, 5 nothing collected: the run failed.
    if status not in (0, 1, None):
        failure = f"the grading run (pytest) failed with exit status {status}: " + \
            _pytest_message(log.read_text(errors="replace"))
    outcomes = {}
    if report.exists():
        for line in report.read_text().splitlines():
            record = json.loads(line)
            outcomes[record["nodeid"]] = record
    return outcomes, failure


def _pytest_message(output: str) -> str:
    """The line of pytest's output that says why it stopped."""
    lines = [line.strip() for line in _ANSI.sub("", output).splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\berror\b", line, flags=re.I)]
    return (errors or lines or ["(no output)"])[-1]


def _score(name: str, record: dict | None, timeout: float,
           failure: str | None) -> tuple[int, str]:
    points = EXERCISES[name].points
    if record is None and failure is not None:
        return 0, f"the check did not run: {failure}"
    if record is None:
        return 0, ("the check did not run: pytest reported no result for it (the notebook's "
                   "kernel may have failed to start or died; see work/pytest.log)")
    if record["outcome"] == "passed":
        return points, "passed"
    text = _ANSI.sub("", record.get("longrepr", ""))
    if record.get("xfail"):
        return 0, f"not run: an earlier cell timed out after {timeout:g} s"
    if "Timeout of" in text:
        return 0, f"timed out after {timeout:g} s"
    hint = re.findall(r"CheckFailed: (.+)", text)
    if hint:
        return 0, hint[-1].strip()
    error = re.findall(r"^(\w+(?:Error|Exception)\b.*)$", text, flags=re.M)
    if error:
        return 0, f"the check cell raised {error[-1].strip()}"
    if "Cell outputs differ" in text:
        return 0, "the check printed something other than its success line"
    return 0, "the check failed"


def _write(book: Gradebook, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    best = {name: EXERCISES[name].points for name in book.exercises}
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["student", *book.exercises, "total", "max"])
    for student in sorted(book.points):
        row = [book.points[student].get(name, 0) for name in book.exercises]
        writer.writerow([student, *row, sum(row), sum(best.values())])
    write_text_atomic(out / "gradebook.csv", table.getvalue())
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for student in sorted(book.points):
        lines = [f"Feedback for {student}: {book.total(student)}/{sum(best.values())} points", ""]
        for name in book.exercises:
            got = book.points[student].get(name, 0)
            lab = EXERCISES[name].lab
            lines.append(f"{lab} / {name}: {got}/{best[name]} -- "
                         f"{book.feedback[student].get(name, 'no submission')}")
        write_text_atomic(feedback / f"{_safe(student)}.txt", "\n".join(lines) + "\n")


# ------------------------------------------------ pytest plugin (-p samteach.course.grading)


_in_worker = False


def pytest_configure(config) -> None:
    global _in_worker
    _in_worker = hasattr(config, "workerinput")  # xdist workers have it, the controller not


def pytest_runtest_logreport(report) -> None:
    """Record each cell's outcome (in the controlling process only, not in xdist workers)."""
    path = os.environ.get(_REPORT_ENV)
    if not path or _in_worker:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        record = {"nodeid": report.nodeid, "outcome": report.outcome,
                  "xfail": hasattr(report, "wasxfail") and not report.passed,
                  "longrepr": str(report.longrepr) if report.longrepr else ""}
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
