"""The interactive training loop: it learns, it feeds back the right mask, its clicks are
corrective, it resumes exactly, it refuses bad settings, and it runs under torchrun."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from samteach import build_sam
from samteach.checkpoint import read_checkpoint
from samteach.predictor import SamPredictor
from samteach.training import (
    SceneMasks,
    TrainConfig,
    interactive_step,
    lr_at,
    next_round_prompts,
    preprocess_batch,
    round_plan,
)
from samteach.training.samplers import sample_error_clicks
from samteach.training.trainer import Trainer

SMALL = TrainConfig(images_per_step=2, masks_per_image=3, rounds=3, no_click_rounds=0,
                    grad_rounds="all", point_mode="uniform", loss_resolution="low",
                    generic_share=0.0, nonsquare_share=0.0, warmup_steps=2, max_steps=4, lr=2e-3)


def batch(n: int = 2, k: int = 3, first_seed: int = 0):
    data = SceneMasks(128, k, first_seed=first_seed)
    images, masks, _ = zip(*(data[i] for i in range(n)), strict=True)
    return torch.stack(images), torch.stack(masks)


def test_a_short_run_drives_the_loss_down():
    """30 steps on the same 4 scenes: the loop can fit what it sees."""
    torch.manual_seed(0)
    sam = build_sam("tiny").train()
    config = replace(SMALL, rounds=2, p_box=0.0)
    optimizer = torch.optim.AdamW(sam.parameters(), lr=3e-3)
    images, masks = batch(4, 2)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        out = interactive_step(sam, images, masks, config, g)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_round_two_gets_round_ones_most_confident_logits():
    sam = build_sam("tiny")
    images, masks = batch()
    out = interactive_step(sam, images, masks, SMALL, torch.Generator().manual_seed(1),
                           record_rounds=True)
    first, second = out["rounds"][0], out["rounds"][1]
    assert first["mask_input"] is None and first["low_res"].shape[1] == 3  # multimask
    best = first["best"]
    expected = first["low_res"][torch.arange(len(best)), best][:, None]
    assert torch.equal(second["mask_input"], expected)  # unthresholded, the chosen output
    assert out["rounds"][2]["low_res"].shape[1] == 1  # later rounds: one mask


def test_corrective_clicks_land_on_errors_only():
    sam = build_sam("tiny")
    images, masks = batch(2, 3, first_seed=5)
    gt = masks.flatten(0, 1)
    out = interactive_step(sam, images, masks, replace(SMALL, rounds=4),
                           torch.Generator().manual_seed(2), record_rounds=True)
    for before, after in zip(out["rounds"][:-1], out["rounds"][1:], strict=True):
        pred = F.interpolate(after["mask_input"], size=gt.shape[-2:], mode="bilinear",
                             align_corners=False)[:, 0] > 0
        click, label = after["points"][:, -1], after["labels"][:, -1]
        assert torch.equal(after["points"][:, :-1], before["points"])
        for p in range(len(gt)):
            x, y = click[p].long().tolist()
            if label[p] == 1:  # a missed pixel of the object
                assert gt[p, y, x] and not pred[p, y, x]
            elif label[p] == 0:  # a pixel wrongly taken
                assert pred[p, y, x] and not gt[p, y, x]
            else:  # nothing wrong: a padding token
                assert label[p] == -1 and torch.equal(pred[p], gt[p])


def test_next_round_prompts_feeds_back_the_most_confident_logits_and_clicks_on_them():
    g = torch.Generator().manual_seed(0)
    low_res = torch.randn(3, 3, 8, 8, generator=g, requires_grad=True)  # (P, M, h, w)
    iou_pred = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.1], [0.3, 0.4, 0.6]])
    gt = torch.rand(3, 32, 32, generator=g) > 0.5
    points, labels = torch.zeros(3, 2, 2), torch.tensor([[1, -1]] * 3)
    new_points, new_labels, mask_input = next_round_prompts(
        points, labels, low_res, iou_pred, gt, torch.Generator().manual_seed(1))
    assert torch.equal(mask_input, low_res[[0, 1, 2], [1, 0, 2]][:, None])  # unthresholded
    assert not mask_input.requires_grad  # detached: no gradient into the previous round
    pred = F.interpolate(mask_input, size=(32, 32), mode="bilinear",
                         align_corners=False)[:, 0] > 0
    clicks, click_labels = sample_error_clicks(pred, gt, torch.Generator().manual_seed(1))
    assert torch.equal(new_points, torch.cat([points, clicks[:, None]], dim=1))
    assert torch.equal(new_labels, torch.cat([labels, click_labels[:, None]], dim=1))
    same = next_round_prompts(points, labels, low_res, iou_pred, gt, click=False)
    assert same[0] is points and same[1] is labels and torch.equal(same[2], mask_input)


def test_grad_rounds_last_trains_on_the_last_round_only():
    sam = build_sam("tiny")
    images, masks = batch()
    out = interactive_step(sam, images, masks, replace(SMALL, grad_rounds="last"))
    assert out["loss"].requires_grad and len(out["round_loss"]) == 3
    assert out["loss"].item() == pytest.approx(out["round_loss"][-1], rel=1e-5)


def test_grad_rounds_sample_trains_round_one_and_a_few_others():
    config = replace(SMALL, rounds=9, no_click_rounds=2, grad_rounds="sample", grad_sample=3)
    seen = set()
    for seed in range(20):
        clicks, grads = round_plan(config, torch.Generator().manual_seed(seed))
        assert len(grads) == 11 and grads[0] and sum(grads) == 3
        seen |= {r for r, g in enumerate(grads) if g}
        # The paper's schedule: 8 click rounds, one no-click round somewhere among them, and
        # one at the end (round 0 brings the first prompt).
        assert clicks[0] is False and clicks[-1] is False and sum(clicks) == 8
    assert seen == set(range(11))  # every round is trained now and then
    sam = build_sam("tiny")
    images, masks = batch()
    lengths = set()
    for seed in range(4):  # no round is played after the last trained one (3 at least)
        out = interactive_step(sam, images, masks, config, torch.Generator().manual_seed(seed))
        assert out["loss"].requires_grad and 3 <= len(out["round_loss"]) <= 11
        lengths.add(len(out["round_loss"]))
    assert len(lengths) > 1


def test_no_click_rounds_only_feed_the_mask_back():
    sam = build_sam("tiny")
    images, masks = batch()
    config = replace(SMALL, rounds=3, no_click_rounds=2)
    g = torch.Generator().manual_seed(3)
    clicks, _ = round_plan(config, torch.Generator().manual_seed(3))
    out = interactive_step(sam, images, masks, config, g, record_rounds=True)
    for r in range(1, 5):
        before, after = out["rounds"][r - 1], out["rounds"][r]
        added = after["points"].shape[1] - before["points"].shape[1]
        assert added == (1 if clicks[r] else 0)
        assert after["mask_input"] is not None  # the previous mask always comes back


def test_a_non_square_training_image_is_padded_exactly_as_the_predictor_pads():
    data = SceneMasks(128, 2, generic_share=0.5, nonsquare_share=1.0)
    image, masks, size = data[0]
    h, w = size.tolist()
    assert (h, w) != (128, 128) and max(h, w) == 128
    assert not image[:, h:, :].any() and not image[:, :, w:].any()
    assert not masks[:, h:, :].any() and not masks[:, :, w:].any()
    sam = build_sam("tiny")
    predictor = SamPredictor(sam)
    predictor.set_image(image[:, :h, :w].permute(1, 2, 0).numpy())  # the photo as a user has it
    ours = preprocess_batch(sam, image[None], size[None])[0]
    theirs = sam.preprocess(torch.as_tensor(predictor.transform.apply_image(
        image[:, :h, :w].permute(1, 2, 0).numpy())).permute(2, 0, 1).float())
    assert torch.equal(ours, theirs) and not torch.signbit(ours[:, h:]).any()  # +0, bit for bit
    with torch.no_grad():  # the same input; the encoder agrees to float rounding
        torch.testing.assert_close(sam.image_encoder(ours[None]), predictor.features,
                                   rtol=0, atol=1e-5)


def test_scene_masks_mix_lab_and_generic_scenes_of_several_shapes():
    data = SceneMasks(128, 2, generic_share=0.5, nonsquare_share=0.3)
    ids = [data[i] for i in range(40)]
    sizes = {tuple(item[2].tolist()) for item in ids}
    assert (128, 128) in sizes and len(sizes) > 3
    lab = SceneMasks(128, 2)[5]
    assert torch.equal(lab[0], SceneMasks(128, 2, nonsquare_share=0.0)[5][0])
    assert tuple(lab[2].tolist()) == (128, 128)
    kinds = []
    for i in range(40):  # which generator drew item i: the lab scene of that seed, or not
        from samteach.data.scenes import make_scene

        h, w = ids[i][2].tolist()
        lab_image = torch.from_numpy(make_scene(i, (h, w)).image).permute(2, 0, 1)
        kinds.append(torch.equal(ids[i][0][:, :h, :w], lab_image))
    assert 8 < sum(kinds) < 32  # about half and half


def test_point_mode_both_uses_both_rules():
    """Half the clicks follow each rule: their mean distance from the middle lies halfway."""
    from samteach.training.samplers import sample_first_prompts

    masks = torch.zeros(2000, 32, 32, dtype=torch.bool)
    masks[:, 4:28, 4:28] = True

    def spread(mode):
        first = sample_first_prompts(masks, torch.Generator().manual_seed(0), p_box=0.0,
                                     point_mode=mode)
        return (first.points[:, 0] - 15.5).abs().amax(dim=1).mean().item()

    uniform, centre, both = spread("uniform"), spread("center"), spread("both")
    assert centre < uniform - 1.0
    assert both == pytest.approx((uniform + centre) / 2, abs=0.3)


def test_schedule_warms_up_then_decays():
    config = replace(SMALL, lr=1.0, warmup_steps=10, max_steps=110)
    assert lr_at(0, config) == pytest.approx(0.1) and lr_at(9, config) == pytest.approx(1.0)
    assert lr_at(60, config) == pytest.approx(0.525)
    assert lr_at(110, config) == pytest.approx(0.05) and lr_at(500, config) == pytest.approx(0.05)


@pytest.mark.parametrize("change, pattern", [
    (dict(rounds=0), "rounds must be a positive int"),
    (dict(lr=-1e-3), "lr must be a positive learning rate"),
    (dict(grad_rounds="some"), "grad_rounds must be one of 'all', 'last', 'sample'"),
    (dict(point_mode="corner"), "point_mode must be one of"),
    (dict(generic_share=1.5), r"generic_share must be a share in \[0, 1\]"),
    (dict(grad_sample=0), "grad_sample must be a positive int"),
    (dict(masks_per_image=0), "masks_per_image must be a positive int"),
    # checked where the config is made, not at the first step (or never)
    (dict(focal_weight=-1.0), "focal_weight must be a number >= 0; got -1.0"),
    (dict(dice_weight=float("nan")), "dice_weight must be a number >= 0; got nan"),
    (dict(weight_decay=float("nan")), "weight_decay must be a number >= 0"),
    (dict(p_box=1.5), r"p_box must be a share in \[0, 1\]; got 1.5"),
    (dict(lr=float("nan")), "lr must be a positive learning rate; got nan"),
    (dict(warmup_steps=-1), "warmup_steps must be an int >= 0"),
])
def test_bad_configs(change, pattern):
    with pytest.raises(ValueError, match=pattern):
        replace(SMALL, **change)


def test_config_values_of_the_wrong_kind():
    with pytest.raises(TypeError, match="no_click_rounds must be an int >= 0; got float"):
        replace(SMALL, no_click_rounds=1.5)


def quick_trainer(out: Path, **kwargs) -> Trainer:
    return Trainer(SMALL, out, eval_every=0, eval_scenes=1, progress=False, **kwargs)


def test_an_existing_run_is_not_overwritten_silently(tmp_path, no_evaluation):
    quick_trainer(tmp_path / "run").fit()
    with pytest.raises(ValueError, match="already holds a checkpoint: pass resume=True"):
        quick_trainer(tmp_path / "run")
    quick_trainer(tmp_path / "run", overwrite=True)  # asked for: fine
    with pytest.raises(ValueError, match="holds no run to resume"):
        quick_trainer(tmp_path / "fresh", resume=True)


def test_an_interrupted_overwrite_loses_nothing_and_mixes_nothing(tmp_path, monkeypatch,
                                                                 no_evaluation):
    """--overwrite on a finished run, then Ctrl-C at the first step: the finished run's files
    are intact in .replaced/, the folder holds only the new run's; finishing the new run (here
    by --resume) deletes the replaced one."""
    run = tmp_path / "run"
    quick_trainer(run).fit()
    finished = {name: (run / name).read_bytes() for name in ("model.safetensors", "state.pt",
                                                            "summary.json", "log.jsonl")
                if (run / name).exists()}
    assert "summary.json" in finished
    again = quick_trainer(run, overwrite=True)

    def ctrl_c(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(again, "_train_step", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        again.fit()
    for name, data in finished.items():
        assert (run / ".replaced" / name).read_bytes() == data
    assert not (run / "summary.json").exists()  # one folder, one run
    assert torch.load(run / "state.pt", weights_only=True)["step"] == 0  # the new run's
    quick_trainer(run, resume=True).fit()
    assert not (run / ".replaced").exists() and (run / "summary.json").exists()


def test_a_damaged_state_file_is_named(tmp_path, no_evaluation):
    run = tmp_path / "run"
    quick_trainer(run).fit()
    data = (run / "state.pt").read_bytes()
    (run / "state.pt").write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    with pytest.raises(ValueError, match=r"resume: .*state.pt cannot be read .* damaged"):
        quick_trainer(run, resume=True)


def test_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch, no_evaluation):
    """Stop after 2 of 4 steps, resume: the weights equal those of an uninterrupted run."""
    quick_trainer(tmp_path / "straight").fit()
    interrupted = quick_trainer(tmp_path / "resumed")
    monkeypatch.setattr(interrupted, "_should_stop", lambda start: interrupted.step >= 2)
    interrupted.fit()
    resumed = quick_trainer(tmp_path / "resumed", resume=True)
    assert resumed.step == 2
    resumed.fit()
    assert resumed.step == 4
    straight, _ = read_checkpoint(tmp_path / "straight" / "model.safetensors")
    again, _ = read_checkpoint(tmp_path / "resumed" / "model.safetensors")
    for key, value in straight.items():
        torch.testing.assert_close(again[key], value, rtol=0, atol=0)
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["preset"] == "tiny"


def test_resuming_with_other_settings_is_refused(tmp_path, no_evaluation):
    quick_trainer(tmp_path / "run").fit()
    with pytest.raises(ValueError, match="different configuration"):
        Trainer(replace(SMALL, lr=1e-4), tmp_path / "run", resume=True, progress=False)


def test_two_processes_end_with_identical_weights(tmp_path):
    """torchrun, 2 CPU processes, gloo: DDP keeps the replicas equal."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(worker), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["step"] == rank1["step"] == 3
    assert rank0["seen"] != rank1["seen"]  # the sampler gave them different scenes
    for key, value in rank0["model"].items():
        assert torch.equal(rank1["model"][key], value), key
    assert (tmp_path / "run" / "summary.json").exists()  # rank 0 wrote the files

