"""Click -> mask latency of the clicking demo, tiny model, against Meta's predictor, one run.

    python benchmarks/bench_widget.py            # ~1 minute on a 2-core CPU
    python benchmarks/bench_widget.py --clicks 200

The click sequence is what a diligent user makes: RITM's robot clicks on one object of a lab
scene after another, 5 clicks per object, then reset -- so first clicks (three masks) and later
clicks (one mask, previous logits fed back) both appear, as in real use. The same sequence is
replayed by:

* widget: ``ClickDemo`` headless (and again in teaching mode, which adds the error regions and
  the robot's next click to every redraw): ipycanvas' ``mouse_down``/``mouse_up`` and ipyevents'
  ``mousedown`` messages delivered as the kernel's comm delivers them, up to the redrawn mask
  overlay and stars (PNG-encoded for the browser). What a student waits for, minus the network.
* session: ``PromptSession.add_point`` alone (prompt encoder + mask decoder + bookkeeping).
* official: ``segment_anything.SamPredictor.predict`` with the same prompts and mask inputs (it
  recomputes the dense positional encoding on every call), on the shipped weights without SAM 2's
  high-res path, which SAM 1 does not have; the session is timed on those weights too.

The image embedding is computed once per image in all three; its cost is printed beside.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # samteach and tests/official.py from this checkout

from samteach import build_sam, get_config  # noqa: E402
from samteach.data.scenes import make_scene  # noqa: E402
from samteach.demo.session import PromptSession  # noqa: E402
from samteach.demo.widget import ClickDemo  # noqa: E402

CLICKS_PER_OBJECT = 5
BUDGET_MS = 50.0  # the bar for p95 click -> mask


def click_sequence(sam, n: int) -> list[tuple[int, int, int, bool, int]]:
    """(scene seed, x, y, foreground, click index within its object) x n, made by RITM."""
    sequence, seed = [], 0
    while len(sequence) < n:
        scene = make_scene(seed)
        for target in scene.masks:
            session = PromptSession(sam, scene.image, target=target)
            for k in range(CLICKS_PER_OBJECT):
                click = session.suggest_click()
                if click is None or len(sequence) == n:
                    break
                session.add_point(click.x, click.y, foreground=click.is_positive)
                sequence.append((seed, click.x, click.y, click.is_positive, k))
        seed += 1
    return sequence


def time_widget(sam, sequence, teaching: bool = False) -> list[float]:
    times, demo, seed = [], None, None
    for scene_seed, x, y, foreground, k in sequence:
        if scene_seed != seed:
            seed = scene_seed
            scene = make_scene(seed)
            demo = ClickDemo(sam, scene.image, target=scene.masks[0] if teaching else None)
            scale = demo.canvas.width / demo.session.size[1]
        if k == 0:
            demo.buttons.reset.click()
        cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
        button = {"type": "mousedown", "button": 0 if foreground else 2, "shiftKey": False}
        start = time.perf_counter()
        _comm(demo.canvas, {"event": "mouse_down", "x": cx, "y": cy})
        _comm(demo.events, button)
        _comm(demo.canvas, {"event": "mouse_up", "x": cx, "y": cy})
        times.append(time.perf_counter() - start)
        assert demo.last_error is None and len(demo.session.points) == k + 1, demo.last_error
    return times


def time_session(sam, sequence) -> list[float]:
    times, session, seed = [], None, None
    for scene_seed, x, y, foreground, k in sequence:
        if scene_seed != seed:
            seed = scene_seed
            session = PromptSession(sam, make_scene(seed).image)
        if k == 0:
            session.reset()
        start = time.perf_counter()
        session.add_point(x, y, foreground=foreground)
        times.append(time.perf_counter() - start)
    return times


def time_official(official_sam, sequence) -> list[float]:
    from tests import official

    predictor = official.load("predictor").SamPredictor(official_sam)
    times, seed, points, labels, logits = [], None, [], [], None
    for scene_seed, x, y, foreground, k in sequence:
        if scene_seed != seed:
            seed = scene_seed
            predictor.set_image(make_scene(seed).image)
        if k == 0:
            points, labels, logits = [], [], None
        points.append([x, y])
        labels.append(int(foreground))
        start = time.perf_counter()
        masks, scores, low_res = predictor.predict(
            np.array(points, dtype=float), np.array(labels), mask_input=logits,
            multimask_output=k == 0)
        times.append(time.perf_counter() - start)
        best = int(np.argmax(scores))
        logits = low_res[best][None]
    return times


def time_encoder(sam) -> float:
    image = make_scene(0).image
    session = PromptSession(sam, image)
    start = time.perf_counter()
    for _ in range(5):
        session.predictor.set_image(image)
    return (time.perf_counter() - start) / 5


def _comm(widget, content: dict) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def _stats(times: list[float]) -> tuple[float, float]:
    ms = np.array(times) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=50)
    args = parser.parse_args()
    sam = build_sam("tiny", pretrained=True).eval()
    try:
        from tests import official

        # Meta's SAM 1 has no high-res path: both sides run the shipped weights without it
        # (a somewhat different model, the same work per click but for the path).
        config = official.sam1(get_config("tiny"))
        plain = build_sam(config).eval()
        plain.load_state_dict({k: v for k, v in sam.state_dict().items()
                               if k in plain.state_dict()})
        theirs = official.build_official(config).eval()
        theirs.load_state_dict(plain.state_dict())
    except Exception as error:  # the reference is optional here: report and go on
        print(f"official segment_anything unavailable ({error}); samteach only")
        plain = theirs = None
    sequence = click_sequence(sam, args.clicks)
    firsts = sum(k == 0 for *_, k in sequence)
    print(f"click -> mask, tiny model (128 px), {len(sequence)} clicks ({firsts} first clicks "
          f"with 3 masks), {torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    runs = {"widget (headless, to the redrawn overlay)": (time_widget, sam),
            "widget, teaching mode on": (lambda m, q: time_widget(m, q, teaching=True), sam),
            "session (PromptSession.add_point)": (time_session, sam)}
    if theirs is not None:
        runs["session, without the high-res path"] = (time_session, plain)
        runs["official SamPredictor.predict (SAM 1)"] = (time_official, theirs)
    results = {}
    for name, (run, model) in runs.items():
        run(model, sequence[:CLICKS_PER_OBJECT])  # warm-up: first-call costs are not clicks
        results[name] = run(model, sequence)
    print(f"{'':44} {'median':>9} {'p95':>9}")
    for name, times in results.items():
        median, p95 = _stats(times)
        print(f"{name:44} {median:>7.1f}ms {p95:>7.1f}ms")
    if theirs is not None:
        ours, official_times = results["session, without the high-res path"], \
            results["official SamPredictor.predict (SAM 1)"]
        ratio = statistics.median(official_times) / statistics.median(ours)
        print(f"official / samteach session (both SAM 1), median: {ratio:.2f}x")
    p95 = _stats(results["widget (headless, to the redrawn overlay)"])[1]
    verdict = "within" if p95 <= BUDGET_MS else "OVER"
    print(f"widget p95 {p95:.1f} ms: {verdict} the {BUDGET_MS:.0f} ms budget")
    print(f"image encoder once per image: {1000 * time_encoder(sam):.1f} ms")


if __name__ == "__main__":
    main()
