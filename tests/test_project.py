"""The project around the library: README, CI, Binder, import weight, lint."""

import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [line for block in blocks for line in block.strip().splitlines()]


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    course, tests = commands
    assert "jupyter lab labs/" in course and tests.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_torch_is_pinned_to_the_cpu_wheel_everywhere():
    """README, CI and Binder install the same torch release (Binder's +cpu build of it)."""
    pins = set(re.findall(r"torch==([\w.+]+)", " ".join(readme_commands())))
    pins |= set(re.findall(r"torch==([\w.+]+)", (ROOT / ".ci" / "run").read_text()))
    binder = binder_requirements()
    pins.add(str(binder["torch"].specifier).removeprefix("==").removesuffix("+cpu"))
    assert pins == {"2.13.0"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def binder_requirements() -> dict[str, Requirement]:
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    lines = [line.split("#")[0].strip() for line in lines]
    return {Requirement(line).name: Requirement(line) for line in lines
            if line and not line.startswith("-")}


def test_binder_requirements_agree_with_pyproject():
    text = (ROOT / "binder" / "requirements.txt").read_text()
    assert re.search(r"^-e \.$", text, flags=re.M), "binder must install the package itself"
    deps = {Requirement(d).name: Requirement(d) for d in pyproject()["project"]["dependencies"]}
    for name, req in binder_requirements().items():
        assert name in deps, f"binder pins {name}, which pyproject does not depend on"
        for spec in req.specifier:  # every pinned version must satisfy pyproject's range
            version = spec.version.split("+")[0]
            assert deps[name].specifier.contains(version), f"{name}=={version} vs {deps[name]}"


def test_binder_runtime_and_start_page():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    version = runtime.removeprefix("python-")
    assert re.fullmatch(r"3\.\d+", version)
    required = pyproject()["project"]["requires-python"]
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(required).contains(version + ".0")
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "set -e" in post_build and "/lab/tree/labs" in post_build


def test_course_folders_exist():
    for folder in ("labs", "samteach", "solutions", "tests", "binder", "benchmarks"):
        assert (ROOT / folder).is_dir(), folder


def test_import_is_light():
    """`import samteach` must not pull in plotting, widgets or dataset tooling."""
    heavy = ["matplotlib", "ipycanvas", "ipywidgets", "datasets", "scipy", "segment_anything"]
    code = f"import sys, samteach; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ruff_passes():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _samteach_imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, name)} for every samteach import, lazy ones included."""
    import ast

    package = ROOT / "samteach"
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    found = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level \
                else node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                edges.add((full if full in modules else target, alias.name))
        found[name] = {(m, n) for m, n in edges if m in modules and m != name}
    return found


def test_no_import_cycle_and_no_private_name_across_subpackages():
    imports = _samteach_imports()
    graph = {m: {t for t, _ in edges} for m, edges in imports.items()}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(t == goal or (t not in seen and not seen.add(t) and reaches(t, goal, seen))
                   for t in graph[start])

    cycles = [m for m in graph if reaches(m, m, set())]
    assert not cycles, f"modules on an import cycle: {sorted(cycles)}"
    private = [(m, t, n) for m, edges in imports.items() for t, n in edges
               if n.startswith("_") and not n.startswith("__")
               and m.split(".")[:2] != t.split(".")[:2]]
    assert not private, f"private names imported across subpackages: {private}"
