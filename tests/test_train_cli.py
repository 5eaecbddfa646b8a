"""The command lines, the shipped checkpoints and the Trainer's guards against bad runs."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from samteach import build_sam
from samteach.checkpoint import WEIGHTS_DIR, read_checkpoint, shipped_weights
from samteach.evaluate import main as evaluate_main
from samteach.evaluation import HELD_OUT_SEED, HELD_OUT_SETS, evaluate_model
from samteach.train import main as train_main
from samteach.training import TrainConfig
from samteach.training.trainer import Trainer

SHIPPED = ("tiny", "tiny_single_round", "tiny_text")
SMALL = TrainConfig(images_per_step=1, masks_per_image=2, rounds=2, no_click_rounds=0,
                    warmup_steps=1, max_steps=4)


@pytest.mark.parametrize("kind", HELD_OUT_SETS)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_reproduces_its_figures(name, kind):
    """Evaluating a shipped model again gives the figures its JSON records (to +-0.01)."""
    info = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    check = info["evaluation_check"]
    assert check["first_seed"] == HELD_OUT_SEED
    model = build_sam("tiny", pretrained=name)
    figures = evaluate_model(model, check["scenes"], progress=False, kind=kind).figures()
    assert figures["samples"] == check[kind]["samples"]
    for key, value in figures.items():
        if key.startswith(("mIoU", "NoC")):
            assert value == pytest.approx(check[kind][key], abs=0.01), key


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_documents_its_run(name):
    info = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    assert "python -m samteach.train --preset tiny" in info["command"]
    assert "--steps" in info["command"] and "--minutes" not in info["command"]  # repeatable
    assert info["preset"] == "tiny" and info["seed"] == 0 and info["steps"] > 0
    assert info["wall_time_s"] > 0 and info["evaluation"]["scenes"] >= 100
    assert set(HELD_OUT_SETS) <= set(info["evaluation"])
    for kind in HELD_OUT_SETS:
        assert set(info["evaluation"][kind]["by_size"]) <= {"small", "medium", "large"}
    assert info["config"]["generic_share"] > 0  # trained on scenes of anything, not labs alone
    assert len(info["learning_curve"]) >= 2  # held-out figures along the way
    if name == "tiny_single_round":
        assert info["config"]["rounds"] == 1 and info["config"]["no_click_rounds"] == 0
    elif name == "tiny_text":  # tiny fine-tuned with text first prompts (text prompts, §7.5)
        assert info["init"]["init"] == "tiny" and info["config"]["text_share"] > 0
        # every part trained, with corrective clicks, captions and the grounding loss
        assert not info["config"]["freeze_encoder"] and info["config"]["rounds"] >= 2
        assert info["config"]["text_captions"] > 0 and info["config"]["text_grounding"] > 0
    else:
        assert info["config"]["rounds"] >= 9  # clicks keep helping up to 9 (SAM App. A)
    assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 10 * 2**20  # a few MB


def _shipped(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())["evaluation"]


# Issue 13's bars are not met by the shipped model: the issue was closed "blocked" after about
# six hours of CPU training, with the learning curves in its note. strict=True: the day a
# shipped model meets them this test passes, pytest reports it as a failure, and the marker
# must go -- the bar itself is never lowered here.
@pytest.mark.xfail(strict=True, reason="issue 13 blocked: the CPU-trained tiny is below the "
                   "bars (see its closing note and weights/README.md)")
def test_shipped_tiny_meets_the_course_bars():
    """The bars of the shipped model (issue 13), on its recorded held-out figures -- which
    test_shipped_checkpoint_reproduces_its_figures checks against the weights on a subset."""
    lab, generic = _shipped("tiny")["lab"], _shipped("tiny")["generic"]
    assert lab["mIoU@1"] >= 0.72 and lab["mIoU@3"] >= 0.85 and lab["mIoU@5"] >= 0.88
    assert lab["NoC@85"] <= 4
    assert generic["mIoU@1"] >= 0.80 and generic["mIoU@3"] >= 0.90


@pytest.mark.parametrize("kind", HELD_OUT_SETS)
def test_every_click_helps_the_shipped_tiny(kind):
    """mIoU@k never decreases from 1 to 9 clicks, on both held-out sets (issue 13)."""
    figures = _shipped("tiny")[kind]
    curve = [figures[f"mIoU@{k}"] for k in (1, 2, 3, 5, 9)]
    assert curve == sorted(curve), curve


# Measured on the shipped tiny: median IoU 0.92, worst 0.52 over the 12 images (the tiny shipped
# before issue 13: median 0.03, worst 0.00).
SIMPLE_MEDIAN, SIMPLE_MIN = 0.85, 0.45


def test_shipped_tiny_segments_a_flat_shape_from_one_click(trained_tiny):
    """Issue 13's first complaint: a click at the centre of the largest of a few flat shapes on
    a gradient (160 x 120 px, padded like any photo) gave a blotchy part of it (IoU 0.00-0.50).
    The shipped model's most confident mask must now be that shape on most such images."""
    from samteach import SamPredictor
    from samteach.data import GenericSceneConfig, make_generic_scene
    from samteach.evaluation import Clicker, iou

    predictor, ious = SamPredictor(trained_tiny), []
    for seed in range(HELD_OUT_SEED, HELD_OUT_SEED + 12):
        scene = make_generic_scene(seed, (120, 160), GenericSceneConfig.simple())
        largest = scene.masks[scene.masks.sum(axis=(1, 2)).argmax()]
        robot = Clicker(largest)
        robot.make_next_click(np.zeros_like(largest))  # the first click: the shape's centre
        predictor.set_image(scene.image)
        masks, scores, _ = predictor.predict(robot.points, robot.labels)
        ious.append(iou(masks[scores.argmax()], largest))
    assert np.median(ious) >= SIMPLE_MEDIAN and min(ious) >= SIMPLE_MIN, np.round(ious, 3)


