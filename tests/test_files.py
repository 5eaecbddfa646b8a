"""Files are written whole or not at all (utils.files.atomic_write): a write cut short by a
file-size limit -- what a full disk does -- leaves the previous file intact; and a file's
SHA-256 (utils.files.file_sha256) names its bytes."""

import subprocess
import sys

import pytest

from samteach import build_sam
from samteach.checkpoint import save_checkpoint

# In a child process: a file-size limit just above the old file, so the new (larger) one
# cannot be written; exceeding it raises OSError(EFBIG) instead of killing the process.
CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
{setup}
try:
    {write}
except OSError as error:
    print("failed:", error)
"""

WRITERS = {
    "checkpoint": ("from samteach import build_sam; from samteach.checkpoint import "
                   "save_checkpoint; sam = build_sam('vit_b')",
                   "save_checkpoint(sam, {path!r})"),
    "text (summary, gradebook, notebooks)": (
        "from samteach.utils.files import write_text_atomic",
        "write_text_atomic({path!r}, 'x' * 10_000_000)"),
    # as Trainer writes state.pt, and as --ship copies a run's weights into samteach/weights
    "run state (torch.save)": ("import torch; from samteach.training.trainer import _save_state",
                               "_save_state({{'model': torch.zeros(10**7)}}, "
                               "__import__('pathlib').Path({path!r}))"),
    "shipped weights (a copy)": ("import shutil, os; from samteach.utils.files import "
                                 "atomic_write; big = {path!r} + '.big'",
                                 "atomic_write({path!r}, lambda tmp: shutil.copyfile(big, tmp))"),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_write_cut_short_leaves_the_old_file(tmp_path, kind):
    path = tmp_path / "file"
    save_checkpoint(build_sam("tiny"), path)  # the previous file: small
    before = path.read_bytes()
    big = tmp_path / "file.big"  # what the copy case copies (written before any limit)
    big.write_bytes(bytes(len(before) * 4))
    setup, write = WRITERS[kind]
    code = CHILD.format(limit=len(before) + 1000, setup=setup.format(path=str(path)),
                        write=write.format(path=str(path)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert "failed:" in done.stdout, done.stderr  # cut short, and an OSError (one error: line)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "file.big"]  # no temporary


def test_file_sha256_names_the_bytes(tmp_path):
    from samteach.utils.files import file_sha256

    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")  # FIPS 180-2's first example
    assert file_sha256(path) == ("ba7816bf8f01cfea414140de5dae2223"
                                 "b00361a396177a9cb410ff61f20015ad")
