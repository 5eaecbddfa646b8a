"""Files are written whole or not at all (utils.files.atomic_write): a write cut short by a
file-size limit -- what a full disk does -- leaves the previous file intact."""

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
    "text (summary, gradebook)": ("from samteach.utils.files import write_text_atomic",
                                  "write_text_atomic({path!r}, 'x' * 10_000_000)"),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_write_cut_short_leaves_the_old_file(tmp_path, kind):
    path = tmp_path / "file"
    save_checkpoint(build_sam("tiny"), path)  # the previous file: small
    before = path.read_bytes()
    setup, write = WRITERS[kind]
    code = CHILD.format(limit=len(before) + 1000, setup=setup, write=write.format(path=str(path)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert "failed:" in done.stdout and "File too large" in done.stdout, done.stderr  # cut short
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no temporary file left
