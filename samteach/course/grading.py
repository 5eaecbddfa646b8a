"""Grade a folder of submitted labs: restore the check cells, re-run each notebook in a clean
process that calls the checks itself, score them.

    python -m samteach.course grade SUBMISSIONS --out GRADES [--timeout 120] [--workers auto]

SUBMISSIONS holds one folder per student with their lab notebooks
(``alice/01_patch_embedding.ipynb``), or the notebooks themselves named
``alice__01_patch_embedding.ipynb``. For every submission:

1. every check cell of the pristine lab is put back as it was released (matched by cell id; a
   deleted one is re-inserted after the cell it followed), so an edited, deleted or faked check
   cell counts for nothing; all outputs are cleared;
2. the notebook runs top to bottom in a process of its own (:mod:`samteach.course.replay`),
   with a per-cell timeout, several at once (``workers``). There the grader, not the notebook,
   calls each exercise's check on the object the student defined, with samteach's checks
   imported before any student code and a watch on everything they rely on;
3. a check that passes earns its exercise's points; anything else (a wrong answer, an error, a
   timeout, a crash) earns 0 and the reason goes into the feedback. A notebook that changes
   what the checks rely on (a check function, a helper, a torch or numpy function) or answers
   with samteach's own solution scores 0 on that exercise and is *flagged*: the gradebook's
   ``flagged`` column says what was detected.

Results: GRADES/gradebook.csv (student x exercise -> points, total, flagged),
GRADES/feedback/STUDENT.txt and GRADES/report.md (with report.png: how each exercise went, the
most common reason for a 0, who was flagged and why), each written whole or not at all; each
notebook's run leaves its errors in GRADES/work/STUDENT/LAB.log. A notebook that cannot be read,
hangs or crashes costs its own points only; the run always goes on. If no grading process can
run at all (a broken environment), every check gets that error as feedback and
``Gradebook.failure`` says why (the command then exits with status 1).
"""

import csv
import io
import json
import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..checks import EXERCISES
from ..utils.arguments import validate_int, validate_number
from ..utils.files import atomic_write, write_text_atomic
from .labs import LABS

_NO_SUBMISSION = "no submission"


@dataclass
class Gradebook:
    """Points and feedback per student and exercise."""

    exercises: list[str]
    points: dict[str, dict[str, int]] = field(default_factory=dict)
    feedback: dict[str, dict[str, str]] = field(default_factory=dict)
    flags: dict[str, dict[str, str]] = field(default_factory=dict)  # what was detected
    failure: str | None = None  # why no grading process could run, if so

    def set(self, student: str, exercise: str, points: int, message: str,
            flag: str = "") -> None:
        self.points.setdefault(student, {})[exercise] = points
        self.feedback.setdefault(student, {})[exercise] = message
        if flag:
            self.flags.setdefault(student, {})[exercise] = flag

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


