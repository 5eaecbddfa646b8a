"""Writing files so that an interrupted or failed write never leaves a half-written file, and
naming a file's exact bytes.

Every file samteach writes (checkpoints, run state, summaries, shipped weights, plots) goes to a
temporary file beside its destination first and is renamed over it only when complete: a rename
within one folder is atomic, so the destination holds either the old file or the new one.
"""

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "file_sha256", "write_text_atomic"]


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` to fill a file, then move it to ``path`` in one step."""
    path = Path(path)
    if not path.parent.is_dir():  # say so of the destination, not of a temporary name
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a file's usual mode
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: leave no temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """``Path(path).write_text(text)``, atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex: what pins a warm start or a shipped file to the
    exact weights it names (a file name alone may hold other weights tomorrow)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask
