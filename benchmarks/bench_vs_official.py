"""samteach vs Meta's segment_anything 1.0: speed and peak memory, same weights, one run.

    python benchmarks/bench_vs_official.py            # ~3 minutes on a 2-core CPU
    python benchmarks/bench_vs_official.py --quick    # fewer repeats, for a smoke test

(a) the vit_b image encoder on one 1024x1024 image;
(b) prompt encoder + mask decoder for one click on a cached vit_b-shaped image embedding,
    each as its predictor runs it (the official one recomputes the dense PE per click);
(c) ``SamPredictor.predict`` for one click, end to end as a user calls it (prompt encoder,
    mask decoder, the three masks brought to the image's size) on a 1000x750 image encoded
    once beforehand; samteach's predictor runs its fast path (``samteach.fast.click``).

Every measurement runs in a fresh subprocess, so one implementation's allocations never count
against the other. Peak memory on CPU is the process's peak resident set while the measured
call runs (Linux VmHWM, reset just before it) minus the resident set before it: the working
memory of the call, weights excluded (they are the same 360 MB for both). On CUDA it is
``torch.cuda.max_memory_allocated`` over the call, minus what was allocated before.
Times are medians over repeated calls after a warm-up call.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # samteach and tests/official.py from this checkout

CLICK = ([[500.0, 375.0]], [1])  # the official notebook's truck-window click


def _official_vit_b():
    from tests import official

    return official.load("build_sam").build_sam_vit_b()


def _build(impl: str, checkpoint: str):
    if impl == "official":
        sam = _official_vit_b()
        sam.load_state_dict(torch.load(checkpoint, weights_only=True))
        return sam
    from samteach import build_sam

    return build_sam("vit_b", checkpoint)  # "samteach" and "samteach_bf16"


def _rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure_memory(call, device: torch.device) -> int:
    """Peak bytes the call needs beyond what was resident before it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _rss_bytes("VmRSS")
    call()
    return _rss_bytes("VmHWM") - before


def _median_time(call, device: torch.device, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(impl: str, task: str, checkpoint: str, device_name: str, repeats: int, out: str):
    device = torch.device(device_name)
    sam = _build(impl, checkpoint).to(device).eval()
    g = torch.Generator().manual_seed(0)
    if task == "encoder":
        x = torch.randn(1, 3, 1024, 1024, generator=g).to(device)

        def call():
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=impl == "samteach_bf16"):
                return sam.image_encoder(x).float()
    elif task == "predict":  # SamPredictor.predict end to end, on a cached 1000x750 photo
        import numpy as np

        if impl == "official":
            from tests import official

            predictor = official.load("predictor").SamPredictor(sam)
        else:
            from samteach import SamPredictor

            predictor = SamPredictor(sam, bf16=impl == "samteach_bf16")
        image = torch.randint(0, 256, (750, 1000, 3), generator=g, dtype=torch.uint8).numpy()
        with torch.inference_mode():
            predictor.set_image(image)  # once, not timed
        point, label = np.array(CLICK[0]), np.array(CLICK[1])

        def call():
            return predictor.predict(point, label, multimask_output=True)
    else:
        embedding = torch.randn(1, 256, 64, 64, generator=g).to(device)
        points = (torch.tensor([CLICK[0]], device=device), torch.tensor([CLICK[1]], device=device))
        cached_pe = sam.prompt_encoder.get_dense_pe()  # samteach's predictor caches it

        def call():
            sparse, dense = sam.prompt_encoder(points=points, boxes=None, masks=None)
            pe = sam.prompt_encoder.get_dense_pe() if impl == "official" else cached_pe
            return sam.mask_decoder(embedding, pe, sparse, dense, multimask_output=True)

    with torch.inference_mode():
        memory = _measure_memory(call, device)
        seconds = _median_time(call, device, repeats)
        result = call()
    if task == "predict":  # masks (bool), IoUs, low-res logits: numpy arrays
        torch.save([torch.as_tensor(x) for x in result], out)
    else:
        result = result[0] if isinstance(result, tuple) else result
        torch.save(result.float().cpu(), out)
    print(json.dumps({"seconds": seconds, "memory": memory}))


