"""The clicking demo in a real JupyterLab, driven in Debian's Chromium by Playwright.

The headless tests (test_widgets.py) send the messages a browser would send; this one checks
that a browser really sends them: JupyterLab renders ipycanvas and ipyevents, a real mouse
clicks the canvas with the left button, with shift, with the right button, and the kernel
behind the notebook receives the points with the right labels and changes its mask.

How: start ``jupyter lab`` on 127.0.0.1 (a free port, a random token, a throw-away root,
runtime, config and workspace folder), open the demo notebook with ``?reset`` (so no restored
workspace opens another tab), run all cells through JupyterLab's command registry, click, and
ask the notebook's own kernel -- through its connection file, as ``jupyter console
--existing`` would -- what ``demo.session`` holds. Every wait has a deadline; the server (and
its kernel) is always shut down; a failure reports the server log and the browser's errors.
A screenshot of the widget after the clicks is written to build/browser/clicking_demo.png.

Needs Debian's ``chromium`` and the ``playwright`` package (whose own browser download is not
used). Without chromium the test is skipped, except where SAMTEACH_REQUIRE_BROWSER=1 (CI).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "05_clicking_demo.ipynb"
SCREENSHOT = ROOT / "build" / "browser" / "clicking_demo.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("SAMTEACH_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " but SAMTEACH_REQUIRE_BROWSER=1")
        pytest.skip(message)
    return CHROMIUM


class JupyterLab:
    """A JupyterLab server in a throw-away folder; use as a context manager."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.token = folder, secrets.token_hex(16)
        self.port = _free_port()
        self.log_path = folder / "server.log"
        self.runtime = folder / "runtime"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "JupyterLab":
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(self.runtime),
               "JUPYTER_CONFIG_DIR": str(self.folder / "config"),
               "JUPYTER_DATA_DIR": str(self.folder / "data"), "OMP_NUM_THREADS": "1"}
        env.pop("PYTEST_XDIST_WORKER", None)
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.folder / 'root'}",
                   f"--LabApp.workspaces_dir={self.folder / 'workspaces'}",
                   f"--LabApp.user_settings_dir={self._settings()}",
                   "--LabApp.expose_app_in_browser=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.log = open(self.log_path, "w")  # closed in __exit__
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        try:
            _wait(self._answers, 60, "the Jupyter server to answer", self)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _settings(self) -> Path:
        """User settings: no "get notified about Jupyter news?" pop-up over the notebook."""
        folder = self.folder / "settings" / "@jupyterlab" / "apputils-extension"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        return self.folder / "settings"

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {self.process.returncode}"
                                 + self.report())
        try:
            with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                return True
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and the kernels it started
            self.process.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        finally:
            self.log.close()

    def kernel(self):
        """A client of the (single) kernel the server started."""
        from jupyter_client import BlockingKernelClient

        files = sorted(self.runtime.glob("kernel-*.json"))
        assert len(files) == 1, f"expected one kernel, found {files}" + self.report()
        client = BlockingKernelClient(connection_file=str(files[0]))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        return client

    def report(self) -> str:
        self.log.flush()
        return "\n--- jupyter lab log (last 4000 characters) ---\n" \
            + self.log_path.read_text()[-4000:]


def ask(client, expression: str) -> object:
    """Evaluate ``expression`` in the notebook's kernel; its JSON-able value."""
    printed = []

    def keep(message):
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append("ERROR " + message["content"]["ename"] + ": "
                           + message["content"]["evalue"])

    client.execute_interactive(f"import json as _j; print(_j.dumps({expression}))",
                               output_hook=keep, timeout=30)
    text = "".join(printed)
    assert not text.startswith("ERROR"), text
    return json.loads(text)


def nearest(client, on_object: bool, x: int, y: int) -> list[int]:
    """The pixel [x, y] on (or off) the demo's target object nearest to (x, y)."""
    region = "demo.session.target" if on_object else "~demo.session.target"
    return ask(client, f"(lambda yx: [int(v) for v in yx[((yx - [{y}, {x}]) ** 2).sum(1)"
                       f".argmin()][::-1]])(__import__('numpy').argwhere({region}))")


def state(client) -> dict:
    return ask(client, "{'points': demo.session.points.tolist(), "
                       "'labels': demo.session.labels.tolist(), "
                       "'mask': int(demo.session.mask.sum()), "
                       "'digest': hash(demo.session.mask.tobytes()), "
                       "'error': demo.last_error, 'presses': demo._pairs.presses, "
                       "'reported': demo._pairs.reported}")