def test_interactive_training_beats_single_round_training():
    for kind in HELD_OUT_SETS:
        tiny, single = _shipped("tiny")[kind], _shipped("tiny_single_round")[kind]
        assert tiny["mIoU@3"] > single["mIoU@3"] and tiny["NoC@85"] < single["NoC@85"], kind


def test_pretrained_loads_the_shipped_weights():
    assert set(SHIPPED) <= set(shipped_weights())
    model = build_sam("tiny", pretrained=True)
    stored, config = read_checkpoint(shipped_weights("tiny"))
    assert config is not None and config.name == "tiny"
    for key, value in model.state_dict().items():
        assert torch.equal(value, stored[key]), key


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(config="tiny", pretrained="no_such_weights"), "no shipped weights named 'no_such"),
    (dict(config=None, pretrained=True), "pretrained=True needs a preset name"),
    (dict(config="tiny", pretrained=True, checkpoint="x.safetensors"), "either checkpoint or"),
])
def test_bad_pretrained_requests(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_sam(**kwargs)


def test_evaluate_cli_prints_the_table(capsys, tmp_path):
    plot = tmp_path / "curve.png"
    results = evaluate_main(["--pretrained", "tiny", "--scenes", "2", "--max-clicks", "9",
                             "--plot", str(plot)])
    out = capsys.readouterr().out
    for name in ("mIoU@1", "mIoU@2", "mIoU@3", "mIoU@5", "mIoU@9", "NoC@85", "NoC@90", "NoF@90"):
        assert name in out
    assert "9 clicks each" in out and "== lab scenes ==" in out and "== generic scenes ==" in out
    assert "by instance size" in out and "small" in out
    assert set(results) == set(HELD_OUT_SETS)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.tmp"))
    evaluate_main(["--pretrained", "tiny", "--scenes", "1", "--max-clicks", "3"])
    out = capsys.readouterr().out
    assert "mIoU@3" in out and "mIoU@5" not in out  # only the clicks that were played


def test_train_cli_trains_and_ships(tmp_path, monkeypatch):
    """--steps trains, writes the run folder, and --ship copies it with fresh figures."""
    monkeypatch.setattr("samteach.course.release.WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr("samteach.course.release.CHECK_SCENES", 1)
    out = tmp_path / "run"
    summary = train_main(["--steps", "2", "--images", "1", "--masks", "2", "--rounds", "2",
                          "--out", str(out), "--eval-every", "0", "--eval-scenes", "1",
                          "--no-progress", "--ship", "mine", "--final-eval-scenes", "1"])
    assert summary["steps"] == 2 and summary["config"]["rounds"] == 2
    assert "python -m samteach.train --steps 2 " in summary["command"]
    assert (out / "model.safetensors").exists() and (out / "log.jsonl").exists()
    shipped = json.loads((tmp_path / "weights" / "mine.json").read_text())
    assert shipped["evaluation"]["scenes"] == 1
    for kind in HELD_OUT_SETS:
        assert "mIoU@3" in shipped["evaluation"][kind] and "by_size" in shipped["evaluation"][kind]
        assert "mIoU@3" in shipped["evaluation_check"][kind]
    assert "| `mine` | generic |" in (tmp_path / "weights" / "README.md").read_text()
    model = build_sam(None, checkpoint=tmp_path / "weights" / "mine.safetensors")
    assert model.image_encoder.img_size == 128


def test_ctrl_c_keeps_the_run_and_resume_finishes_it(tmp_path, no_evaluation):
    trainer = Trainer(SMALL, tmp_path, eval_every=0, progress=False)
    step = trainer._train_step

    def interrupt_at_two(images, masks, input_sizes, captions=None):
        if trainer.step == 2:
            raise KeyboardInterrupt
        return step(images, masks, input_sizes, captions)

    trainer._train_step = interrupt_at_two
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    resumed = Trainer(SMALL, tmp_path, resume=True, eval_every=0, progress=False)
    assert resumed.step == 2
    resumed.fit()
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 4


class _EmptyMasks(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, index):
        return torch.zeros(3, 128, 128, dtype=torch.uint8), torch.zeros(2, 128, 128, dtype=bool)


class _WrongSize(_EmptyMasks):
    def __getitem__(self, index):
        return torch.zeros(3, 64, 64, dtype=torch.uint8), torch.ones(2, 64, 64, dtype=bool)


@pytest.mark.parametrize("dataset, pattern", [
    (_EmptyMasks(), "dataset has no masks to train on"),
    (_WrongSize(), r"dataset images must be \(3, 128, 128\) uint8"),
    (torch.utils.data.TensorDataset(torch.zeros(0, 3)), "dataset is empty"),
])
def test_bad_datasets_are_refused_before_training(tmp_path, dataset, pattern):
    with pytest.raises(ValueError, match=pattern):
        Trainer(SMALL, tmp_path, dataset=dataset, progress=False)
    assert not (tmp_path / "state.pt").exists()


def test_captions_are_refused_with_a_dataset_that_has_none(tmp_path):
    class Usable(_EmptyMasks):
        def __getitem__(self, index):
            return torch.zeros(3, 128, 128, dtype=torch.uint8), torch.ones(2, 128, 128, dtype=bool)

    config = replace(SMALL, text_share=0.5, text_captions=0.5)
    with pytest.raises(ValueError, match="text_captions needs captions"):
        Trainer(config, tmp_path, dataset=Usable(), progress=False)


@pytest.mark.parametrize("argv, pattern", [
    (["--rounds", "0"], "rounds must be a positive int"),
    (["--lr", "-0.1"], "lr must be a positive learning rate"),
])
def test_train_cli_refuses_bad_settings(tmp_path, argv, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_main(["--steps", "1", "--out", str(tmp_path / "run"), *argv])
    assert not (tmp_path / "run").exists()


def test_trainer_refuses_a_bad_time_budget(tmp_path):
    with pytest.raises(ValueError, match="minutes must be a positive time budget"):
        Trainer(SMALL, tmp_path, minutes=0, progress=False)


@pytest.mark.parametrize("kwargs", [dict(stop_at=0), dict(stop_at=5), dict(stop_at=2.0),
                                    dict(stop_at=2, minutes=1.0)])
def test_trainer_refuses_a_bad_stop_step(tmp_path, kwargs):
    with pytest.raises(ValueError, match="stop_at must be a step of the schedule"):
        Trainer(SMALL, tmp_path, progress=False, **kwargs)


def test_the_last_step_is_evaluated_once(tmp_path):
    """A run whose last step falls on --eval-every logs that evaluation once, not twice."""
    summary = train_main(["--steps", "2", "--rounds", "2", "--no-click-rounds", "0", "--images",
                          "1", "--masks", "1", "--warmup", "1", "--eval-every", "2",
                          "--eval-scenes", "1", "--no-progress", "--out", str(tmp_path)])
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2]
    assert summary["evaluation"] == json.loads(lines[0])


def test_a_run_cut_short_keeps_the_schedule_of_its_full_length(tmp_path):
    """--stop-at ends the run, but the learning rate is the one of the full --steps schedule;
    the recorded command is the one that repeats the run (a --resume is not part of it)."""
    from samteach.training import lr_at

    argv = ["--steps", "6", "--stop-at", "3", "--rounds", "2", "--no-click-rounds", "0",
            "--images", "1", "--masks", "1", "--warmup", "1", "--eval-every", "0",
            "--eval-scenes", "1", "--no-progress", "--out", str(tmp_path / "run")]
    train_main(argv[:-2] + ["--stop-at", "1", "--out", str(tmp_path / "run")])
    summary = train_main(argv + ["--resume"])
    assert summary["steps"] == 3 and summary["schedule_steps"] == 6
    assert "--resume" not in summary["command"] and "--stop-at 3" in summary["command"]
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    lr = state["optimizer"]["param_groups"][0]["lr"]
    config = TrainConfig(rounds=2, no_click_rounds=0, images_per_step=1, masks_per_image=1,
                         warmup_steps=1, max_steps=6)
    assert lr == pytest.approx(lr_at(2, config)) and lr != pytest.approx(lr_at(2, replace(
        config, max_steps=3)))



def test_the_rest_of_a_run_starts_from_its_weights(tmp_path):
    """--start-at continues a schedule from the weights a --stop-at run shipped: the steps, the
    scenes and the learning rate of the full schedule, a new optimiser warmed up again."""
    from samteach.training import lr_at

    argv = ["--steps", "6", "--rounds", "2", "--no-click-rounds", "0", "--images", "1",
            "--masks", "1", "--warmup", "2", "--eval-every", "0", "--eval-scenes", "1",
            "--no-progress"]
    train_main(argv + ["--stop-at", "3", "--out", str(tmp_path / "first")])
    weights = tmp_path / "first" / "model.safetensors"
    summary = train_main(argv + ["--start-at", "3", "--stop-at", "4", "--init", str(weights),
                                 "--out", str(tmp_path / "rest")])
    assert summary["steps"] == 4 and summary["start_at"] == 3 and "--start-at 3" in summary[
        "command"]
    state = torch.load(tmp_path / "rest" / "state.pt", weights_only=True)
    assert state["step"] == 4 and state["optimizer"]["state"][0]["step"] == 1  # one step taken
    config = TrainConfig(rounds=2, no_click_rounds=0, images_per_step=1, masks_per_image=1,
                         warmup_steps=2, max_steps=6)
    lr = state["optimizer"]["param_groups"][0]["lr"]  # step 3, the first of the new optimiser
    assert lr == pytest.approx(lr_at(3, config) / 2)


def test_the_rest_of_a_shipped_run_ships_as_one_run(tmp_path, monkeypatch):
    """--start-at from shipped weights, shipped under their name: one record of both runs (the
    earlier command, the joined learning curve, the time of both); another name is refused."""
    monkeypatch.setattr("samteach.course.release.WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr("samteach.course.release.CHECK_SCENES", 1)
    argv = ["--steps", "4", "--rounds", "2", "--no-click-rounds", "0", "--images", "1",
            "--masks", "1", "--warmup", "1", "--eval-every", "2", "--eval-scenes", "1",
            "--no-progress", "--final-eval-scenes", "1"]
    first = train_main(argv + ["--stop-at", "2", "--out", str(tmp_path / "a"), "--ship", "m"])
    rest = argv + ["--start-at", "2", "--init", str(tmp_path / "weights" / "m.safetensors")]
    with pytest.raises(ValueError, match="ship it under the name of the weights its --init"):
        train_main(rest + ["--out", str(tmp_path / "b"), "--ship", "other"])
    both = train_main(rest + ["--out", str(tmp_path / "c"), "--ship", "m"])
    assert both["earlier_runs"] == [{key: first[key] for key in (
        "command", "steps", "wall_time_s", "threads", "init")}]
    assert [entry["step"] for entry in both["learning_curve"]] == [2, 4]
    assert both["wall_time_s"] == pytest.approx(first["wall_time_s"] + both["run_wall_time_s"],
                                                abs=0.1)
    assert json.loads((tmp_path / "weights" / "m.json").read_text())["steps"] == 4
    assert "It continues the run of `m` stopped at step 2" in (
        tmp_path / "weights" / "README.md").read_text()


@pytest.mark.parametrize("kwargs", [dict(start_at=2), dict(start_at=0, init="tiny"),
                                    dict(start_at=4, init="tiny"),
                                    dict(start_at=3, stop_at=3, init="tiny"),
                                    dict(start_at=2, init="tiny", minutes=1.0)])
def test_trainer_refuses_a_bad_start_step(tmp_path, kwargs):
    with pytest.raises(ValueError, match="start_at must be a step of the schedule"):
        Trainer(SMALL, tmp_path, progress=False, **kwargs)


def test_weights_readme_is_made_from_the_json_files():
    from samteach.course.release import weights_readme

    assert (WEIGHTS_DIR / "README.md").read_text() == weights_readme(WEIGHTS_DIR)