def run_worker(impl, task, checkpoint, device, repeats, out) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, task, checkpoint, device, str(repeats), out]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{impl} {task} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    repeats = {"encoder": 1 if args.quick else 3, "click": 5 if args.quick else 30,
               "predict": 5 if args.quick else 30}

    print(f"samteach vs segment_anything 1.0 on {args.device} "
          f"({torch.get_num_threads()} threads), torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = str(Path(tmp) / "vit_b_random.pth")
        torch.manual_seed(0)
        torch.save(_official_vit_b().state_dict(), checkpoint)  # the same weights for both
        rows = []
        for task, label in [("encoder", "(a) vit_b image encoder, 1 image 1024x1024"),
                            ("click", "(b) prompt encoder + mask decoder, 1 click"),
                            ("predict", "(c) SamPredictor.predict, 1 click, 1000x750")]:
            res, outs = {}, {}
            for impl in ("official", "samteach"):
                outs[impl] = str(Path(tmp) / f"{impl}_{task}.pt")
                res[impl] = run_worker(impl, task, checkpoint, args.device, repeats[task],
                                       outs[impl])
            theirs, ours = torch.load(outs["official"]), torch.load(outs["samteach"])
            if task == "predict":  # logits and IoUs to 1e-4; the masks, the share that differs
                diff = max(float((theirs[i] - ours[i]).abs().max()) for i in (1, 2))
                res["samteach"]["mask_share"] = float((theirs[0] != ours[0]).float().mean())
            else:
                diff = float((theirs - ours).abs().max())
            rows.append((label, res["official"], res["samteach"], diff))
        # bf16 autocast for the encoder (an opt-in): its time, and how its masks differ from
        # fp32's on the same image and click
        bf16 = {}
        for task in ("encoder", "predict"):
            bf16[task] = str(Path(tmp) / f"bf16_{task}.pt")
            res_bf16 = run_worker("samteach_bf16", task, checkpoint, args.device,
                                  repeats[task], bf16[task])
            if task == "encoder":
                encoder_bf16 = res_bf16
                ref = torch.load(str(Path(tmp) / "samteach_encoder.pt"))
                relative = float((torch.load(bf16[task]) - ref).norm() / ref.norm())
        fp32_masks = torch.load(str(Path(tmp) / "samteach_predict.pt"))[0]
        bf16_masks = torch.load(bf16["predict"])[0]
        mask_share = float((fp32_masks != bf16_masks).float().mean())

    print(f"{'':46} {'official':>12} {'samteach':>12} {'ratio':>8}")
    for label, off, ours, diff in rows:
        unit, scale = ("s", 1.0) if off["seconds"] > 1 else ("ms", 1e3)
        print(f"{label:46} {off['seconds'] * scale:>10.2f}{unit:>2} "
              f"{ours['seconds'] * scale:>10.2f}{unit:>2} "
              f"{off['seconds'] / ours['seconds']:>7.2f}x  faster (official/samteach time)")
        print(f"{'    peak working memory':46} {off['memory'] / 2**20:>9.0f}MiB "
              f"{ours['memory'] / 2**20:>9.0f}MiB "
              f"{ours['memory'] / max(off['memory'], 1):>7.2f}x  (samteach/official memory)")
        print(f"{'    outputs agree: max |difference|':46} {diff:>12.2e}"
              + ("  (low-res logits, IoUs)" if "mask_share" in ours else ""))
        if "mask_share" in ours:
            print(f"{'    full-size mask pixels that differ':46} {ours['mask_share']:>12.2e}"
                  "  (one resize instead of two)")
    off = rows[0][1]
    print(f"{'(d) vit_b encoder, samteach bf16 autocast':46} {off['seconds']:>10.2f} s "
          f"{encoder_bf16['seconds']:>10.2f} s {off['seconds'] / encoder_bf16['seconds']:>7.2f}x"
          "  faster (official fp32 / samteach bf16)")
    print(f"{'    embedding vs fp32: relative error':46} {relative:>12.2e}")
    print(f"{'    mask pixels that differ from fp32 (c)':46} {mask_share:>12.2e}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, task, checkpoint, device, repeats, out = sys.argv[2:8]
        worker(impl, task, checkpoint, device, int(repeats), out)
    else:
        main()