def test_clicks_in_jupyterlab_reach_the_kernel_with_their_labels(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "root").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "root" / "demo.ipynb")
    errors: list[str] = []
    with JupyterLab(tmp_path) as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.set_default_timeout(60_000)
            page.goto(f"{lab.url}/lab/tree/demo.ipynb?reset&token={lab.token}")
            run_all_cells(page, lab)
            client = lab.kernel()
            try:
                click_and_check(page, client, lab, errors)
            finally:
                client.stop_channels()
        except Exception as error:
            raise AssertionError(f"{error}\nbrowser errors: {errors}" + lab.report()) from error
        finally:
            browser.close()


def run_all_cells(page, lab: JupyterLab) -> None:
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           "   && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           "   && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           "      .kernel && window.jupyterapp.shell.currentWidget"
                           "      .sessionContext.session.kernel.status === 'idle'",
                           timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # Done when every code cell shows an execution count and none shows [*].
    page.wait_for_function("""() => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
        return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
    }""", timeout=180_000)
    failed = page.locator(".jp-OutputArea-output[data-mime-type="
                          "'application/vnd.jupyter.stderr']")
    assert failed.count() == 0, "a cell wrote to stderr: " + failed.first.inner_text()


def click_and_check(page, client, lab: JupyterLab, errors: list[str]) -> None:
    canvas = page.locator(".jp-OutputArea-output canvas").last  # the top layer of MultiCanvas
    canvas.wait_for(state="visible")
    # Figures above the widget may still be loading and push it down: centre it, and wait
    # until it stays where it is.
    _wait(lambda: _settled(page, canvas), 30, "the canvas to stop moving", lab)
    initial = state(client)
    assert initial["points"] == [] and initial["mask"] == 0, initial
    target = ask(client, "[demo.session.suggest_click().x, demo.session.suggest_click().y]")
    right = nearest(client, False, target[0] + 12, target[1])  # background pixels
    left = nearest(client, False, target[0] - 12, target[1] + 4)

    def at(pixel: list[int]) -> tuple[float, float]:
        """Page coordinates of an image pixel's centre, however the canvas is displayed."""
        box = canvas.bounding_box()
        size = ask(client, "list(demo.session.size)")  # (H, W) of the image
        return (box["x"] + (pixel[0] + 0.5) * box["width"] / size[1],
                box["y"] + (pixel[1] + 0.5) * box["height"] / size[0])

    expected = {"points": [], "labels": []}
    last = initial
    for pixel, label, how in [(target, 1, "left"), (right, 0, "right"), (left, 0, "shift")]:
        x, y = at(pixel)
        if how == "shift":
            page.keyboard.down("Shift")
            page.mouse.click(x, y)
            page.keyboard.up("Shift")
        else:
            page.mouse.click(x, y, button=how)
        expected["points"].append([float(pixel[0]), float(pixel[1])])
        expected["labels"].append(label)
        now = _wait(lambda: _has(state(client), expected), 30,
                    f"the {how} click to reach the kernel", lab)
        assert now["points"] == expected["points"], (now, expected)
        assert now["labels"] == expected["labels"], (now, expected)
        assert now["digest"] != last["digest"], f"the mask did not change after the {how} click"
        assert now["error"] is None, now["error"]
        last = now
    assert last["mask"] > 0
    # ipyevents reported every press (the labels did not come from the fallback).
    assert last["presses"] == last["reported"] == 3, last
    page.wait_for_timeout(500)  # let the browser paint the last overlay
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    widget = page.locator(".jp-OutputArea-output", has=page.locator("canvas")).last
    widget.screenshot(path=SCREENSHOT)
    # Shown smaller than its pixels (CSS 300 px for a 512 px canvas): a click still lands on
    # the image pixel under the mouse.
    ask(client, "[setattr(demo.canvas.layout, side, '300px') for side in ('width', 'height')]")
    _wait(lambda: abs(canvas.bounding_box()["width"] - 300) < 1, 30, "the canvas to shrink", lab)
    pixel = nearest(client, True, target[0] + 1, target[1] - 4)
    page.mouse.click(*at(pixel))
    expected["points"].append([float(pixel[0]), float(pixel[1])])
    now = _wait(lambda: _has(state(client), expected), 30, "the click on the small canvas", lab)
    assert now["points"] == expected["points"] and now["labels"] == [1, 0, 0, 1], now
    assert not errors, errors


def _settled(page, canvas) -> bool:
    canvas.evaluate("element => element.scrollIntoView({block: 'center'})")
    before = canvas.bounding_box()
    page.wait_for_timeout(300)
    return before is not None and before == canvas.bounding_box()


def _has(now: dict, expected: dict) -> dict | None:
    return now if len(now["points"]) >= len(expected["points"]) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, seconds: float, what: str, lab: JupyterLab):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}" + lab.report())