def restore_checks(submitted: nbformat.NotebookNode,
                   pristine: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The submission with the pristine check cells back in place, every output cleared."""
    cells = [c for c in submitted.cells if not _check_name(c)]  # drop check cells, fake or not
    ids = [c.get("id") for c in cells]
    previous_id = None
    for cell in pristine.cells:
        name = _check_name(cell)
        if name is None:
            previous_id = cell.get("id")
            continue
        restored = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
        at = ids.index(previous_id) + 1 if previous_id in ids else len(cells)
        cells.insert(at, restored)
        ids.insert(at, restored.get("id"))
        previous_id = restored.get("id")
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    submitted.cells = cells
    return submitted


# -------------------------------------------------------------------------------- grading


def grade_folder(submissions: Path, out: Path, timeout: float = 120.0,
                 workers: str | int = "auto") -> Gradebook:
    """Grade every student's labs in ``submissions``; write the gradebook and feedback.

    ``timeout``: seconds per cell (> 0); ``workers``: how many notebooks are graded at once,
    a positive int or "auto" (one per core, at most 8). ``out`` may be relative, exist
    already, or lie inside ``submissions`` (it is nobody's submission).
    """
    timeout = validate_number(timeout, "timeout", low=0, low_open=True)
    if workers != "auto":  # the command line hands over text
        if isinstance(workers, str) and not workers.strip().isdigit():
            raise ValueError(f'workers must be a positive int or "auto"; got {workers!r}')
        workers = validate_int(int(workers) if isinstance(workers, str) else workers,
                               "workers", what=' (or "auto")')
    # Absolute paths: each notebook's grading process runs in another folder.
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder for the gradebook; {out} is a file")
    found = find_submissions(submissions, skip=out)
    # The labs as released, read once: their check cells go back into every submission.
    pristine = {lab: nbformat.read(LABS / f"{lab}.ipynb", as_version=4)
                for lab in sorted({ex.lab for ex in EXERCISES.values()})}
    book = Gradebook([name for lab in pristine for name in _lab_exercises(pristine[lab])])
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    jobs = []  # (student, lab, restored notebook)
    for student in sorted(found):
        for lab, released in pristine.items():
            path = _prepare(student, lab, released, found[student].get(lab), work, book)
            if path is not None:
                jobs.append((student, lab, path))
    # "auto": a process per core, at most 8 (each holds torch and a lab's tensors, ~0.5 GB)
    parallel = min(os.cpu_count() or 1, 8) if workers == "auto" else workers
    # The cores shared out: torch in each process would otherwise start a thread per core,
    # and `parallel` processes would oversubscribe them several times over.
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        runs = list(pool.map(lambda job: _replay(job[2], timeout, threads), jobs))
    if jobs and all(results is None for results, _ in runs):
        book.failure = runs[0][1]  # nothing ran at all: the environment, not the students
    for (student, lab, _), (results, error) in zip(jobs, runs, strict=True):
        for name in _lab_exercises(pristine[lab]):
            verdict = (results or {}).get(name)
            if verdict is None:
                book.set(student, name, 0, f"the check did not run: {error}")
            else:
                book.set(student, name, verdict["points"], verdict["message"], verdict["flag"])
    _write(book, out)
    return book


def _lab_exercises(pristine: nbformat.NotebookNode) -> list[str]:
    return [name for cell in pristine.cells if (name := _check_name(cell))]


def _prepare(student: str, lab: str, pristine: nbformat.NotebookNode, path: Path | None,
             work: Path, book: Gradebook) -> Path | None:
    """Write the restored notebook for grading (None when there is nothing to run)."""
    names = _lab_exercises(pristine)
    if path is None:
        for name in names:
            book.set(student, name, 0, _NO_SUBMISSION)
        return None
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook, ...
        for name in names:
            book.set(student, name, 0, f"the notebook could not be read: {error}")
        return None
    folder = work / _safe(student)
    folder.mkdir(exist_ok=True)
    target = folder / f"{lab}.ipynb"
    nbformat.write(restore_checks(submitted, pristine), target)
    return target


def _safe(student: str) -> str:
    return re.sub(r"[^\w.-]", "_", student) or "student"


def _replay(notebook: Path, timeout: float, threads: str = "1") -> tuple[dict | None, str]:
    """Grade one restored notebook in its own process (:mod:`samteach.course.replay`):
    exercise -> verdict, or None and why the process gave none. Its stderr goes to a .log
    beside the notebook."""
    cells = len(nbformat.read(notebook, as_version=4).cells)
    limit = timeout * (cells + 2) + 60  # every cell timing out, and the start
    nonce = secrets.token_hex(16)  # the verdicts must carry it: printed lines cannot
    command = [sys.executable, "-m", "samteach.course.replay", str(notebook), "--timeout",
               str(timeout)]
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **os.environ,
           "MPLBACKEND": "Agg"}  # a thread count the user set wins
    log = notebook.with_suffix(".log")
    try:
        with open(log, "w") as errors:
            done = subprocess.run(command, input=nonce + "\n", stdout=subprocess.PIPE,
                                  stderr=errors, text=True, timeout=limit, env=env,
                                  cwd=notebook.parent)
    except subprocess.TimeoutExpired:
        return None, f"the notebook's run was stopped after {limit:g} s"
    except OSError as error:
        return None, f"the grading process could not start: {error}"
    for line in reversed(done.stdout.splitlines()):
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(answer, dict) and answer.get("nonce") == nonce:
            return answer["results"], ""
    last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    why = last[-1].strip() if last else "no output"
    return None, (f"the grading process ended without a verdict (exit status "
                  f"{done.returncode}): {why}")


def _write(book: Gradebook, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    best = {name: EXERCISES[name].points for name in book.exercises}
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["student", *book.exercises, "total", "max", "flagged"])
    for student in sorted(book.points):
        row = [book.points[student].get(name, 0) for name in book.exercises]
        flags = book.flags.get(student, {})
        flagged = "; ".join(f"{name}: {flag}" for name, flag in flags.items())
        writer.writerow([student, *row, sum(row), sum(best.values()), flagged])
    write_text_atomic(out / "gradebook.csv", table.getvalue())
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for student in sorted(book.points):
        lines = [f"Feedback for {student}: {book.total(student)}/{sum(best.values())} points", ""]
        for name in book.exercises:
            got = book.points[student].get(name, 0)
            lab = EXERCISES[name].lab
            lines.append(f"{lab} / {name}: {got}/{best[name]} -- "
                         f"{book.feedback[student].get(name, _NO_SUBMISSION)}")
        write_text_atomic(feedback / f"{_safe(student)}.txt", "\n".join(lines) + "\n")
    _report(book, out)


def _report(book: Gradebook, out: Path) -> None:
    """GRADES/report.md (+ report.png): the class at a glance -- how each exercise went, the
    most common reason for a 0, who was flagged and why."""
    students = sorted(book.points)
    best = {name: EXERCISES[name].points for name in book.exercises}
    counts = {}  # exercise -> {"passed", "failed", "missing", "flagged"}
    reasons = {}  # exercise -> the most common reason for a 0 and how often
    for name in book.exercises:
        tally = dict.fromkeys(("passed", "failed", "missing", "flagged"), 0)
        why: dict[str, int] = {}
        for student in students:
            message = book.feedback[student].get(name, _NO_SUBMISSION)
            if name in book.flags.get(student, {}):
                tally["flagged"] += 1
            elif message == _NO_SUBMISSION:
                tally["missing"] += 1
            elif book.points[student].get(name, 0) == best[name]:
                tally["passed"] += 1
            else:
                tally["failed"] += 1
                general = re.sub(rf"^{name}( \[[^]]*\])?: ", "", message)  # without the case
                why[general] = why.get(general, 0) + 1
        counts[name] = tally
        reasons[name] = max(why.items(), key=lambda item: item[1]) if why else None
    _plot_report(book, counts, out / "report.png")
    totals = sorted(book.total(s) for s in students)
    lines = [f"# Grading report: {len(students)} students", ""]
    if totals:
        lines += [f"Total scores: mean {sum(totals) / len(totals):.1f}, median "
                  f"{totals[len(totals) // 2]} of {sum(best.values())} points.", ""]
    lines += ["![how each exercise went, and the totals](report.png)", "",
              "| lab | exercise | points | passed | wrong | not submitted | flagged | most common "
              "reason for a 0 |", "|---|---|---|---|---|---|---|---|"]
    for name in book.exercises:
        tally, reason = counts[name], reasons[name]
        text = "" if reason is None else f"{reason[0]} ({reason[1]}x)".replace("|", "\\|")
        lines.append(f"| {EXERCISES[name].lab} | {name} | {best[name]} | {tally['passed']} | "
                     f"{tally['failed']} | {tally['missing']} | {tally['flagged']} | {text} |")
    flagged = [(s, n, f) for s in students for n, f in book.flags.get(s, {}).items()]
    lines += ["", f"## Flagged: {len(flagged)}", ""]
    if flagged:
        lines += ["| student | exercise | what was detected |", "|---|---|---|"]
        lines += [f"| {s} | {n} | {f} |" for s, n, f in flagged]
    else:
        lines.append("No submission tried to change the checks or used samteach's solutions.")
    if book.failure:
        lines += ["", f"**The grading could not run:** {book.failure}"]
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")


def _plot_report(book: Gradebook, counts: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = book.exercises
    kinds = [("passed", "passed", "#4c9f70"), ("failed", "wrong", "#d9a441"),
             ("missing", "not submitted", "#bbbbbb"), ("flagged", "flagged", "#c0392b")]
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(12, 0.35 * len(names) + 2),
                                     gridspec_kw={"width_ratios": [2, 1]})
    left = [0] * len(names)
    for kind, label, colour in kinds:
        values = [counts[name][kind] for name in names]
        bars.barh(names, values, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, values, strict=True)]
    bars.invert_yaxis()
    bars.set_xlabel("students")
    bars.set_title("each exercise")
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8)
    totals = [book.total(s) for s in book.points]
    hist.hist(totals, bins=range(0, sum(EXERCISES[n].points for n in names) + 2),
              color="#4c72b0")
    hist.set_xlabel("total points")
    hist.set_ylabel("students")
    hist.set_title("totals")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
