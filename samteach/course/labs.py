"""Student labs from the solutions, and fresh outputs for the solutions.

    python -m samteach.course build-labs            # labs/ from solutions/ (what a test checks)
    python -m samteach.course refresh [01 ...]      # re-run solutions, store outputs, build labs

``solutions/NN_name.ipynb`` is the single source. Solution code sits between ``### BEGIN
SOLUTION`` and ``### END SOLUTION``; a lab is the same notebook with each such block replaced by
``# YOUR CODE HERE`` + ``raise NotImplementedError()`` and every output cleared. Check cells
carry the tag ``check`` and ``metadata.samteach = {"exercise": name, "points": n}``.

A solution notebook stores in its metadata a hash of the library and of its own code
(:func:`source_hash`); a test fails when it no longer matches, i.e. when the committed outputs
were made by other code than the current one -- run ``refresh`` then.
"""

import copy
import hashlib
import re
import time
from pathlib import Path

import nbformat

from ..utils.files import write_text_atomic

PACKAGE = Path(__file__).resolve().parents[1]  # samteach/
ROOT = PACKAGE.parent  # the course's repository: solutions/, labs/
SOLUTIONS = ROOT / "solutions"
LABS = ROOT / "labs"

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"
_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)",
                       re.M | re.S)
# The course tooling (this package) cannot change what a notebook prints: not hashed.
_NOT_HASHED = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------- labs


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every marked solution block of a cell's source by the indented stub."""
    if source.count(_BEGIN) != source.count(_END):
        raise ValueError(f"{where}: every '{_BEGIN}' needs its '{_END}' (found "
                         f"{source.count(_BEGIN)} and {source.count(_END)})")

    def stub(match: re.Match) -> str:
        indent = match.group(1)
        return "".join(f"{indent}{line}\n" for line in STUB.splitlines()) if match.group(2) \
            else "\n".join(f"{indent}{line}" for line in STUB.splitlines())

    stripped = _SOLUTION.sub(stub, source)
    if _BEGIN in stripped or _END in stripped:
        raise ValueError(f"{where}: '{_BEGIN}' and '{_END}' are out of order or nested")
    return stripped


def make_lab(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student notebook of a solution notebook: solutions stubbed, outputs cleared."""
    lab = copy.deepcopy(solution)
    lab.metadata.pop("samteach", None)
    lab.metadata.pop("widgets", None)
    for i, cell in enumerate(lab.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source, f"{name}, cell {i}")
        cell.outputs = []
        cell.execution_count = None
    return lab


def solution_paths(names: list[str] | None = None) -> list[Path]:
    """The solution notebooks, all or those whose file name starts with one of ``names``."""
    paths = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
        if not paths:
            raise ValueError(f"no solution notebook starts with {names}; there are "
                             f"{[p.stem for p in sorted(SOLUTIONS.glob('*.ipynb'))]}")
    return paths


def lab_text(solution_path: Path) -> str:
    """The exact text ``labs/<same name>`` must hold."""
    lab = make_lab(nbformat.read(solution_path, as_version=4), solution_path.name)
    return nbformat.writes(lab) + "\n"


def build_labs(names: list[str] | None = None) -> list[Path]:
    """Write labs/NN_name.ipynb for every (or the named) solution notebook."""
    written = []
    for path in solution_paths(names):
        target = LABS / path.name
        write_text_atomic(target, lab_text(path))
        written.append(target)
    return written


# ---------------------------------------------------------------------------------- outputs


def source_hash(notebook: nbformat.NotebookNode) -> str:
    """A hash of everything a solution's outputs depend on: the library and the code cells."""
    digest = hashlib.sha256()
    files = sorted(p for p in PACKAGE.rglob("*") if p.is_file() and _NOT_HASHED not in p.parents
                   and (p.suffix in (".py", ".safetensors", ".json")))
    for path in files:
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode())
    return digest.hexdigest()[:16]


def execute(notebook: nbformat.NotebookNode, cwd: Path, timeout: int = 600,
            allow_errors: bool = False) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel of this Python (cwd = its folder)."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}},
                            allow_errors=allow_errors, record_timing=False)
    client.execute()
    return notebook


def refresh(names: list[str] | None = None) -> dict[str, float]:
    """Re-run solution notebooks in place, stamp their source hash, rebuild their labs.

    Returns the wall time of each notebook in seconds.
    """
    times = {}
    for path in solution_paths(names):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        start = time.perf_counter()
        execute(notebook, path.parent)
        times[path.stem] = time.perf_counter() - start
        notebook.metadata.pop("widgets", None)  # widget state of tqdm bars: noise in the diff
        notebook.metadata["samteach"] = {"source_hash": source_hash(notebook)}
        write_text_atomic(path, nbformat.writes(notebook) + "\n")  # the course's source
        build_labs([path.stem])
        print(f"{path.stem}: {times[path.stem]:.0f} s", flush=True)
    return times
