"""SAM with a text prompt (SAM §7.5): the text token in the prompt encoder, its training as the
paper did it (the CLIP image embedding of the object as the first interaction), the predictor's
``text=``, the CLIP checkpoint files and the evaluation of text prompts."""

import copy
import json

import numpy as np
import pytest
import torch

from samteach import SamPredictor, build_sam
from samteach.checkpoint import WEIGHTS_DIR
from samteach.config import get_config, with_text_prompts
from samteach.data import make_scene
from samteach.text import TinyClip, TinyClipConfig, contrastive_loss, object_crop
from samteach.text.clip import load_clip, save_clip
from samteach.text.pairs import MIN_OBJECT_SHARE, scene_pairs
from samteach.training import TrainConfig
from samteach.training.step import interactive_step, text_first_prompts
from samteach.training.trainer import Trainer

D = 16  # CLIP width of the small test CLIP


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return TinyClip(TinyClipConfig(image_size=16, image_width=4, text_width=16, text_layers=1,
                                   embed_dim=D)).eval()


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(1)
    model = build_sam(with_text_prompts(get_config("tiny"), D))
    for p in model.prompt_encoder.text_projection.parameters():  # not the zero-ish init
        torch.nn.init.normal_(p, std=0.5)
    return model


# ---------------------------------------------------------------- the loss and the pairs
def test_positives_spread_the_answer_over_every_true_caption():
    g = torch.Generator().manual_seed(0)
    images, texts = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    scale = torch.tensor(2.0)
    eye = torch.eye(4, dtype=torch.bool)
    torch.testing.assert_close(contrastive_loss(images, texts, scale, eye),
                               contrastive_loss(images, texts, scale))  # CLIP's when distinct
    positives = eye.clone()
    positives[0, 1] = positives[1, 0] = True  # captions 0 and 1 are both true of crops 0 and 1
    logits = torch.nn.functional.normalize(images, dim=-1) @ torch.nn.functional.normalize(
        texts, dim=-1).T * scale.exp()
    target = positives.float() / positives.float().sum(1, keepdim=True)  # symmetric here
    rows = -(target * logits.log_softmax(1)).sum(1).mean()
    cols = -(target * logits.T.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(contrastive_loss(images, texts, scale, positives),
                               (rows + cols) / 2)
    with pytest.raises(ValueError, match="true diagonal"):
        contrastive_loss(images, texts, scale, torch.zeros(4, 4, dtype=torch.bool))


def test_scene_pairs_keep_the_large_enough_objects_with_all_their_captions():
    from samteach.text import instance_captions

    record = make_scene(3, 128)
    pairs = scene_pairs(record, 16, torch.Generator().manual_seed(0))
    areas = record.masks.sum((1, 2))
    assert pairs.instances == [i for i, a in enumerate(areas) if a >= MIN_OBJECT_SHARE * 128 ** 2]
    assert 0 < len(pairs) < len(record)  # this scene has small objects too
    assert pairs.crops.shape == (len(pairs), 3, 16, 16)
    assert pairs.captions == [instance_captions(record)[i] for i in pairs.instances]


# ---------------------------------------------------------------- the text token
def test_meta_models_have_no_text_parts_and_say_so():
    model = build_sam("tiny")
    assert not any("text" in k for k in model.state_dict())
    with pytest.raises(ValueError, match="no text prompts"):
        model.prompt_encoder.embed_text(torch.zeros(1, D))
    predictor = SamPredictor(model)
    predictor.set_image(make_scene(0, 128).image)
    with pytest.raises(ValueError, match="no text prompts"):
        predictor.predict(text="the flask")


def test_the_text_token_comes_after_the_others_padded_like_points(sam):
    pe = sam.prompt_encoder
    text = torch.randn(2, D)
    token = pe.embed_text(text)  # (2, C)
    alone, _ = pe(points=None, boxes=None, masks=None, text=text)
    pad, _ = pe(points=(torch.zeros(2, 0, 2), torch.zeros(2, 0, dtype=torch.long)), boxes=None,
                masks=None)
    torch.testing.assert_close(alone, torch.cat([pad, token[:, None]], 1))  # [pad, text]
    points = (torch.tensor([[[30.0, 40.0]]] * 2), torch.ones(2, 1, dtype=torch.long))
    clicks, _ = pe(points=points, boxes=None, masks=None)
    both, _ = pe(points=points, boxes=None, masks=None, text=text)
    torch.testing.assert_close(both, torch.cat([clicks, token[:, None]], 1))  # [click, pad, text]
    box = torch.tensor([[10.0, 10.0, 60.0, 70.0]] * 2)
    boxed, _ = pe(points=None, boxes=box, masks=None, text=text)
    assert boxed.shape[1] == 3  # [corner, corner, text]: no pad with a box
    with pytest.raises(ValueError, match=f"text must be \\(B, {D}\\)"):
        pe.embed_text(torch.zeros(2, D + 1))


def test_training_gives_a_text_prompt_the_tokens_the_predictor_gives(sam, clip):
    """The step's text prompt ([pad, text], spelled into the first prompt's two slots) decodes
    exactly as the predictor's text-alone prompt, and with clicks as text + clicks."""
    record = make_scene(4, 128)
    image = torch.from_numpy(record.image).permute(2, 0, 1)[None]
    masks = torch.from_numpy(record.masks[:3])[None]  # (1, K=3, H, W)
    config = TrainConfig(rounds=2, no_click_rounds=0, grad_rounds="all", text_share=1.0)
    text = (torch.randn(3, D), torch.tensor([True, False, True]))
    with torch.no_grad():
        out = interactive_step(sam, image, masks, config, torch.Generator().manual_seed(0),
                               record_rounds=True, text=text)
        first, second = out["rounds"]
        assert (first["labels"][[0, 2]] == -1).all()  # the text prompts' slots: padding
        predictor = SamPredictor(sam)
        predictor.set_torch_image(image.float(), (128, 128))
        _, iou, low = predictor.predict_torch(None, None, text=text[0][[0, 2]])
        torch.testing.assert_close(low, first["low_res"][[0, 2]], atol=1e-4, rtol=1e-4)
        # round 2: [pad, text, click] in training == click + text at the predictor
        pts, lbl = second["points"][[0, 2], 2:], second["labels"][[0, 2], 2:]
        _, _, low2 = predictor.predict_torch(pts, lbl, mask_input=second["mask_input"][[0, 2]],
                                             multimask_output=False, text=text[0][[0, 2]])
        torch.testing.assert_close(low2, second["low_res"][[0, 2]], atol=1e-4, rtol=1e-4)


def test_the_grounding_loss_is_added_only_when_asked(sam, clip):
    """``text_grounding`` > 0 adds the grounding loss of the text prompts to the paper's loss;
    0 (the default) leaves the step exactly as it was."""
    from samteach.training.losses import grounding_loss

    record = make_scene(4, 128)
    image = torch.from_numpy(record.image).permute(2, 0, 1)[None]
    masks = torch.from_numpy(record.masks[:3])[None]  # (1, K=3, H, W)
    text = (torch.randn(3, D), torch.tensor([True, False, True]))
    losses = {}
    for weight in (0.0, 2.0):
        config = TrainConfig(rounds=1, no_click_rounds=0, grad_rounds="all", text_share=1.0,
                             text_grounding=weight)
        with torch.no_grad():
            losses[weight] = interactive_step(sam, image, masks, config,
                                              torch.Generator().manual_seed(0), text=text)
    assert "grounding" not in losses[0.0] and losses[2.0]["grounding"] > 0
    with torch.no_grad():  # by hand: the two text prompts' tokens against their objects
        embedding = sam.image_encoder(sam.preprocess(image.float()))
        where = torch.nn.functional.adaptive_avg_pool2d(masks[0, [0, 2], None].float(), 16)
        expected = grounding_loss(sam.prompt_encoder.embed_text(text[0][[0, 2]]),
                                  embedding.expand(2, -1, -1, -1), where[:, 0])
    assert losses[2.0]["grounding"] == pytest.approx(float(expected), rel=1e-4)
    assert float(losses[2.0]["loss"]) == pytest.approx(
        float(losses[0.0]["loss"]) + 2.0 * float(expected), rel=1e-4)
    with pytest.raises(ValueError, match="text_grounding"):
        TrainConfig(text_grounding=-1.0)


def test_text_first_prompts_use_clip_image_embeddings_of_large_objects(clip):
    record = make_scene(3, 128)
    image = torch.from_numpy(record.image).permute(2, 0, 1)[None]
    masks = torch.from_numpy(record.masks)[None]  # every instance, small ones included
    embeddings, rows = text_first_prompts(clip, image, masks, 1.0,
                                          torch.Generator().manual_seed(0))
    large = torch.from_numpy(record.masks.sum((1, 2)) >= MIN_OBJECT_SHARE * 128 ** 2)
    assert torch.equal(rows, large)  # share 1: every large enough object, no small one
    assert torch.allclose(embeddings[rows].norm(dim=-1), torch.ones(int(rows.sum())))
    assert (embeddings[~rows] == 0).all()
    none, rows0 = text_first_prompts(clip, image, masks, 0.0)
    assert not rows0.any()


def test_captions_can_stand_for_some_text_prompts(clip):
    """Not the paper's recipe (``text_captions``): the training scenes carry, per mask, a caption
    that names its object, and a share of the text prompts is that caption's *text* embedding."""
    from samteach.text.captions import unique_captions
    from samteach.training.scenes import SceneMasks, training_scene

    with_words = SceneMasks(128, 5, first_seed=40, captions=True, generic_share=0.5)
    plain = SceneMasks(128, 5, first_seed=40, generic_share=0.5)
    for index in range(4):
        image, masks, size, said = with_words[index]
        assert torch.equal(masks, plain[index][1]) and len(plain[index]) == 3  # same masks
        record, _ = training_scene(40 + index, 128, generic_share=0.5)
        named = unique_captions(record)
        for caption, mask in zip(said.split("\n"), masks, strict=True):
            owner = [i for i in range(len(record)) if np.array_equal(
                record.masks[i], mask[:size[0], :size[1]].numpy())][0]
            assert caption in named[owner] if named[owner] else caption == ""
    record = make_scene(3, 128)
    image = torch.from_numpy(record.image).permute(2, 0, 1)[None]
    masks = torch.from_numpy(record.masks)[None]
    captions = [found[0] if found else "" for found in unique_captions(record)]
    embeddings, rows = text_first_prompts(clip, image, masks, 1.0,
                                          torch.Generator().manual_seed(0), captions, 1.0)
    spoken = [i for i in range(len(captions)) if rows[i] and captions[i]]
    assert spoken and len(spoken) < int(rows.sum())  # an unnamed large object stays an image
    torch.testing.assert_close(embeddings[spoken], clip.embed_text([captions[i] for i in spoken]))
    image_only, _ = text_first_prompts(clip, image, masks, 1.0, torch.Generator().manual_seed(0))
    others = [i for i in range(len(captions)) if rows[i] and not captions[i]]
    assert not torch.allclose(embeddings[spoken], image_only[spoken])
    assert torch.allclose(embeddings[others].norm(dim=-1), torch.ones(len(others)))
    with pytest.raises(ValueError, match="captions must be one per mask"):
        text_first_prompts(clip, image, masks, 1.0, None, captions[:-1], 1.0)


def test_a_text_run_fine_tunes_the_shipped_tiny_and_reloads(tmp_path, clip):
    save_clip(clip, tmp_path / "clip.safetensors")
    config = TrainConfig(max_steps=2, images_per_step=2, masks_per_image=2, rounds=2,
                         no_click_rounds=0, text_share=0.5, clip=str(tmp_path / "clip.safetensors"),
                         text_grounding=1.0, text_captions=0.5)
    trainer = Trainer(config, tmp_path / "run", eval_every=0, eval_scenes=1, progress=False,
                      init="tiny")
    shipped = build_sam("tiny", pretrained=True).state_dict()
    start = trainer.sam.state_dict()
    assert all(torch.equal(start[k], v) for k, v in shipped.items())  # warm start: all of tiny
    trainer.fit()
    model = build_sam(tmp_path / "run" / "model.safetensors")
    assert model.config.prompt_encoder.text_dim == D
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["text_share"] == 0.5 and summary["config"]["text_captions"] == 0.5


# ---------------------------------------------------------------- the predictor and files
def test_predict_with_text_alone_with_clicks_and_bad_text(sam, clip):
    predictor = SamPredictor(sam, text_encoder=clip)
    record = make_scene(5, 128)
    predictor.set_image(record.image)
    masks, scores, low = predictor.predict(text="the flask")
    assert masks.shape == (3, 128, 128) and scores.shape == (3,)
    masks, _, _ = predictor.predict(np.array([[40, 50]]), np.array([1]), text="the flask",
                                    multimask_output=False)
    assert masks.shape == (1, 128, 128)
    embedding = clip.embed_text("the flask")[0]
    same, _, _ = predictor.predict(np.array([[40, 50]]), np.array([1]), text=embedding,
                                   multimask_output=False)
    assert np.array_equal(same, masks)  # words or their embedding: one prompt
    with pytest.raises(ValueError, match="holds no word"):
        predictor.predict(text="  ")
    with pytest.raises(ValueError, match="does not know 'giraffe'"):
        predictor.predict(text="the giraffe")
    with pytest.raises(TypeError, match="text must be a string"):
        predictor.predict(text=3)
    with pytest.raises(ValueError, match=r"\(D,\) tensor"):
        predictor.predict(text=torch.zeros(1, D))


def test_grounding_is_the_cosine_map_and_its_peak_stays_inside_the_image():
    from samteach.text.grounding import grounding_map, peak_location

    g = torch.Generator().manual_seed(0)
    tokens, embeddings = torch.randn(2, 8, generator=g), torch.randn(2, 8, 3, 4, generator=g)
    by_hand = torch.nn.functional.cosine_similarity(tokens[:, :, None, None], embeddings, dim=1)
    torch.testing.assert_close(grounding_map(tokens, embeddings), by_hand)
    grounding = torch.zeros(3, 4)
    grounding[2, 3], grounding[1, 2] = 1.0, 0.5
    assert peak_location(grounding) == (2, 3)
    assert peak_location(grounding, valid=(2, 3)) == (1, 2)  # row 2 and column 3 are padding


def test_text_click_clicks_where_the_words_point(sam, clip):
    predictor = SamPredictor(sam, text_encoder=clip)
    image = make_scene(5, 128).image[:, :100]  # 128 x 100: the embedding's last columns pad
    predictor.set_image(image)
    grounding, point = predictor.ground_text("the flask")
    assert grounding.shape == (16, 16) and point.shape == (1, 2)
    masks, scores, _ = predictor.predict(text="the flask", text_click=True)
    same, same_scores, _ = predictor.predict(point, np.array([1]), text="the flask")
    assert np.array_equal(masks, same) and np.array_equal(scores, same_scores)
    # Plant the peak: nearly the token's direction at row 5, column 3 (pixels 24-32 across,
    # 40-48 down), and exactly it in the padding (column 14: past the 100 pixels), ignored.
    token = sam.prompt_encoder.embed_text(clip.embed_text("the flask"))[0].detach()
    predictor.features = predictor.features.clone()
    predictor.features[0, :, 5, 3] = token + 0.1 * token.norm() * torch.randn(
        token.shape, generator=torch.Generator().manual_seed(0)) / token.numel() ** 0.5
    predictor.features[0, :, 2, 14] = token
    np.testing.assert_allclose(predictor.ground_text("the flask")[1], [[28.0, 44.0]])
    with pytest.raises(ValueError, match="text_click adds the model's own click"):
        predictor.predict(np.array([[40, 50]]), np.array([1]), text="the flask", text_click=True)
    with pytest.raises(ValueError, match="text_click adds the model's own click"):
        predictor.predict(text_click=True)


def test_training_clicks_where_the_predictor_clicks_for_itself(sam, clip):
    """``text_click``: the own click a text prompt gets in training is the click
    ``predict(text_click=True)`` makes at inference -- same map, same padded-image rule."""
    from samteach.training.step import own_clicks, preprocess_batch

    record = make_scene(5, 128)
    image = record.image[:, :100]  # 128 x 100, padded to the 128 square
    predictor = SamPredictor(sam, text_encoder=clip)
    predictor.set_image(image)
    square = np.zeros((128, 128, 3), np.uint8)
    square[:, :100] = image
    images = torch.from_numpy(square).permute(2, 0, 1)[None]
    sizes = torch.tensor([[128, 100]])
    words = clip.embed_text(["the flask", "the cap", "the liquid"])  # (3, D)
    tokens = sam.prompt_encoder.embed_text(words)
    with torch.no_grad():
        embeddings = sam.image_encoder(preprocess_batch(sam, images, sizes))
    torch.testing.assert_close(embeddings, predictor.features)
    rows = torch.tensor([True, False, True])
    points, labels = torch.zeros(3, 2, 2), torch.full((3, 2), -1)
    labels[1] = torch.tensor([1, -1])
    new_points, new_labels = own_clicks((tokens, rows), embeddings, points, labels, 1.0,
                                        torch.Generator().manual_seed(0), sizes, 128)
    for row in (0, 2):
        expected = predictor.ground_text(words[row])[1][0]
        np.testing.assert_allclose(new_points[row, 0].numpy(), expected, rtol=1e-6)
        assert new_labels[row].tolist() == [1, -1]  # [own click, text's slot]
    assert torch.equal(new_points[1], points[1]) and torch.equal(new_labels[1], labels[1])
    kept = own_clicks((tokens, rows), embeddings, points, labels, 0.0, None, sizes, 128)
    assert torch.equal(kept[0], points) and torch.equal(kept[1], labels)
    config = TrainConfig(rounds=1, no_click_rounds=0, text_share=1.0, text_click=1.0)
    with torch.no_grad():
        masks = torch.zeros(1, 3, 128, 128, dtype=torch.bool)
        inside = record.masks[:, :, :100]
        masks[0, :, :, :100] = torch.from_numpy(inside[inside.any((1, 2))][:3])
        first = interactive_step(sam, images, masks,
                                 config, torch.Generator().manual_seed(0), record_rounds=True,
                                 input_sizes=sizes, text=(words, rows))["rounds"][0]
    assert first["labels"][:, 0].tolist() == [1, 1, 1]  # row 1: a first point; 0 and 2: own
    assert (first["labels"][[0, 2], 1] == -1).all()
    with pytest.raises(ValueError, match="text_click"):
        TrainConfig(text_click=1.5)


def test_clip_files_round_trip_and_refuse_what_they_are_not(tmp_path, clip):
    save_clip(clip, tmp_path / "c.safetensors")
    loaded = load_clip(tmp_path / "c.safetensors")
    assert loaded.config == clip.config and loaded.tokenizer.words == clip.tokenizer.words
    for name, value in clip.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)
    with pytest.raises(ValueError, match="no shipped CLIP named 'nope'"):
        load_clip("nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="not a samteach TinyClip"):
        load_clip(tmp_path / "bad.safetensors")


def test_clip_chooses_among_sams_proposals_and_clicks_the_centre():
    """:mod:`samteach.text.choose`: the mask whose crops are nearest the words wins, SAM's
    predicted IoU breaks near-ties, the click is the chosen mask's centre (RITM's first)."""
    from samteach.evaluation.clicker import suggest_click
    from samteach.text.choose import GROUNDING_WEIGHT, QUALITY_WEIGHT, Proposals

    masks = np.zeros((3, 20, 30), dtype=bool)
    masks[0, 2:8, 2:8], masks[1, 10:19, 12:29], masks[2, 0:4, 20:30] = True, True, True
    words = torch.tensor([1.0, 0.0, 0.0])
    crops = torch.nn.functional.normalize(torch.tensor(
        [[[0.2, 1.0, 0.0], [1.0, 0.1, 0.0], [0.0, 0.0, 1.0]],
         [[0.3, 1.0, 0.0], [1.0, 0.0, 0.2], [0.0, 1.0, 0.0]]]), dim=-1)  # (2 views, 3, D)
    found = Proposals(masks, np.array([0.9, 0.5, 0.9]), crops)
    cosine = (crops @ words).mean(0).numpy()
    np.testing.assert_allclose(found.scores(words), cosine + QUALITY_WEIGHT * found.quality,
                               rtol=1e-6)
    point, chosen = found.choose(words)
    centre = suggest_click(masks[1], np.zeros_like(masks[1]))
    assert chosen == 1 and point.tolist() == [[centre.x, centre.y]]
    tie = Proposals(masks, np.array([0.2, 0.9, 0.3]), crops[:, [1, 1, 1]])
    assert tie.choose(words)[1] == 1  # CLIP sees three alike: the best predicted IoU wins
    none = Proposals(masks[:0], np.zeros(0), crops[:, :0])
    assert none.choose(words) == (pytest.approx(np.array([[14.5, 9.5]])), None)
    with pytest.raises(ValueError, match=r"words must be a \(3,\) CLIP text embedding"):
        found.scores(torch.zeros(4))
    # the text token's grounding votes too: its mean inside each mask, GROUNDING_WEIGHT of it
    grounding = np.zeros((20, 30))
    grounding[0:4, 20:30] = 1.0  # the words point at mask 2 alone
    np.testing.assert_allclose(found.scores(words, grounding),
                               found.scores(words) + GROUNDING_WEIGHT * np.array([0, 0, 1.0]))
    assert tie.choose(words, grounding)[1] == 2  # CLIP sees three alike: where SAM points wins
    with pytest.raises(ValueError, match=r"grounding must be the \(20, 30\) map"):
        found.scores(words, np.zeros((4, 4)))


def test_the_grounding_map_is_scaled_up_to_the_image_as_masks_are(sam, clip):
    from samteach.text.choose import pixel_grounding

    predictor = SamPredictor(sam, text_encoder=clip)
    image = make_scene(5, 128).image[:, :96]  # not square: the padding is cropped away
    predictor.set_image(image)
    grid = predictor.ground_text("the flask")[0]  # (h, w) over the padded input
    pixels = pixel_grounding(predictor, grid)
    assert pixels.shape == image.shape[:2]
    expected = sam.postprocess_masks(torch.from_numpy(grid)[None, None], predictor.input_size,
                                     predictor.original_size)[0, 0]
    np.testing.assert_allclose(pixels, expected.detach().numpy(), rtol=1e-6)


def test_propose_embeds_each_mask_as_clip_was_trained_to_see_it():
    from samteach.text.choose import propose

    record = make_scene(5, 128)
    sam, clip = build_sam("tiny", pretrained="tiny_text"), load_clip("tiny_clip")
    predictor = SamPredictor(sam, text_encoder=clip)
    found = propose(predictor, record.image)
    n = len(found.masks)
    assert found.masks.shape == (n, 128, 128) and found.quality.shape == (n,) and n > 0
    assert found.crops.shape == (2, n, clip.config.embed_dim)
    assert found.masks.reshape(n, -1).any(1).all()
    torch.testing.assert_close(found.crops.norm(dim=-1), torch.ones(2, n))
    image = torch.from_numpy(record.image).permute(2, 0, 1)
    for view, zero_outside in enumerate((0.0, 1.0)):  # box grown 1.5x; surroundings, then none
        crop = object_crop(image, torch.from_numpy(found.masks[0]), clip.config.image_size,
                           None, (1.5, 1.5), zero_outside)
        torch.testing.assert_close(found.crops[view, 0], clip.embed_images(crop[None])[0])
    fresh = SamPredictor(sam)
    fresh.set_image(record.image)
    torch.testing.assert_close(predictor.features, fresh.features)  # its image is set
    point, chosen = found.choose(clip.embed_text("the flask")[0])
    assert found.masks[chosen][int(point[0, 1]), int(point[0, 0])]  # a click inside its mask


def test_evaluate_text_scores_named_objects(sam, clip):
    from samteach.text.evaluate import HITS, TEXT_FIGURES, evaluate_text

    result = evaluate_text(sam, clip, n_scenes=2, progress=False)
    assert result["all"]["samples"] == result["lab"]["samples"] + result["generic"]["samples"] > 0
    for name in (*TEXT_FIGURES, *HITS):
        assert 0 <= result["all"][name] <= 1
    assert set(HITS.values()) <= set(TEXT_FIGURES)


def test_the_clip_command_trains_scores_and_refuses_bad_flags(tmp_path, capsys):
    from samteach.text.train import main
    from samteach.utils.cli import run

    summary = main(["--steps", "2", "--scenes", "2", "--eval-scenes", "1", "--no-progress",
                    "--out", str(tmp_path / "clip")])
    assert 0 <= summary["retrieval"]["top1"] <= 1 and summary["retrieval"]["crops"] > 0
    assert load_clip(tmp_path / "clip" / "model.safetensors").config == TinyClipConfig()
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(["--steps", "2", "--out", str(tmp_path / "clip")])
    small = main(["--steps", "1", "--scenes", "2", "--eval-scenes", "1", "--no-progress",
                  "--image-size", "16", "--image-width", "8", "--out", str(tmp_path / "small")])
    assert load_clip(tmp_path / "small" / "model.safetensors").config == TinyClipConfig(
        image_size=16, image_width=8)
    assert small["config"]["model"]["image_width"] == 8  # the JSON records the towers' sizes
    for argv, named in ((["--steps", "0"], "--steps must"), (["--scenes", "x"], "--scenes"),
                        (["--lr", "-1"], "--lr must"), (["--image-width", "0"], "--image-width"),
                        (["--image-size", "-3"], "--image-size")):
        with pytest.raises(SystemExit) as stop:
            run(main, [*argv, "--out", str(tmp_path / "other")])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], err
    assert not (tmp_path / "other").exists()


def test_a_locked_image_run_tunes_only_the_text_tower(tmp_path, capsys):
    """LiT (--lock-image): the image embeddings a SAM was trained on stay bit for bit; the
    text tower learns; without --init the command refuses."""
    from samteach.text.train import main
    from samteach.utils.cli import run

    start = tmp_path / "start"
    main(["--steps", "2", "--scenes", "2", "--eval-scenes", "1", "--no-progress",
          "--out", str(start)])
    lit = tmp_path / "lit"
    main(["--steps", "3", "--scenes", "2", "--eval-scenes", "1", "--no-progress", "--lr", "1e-2",
          "--init", str(start / "model.safetensors"), "--lock-image", "--out", str(lit)])
    before, after = (load_clip(d / "model.safetensors").state_dict() for d in (start, lit))
    image_keys = [k for k in before if k.split(".")[0] in TinyClip.IMAGE_SIDE]
    assert image_keys and all(torch.equal(before[k], after[k]) for k in image_keys)
    assert not torch.equal(before["text_projection.weight"], after["text_projection.weight"])
    with pytest.raises(SystemExit) as stop:
        run(main, ["--lock-image", "--out", str(tmp_path / "other")])
    assert stop.value.code == 2
    assert "--lock-image" in capsys.readouterr().err and not (tmp_path / "other").exists()


# ---------------------------------------------------------------- a real CLIP plugs in
@pytest.fixture
def hf_clip_folder(tmp_path_factory, monkeypatch):
    """A tiny randomly initialised Hugging Face CLIP and a word-level tokenizer, saved to a
    folder as a downloaded model would be: nothing is fetched."""
    import sys

    # tests/official.py may have put a stand-in torchvision (no __spec__) in sys.modules for
    # Meta's code; transformers probes torchvision with find_spec, which refuses such a module.
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    from samteach.text import caption_words

    words = ["<pad>", "<unk>", "<s>", "</s>", *caption_words()]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)},
                                           unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer,
                                                     pad_token="<pad>", unk_token="<unk>")
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=24)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hf_clip")
    transformers.CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_hugging_face_clip_trains_the_text_token_and_prompts_it(hf_clip_folder, tmp_path):
    from samteach.text import HFClip

    clip = load_clip(f"hf:{hf_clip_folder}")
    assert isinstance(clip, HFClip) and clip.config.embed_dim == 24
    texts = clip.embed_text(["the blue liquid", "cap"])
    crops = clip.embed_images(torch.randint(0, 256, (3, 3, 20, 20)))
    assert texts.shape == (2, 24) and crops.shape == (3, 24)
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(2))
    with pytest.raises(ValueError, match="non-empty words"):
        clip.embed_text(" ")
    config = TrainConfig(max_steps=1, images_per_step=2, masks_per_image=2, rounds=2,
                         no_click_rounds=0, text_share=1.0, clip=f"hf:{hf_clip_folder}")
    Trainer(config, tmp_path / "run", eval_every=0, eval_scenes=1, progress=False,
            init="tiny").fit()
    model = build_sam(tmp_path / "run" / "model.safetensors")
    assert model.config.prompt_encoder.text_dim == 24
    predictor = SamPredictor(model, text_encoder=clip)
    predictor.set_image(make_scene(2, 128).image)
    masks, scores, _ = predictor.predict(text="the flask")
    assert masks.shape == (3, 128, 128)
    with pytest.raises(TypeError, match="get_text_features"):
        HFClip(torch.nn.Linear(2, 2), clip.tokenizer)


# ---------------------------------------------------------------- the session and the widget
def test_a_session_starts_from_words_and_corrects_with_clicks(sam, clip):
    from samteach.demo import PromptSession

    record = make_scene(5, 128)
    session = PromptSession(SamPredictor(sam, text_encoder=clip), record.image)
    first = session.set_text("the flask")
    assert len(first.masks) == 3 and session.text == "the flask"  # text alone: a first prompt
    assert session.choose_mask(1).chosen == 1 and session.text == "the flask"  # text kept
    first = session.choose_mask(first.chosen)
    second = session.add_point(40, 50)
    assert len(second.masks) == 1 and session.text == "the flask"  # the text stays
    expected, _, _ = session.predictor.predict(
        np.array([[40.0, 50.0]]), np.array([1]), multimask_output=False, text="the flask",
        mask_input=first.logits[first.chosen][None])
    assert np.array_equal(second.masks, expected)
    with pytest.raises(ValueError, match="does not know 'giraffe'"):
        session.set_text("the giraffe")
    assert session.text == "the flask" and session.prediction is second  # nothing changed
    session.undo()
    assert session.prediction is first
    assert session.set_text(None) is None and session.text is None and not session.mask.any()
    assert "text" not in repr(session)
    own = session.set_text("the flask", text_click=True)  # the model's own click comes too
    masks, _, _ = session.predictor.predict(text="the flask", text_click=True)
    assert np.array_equal(own.masks, masks) and session.labels.tolist() == [1]
    np.testing.assert_array_equal(session.points, session.predictor.ground_text("the flask")[1])
    session.add_point(40, 50, foreground=False)  # the own click stays, first of the clicks
    assert session.labels.tolist() == [1, 0] and session.text == "the flask"
    with pytest.raises(ValueError, match="before any click or box"):
        session.set_text("the bottle", text_click=True)
    session.undo()
    session.undo()
    assert session.prediction is None and not len(session.points)  # one undo: words and click
    picked = session.set_text("the flask", text_click="clip")  # where CLIP points instead
    from samteach.text.choose import clip_click, pixel_grounding, propose
    found = propose(session.predictor, session.image)
    words = clip.embed_text("the flask")[0]
    grounding = pixel_grounding(session.predictor, session.predictor.ground_text(words)[0])
    point, _ = found.choose(words, grounding)  # CLIP, SAM's predicted IoU and the grounding
    np.testing.assert_array_equal(clip_click(session.predictor, found, "the flask")[0], point)
    np.testing.assert_array_equal(session.points, point)
    masks, _, _ = session.predictor.predict(point, np.array([1]), text="the flask")
    assert np.array_equal(picked.masks, masks) and session.labels.tolist() == [1]
    with pytest.raises(TypeError, match="text_click must be False, True or 'map'"):
        session.set_text("the flask", text_click="peak")


def test_the_widget_has_a_text_box_for_text_models_only(sam, clip):
    from samteach.demo.widget import ClickDemo

    image = make_scene(5, 128).image
    plain = ClickDemo(build_sam("tiny"), image)
    assert plain.buttons.text_row.layout.display == "none"
    demo = ClickDemo(SamPredictor(sam, text_encoder=clip), image)
    assert demo.buttons.text_row.layout.display is None
    demo.buttons.text.value = "the flask"  # what Enter in the box sends
    assert demo.session.text == "the flask" and len(demo.session.prediction.masks) == 3
    assert "+ text “the flask”" in demo.status.value
    demo.buttons.text.value = "the giraffe"
    assert "giraffe" in demo.last_error and demo.session.text == "the flask"
    demo.buttons.undo.click()
    assert demo.session.text is None and demo.buttons.text.value == ""
    demo.buttons.text_click.value = "map"
    demo.buttons.text.value = "the flask"
    assert demo.session.text == "the flask" and demo.session.labels.tolist() == [1]
    np.testing.assert_array_equal(demo.session.points,
                                  demo.session.predictor.ground_text("the flask")[1])
    demo.buttons.reset.click()
    demo.buttons.text_click.value = "clip"  # the own click where CLIP points
    demo.buttons.text.value = "the bottle"
    assert demo.session.text == "the bottle" and demo.session.labels.tolist() == [1]
    from samteach.text.choose import clip_click

    point, _ = clip_click(demo.session.predictor, demo.session._proposals(), "the bottle")
    np.testing.assert_array_equal(demo.session.points, point)


# ---------------------------------------------------------------- shipping
def test_shipping_a_text_run_records_its_clip_and_text_figures(tmp_path, monkeypatch, clip):
    """A run trained with a CLIP file ships with the shipped CLIP of the same bytes named, and
    with its text figures (held-out and the subset the tests re-evaluate); the CLIP ships with
    its retrieval."""
    from samteach.text.train import ship_clip
    from samteach.training.__main__ import main as train_main

    monkeypatch.setattr("samteach.course.release.WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr("samteach.course.release.CHECK_SCENES", 1)
    monkeypatch.setattr("samteach.text.train.CLIP_DIR", tmp_path / "clips")
    monkeypatch.setattr("samteach.text.clip.CLIP_DIR", tmp_path / "clips")
    (tmp_path / "clip_run").mkdir()
    save_clip(clip, tmp_path / "clip_run" / "model.safetensors")
    (tmp_path / "clip_run" / "summary.json").write_text(json.dumps(
        {"command": "first", "init": None, "retrieval": {"top1": 0.5, "scenes_per_set": 1}}))
    clip_summary = ship_clip(tmp_path / "clip_run", "small_clip")
    assert clip_summary["retrieval_check"]["scenes_per_set"] == 1
    assert (tmp_path / "clips" / "small_clip.safetensors").is_file()
    # a warm restart from a shipped CLIP's file records how that one was made
    (tmp_path / "again").mkdir()
    save_clip(clip, tmp_path / "again" / "model.safetensors")
    (tmp_path / "again" / "summary.json").write_text(json.dumps(
        {"command": "second", "init": {"init": str(tmp_path / "clips" / "small_clip.safetensors")},
         "retrieval": {"top1": 0.5, "scenes_per_set": 1}}))
    assert ship_clip(tmp_path / "again", "other_clip")["init"]["command"] == "first"
    (tmp_path / "clips" / "other_clip.safetensors").unlink()
    (tmp_path / "clips" / "other_clip.json").unlink()
    summary = train_main(["--steps", "1", "--images", "1", "--masks", "2", "--rounds", "2",
                          "--init", "tiny", "--text-share", "1", "--clip",
                          str(tmp_path / "clip_run" / "model.safetensors"),
                          "--out", str(tmp_path / "run"), "--eval-every", "0", "--eval-scenes",
                          "1", "--no-progress", "--ship", "mine_text",
                          "--final-eval-scenes", "1"])
    assert summary["clip"]["name"] == "small_clip"
    assert summary["clip"]["trained_with"].endswith("model.safetensors")
    for key in ("text_evaluation", "text_evaluation_check"):
        assert summary[key]["all"]["samples"] > 0 and "hit" in summary[key]["all"]
    readme = (tmp_path / "weights" / "README.md").read_text()
    assert "| `mine_text` | all |" in readme  # the text table
    # after a change to the scenes, both are scored again in place: same scenes, same figures
    # here (nothing changed), the reason recorded; the weights untouched
    from samteach.course.release import reevaluate

    weights = (tmp_path / "weights" / "mine_text.safetensors").read_bytes()
    again = reevaluate("mine_text", "a test")
    assert again["reevaluated"] == ["a test"] and again["learning_curve"] == summary[
        "learning_curve"]
    for key in ("evaluation", "evaluation_check", "text_evaluation", "text_evaluation_check"):
        assert again[key] == summary[key]
    assert (tmp_path / "weights" / "mine_text.safetensors").read_bytes() == weights
    shipped_json = json.loads((tmp_path / "weights" / "mine_text.json").read_text())
    assert shipped_json["reevaluated"] == ["a test"]
    from samteach.text.train import reevaluate_clip

    clip_again = reevaluate_clip("small_clip", "a test")
    assert clip_again["retrieval_check"] == clip_summary["retrieval_check"]
    assert clip_again["retrieval"]["scenes_per_set"] == 1
    with pytest.raises(ValueError, match="no shipped weights named 'nothing'"):
        reevaluate("nothing", "a test")
    with pytest.raises(ValueError, match="no shipped CLIP named 'mine_text'"):
        reevaluate_clip("mine_text", "a test")
    with pytest.raises(ValueError, match="reason must say"):
        reevaluate("mine_text", " ")
    with pytest.raises(ValueError, match="is not shipped"):
        from samteach.course.release import shipped_clip

        shipped_clip(str(tmp_path / "nowhere.safetensors"))
    # a locked-image tuning of the shipped CLIP (new text side) stands for it; a new image
    # side does not
    tuned = copy.deepcopy(clip)
    with torch.no_grad():
        tuned.text_projection.weight.add_(1.0)
        save_clip(tuned, tmp_path / "lit.safetensors")
        assert shipped_clip(str(tmp_path / "lit.safetensors"))["same_image_side"] is True
        tuned.image_projection.bias.add_(1.0)
        save_clip(tuned, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="is not shipped"):
        shipped_clip(str(tmp_path / "other.safetensors"))


# ---------------------------------------------------------------- the shipped text weights
def test_the_shipped_clip_reproduces_its_retrieval():
    from samteach.course.release import CHECK_SCENES
    from samteach.text.clip import CLIP_DIR
    from samteach.text.train import retrieval

    info = json.loads((CLIP_DIR / "tiny_clip.json").read_text())
    assert "python -m samteach.text.train" in info["command"] and "--steps" in info["command"]
    check = info["retrieval_check"]
    assert check["scenes_per_set"] == CHECK_SCENES
    assert retrieval(load_clip("tiny_clip"), CHECK_SCENES) == pytest.approx(check, abs=0.01)


def test_the_shipped_text_model_reproduces_its_text_figures():
    from samteach.course.release import CHECK_SCENES
    from samteach.text.evaluate import evaluate_text

    info = json.loads((WEIGHTS_DIR / "tiny_text.json").read_text())
    assert info["clip"]["name"] == "tiny_clip" and info["config"]["text_share"] > 0
    model = build_sam("tiny", pretrained="tiny_text")
    result = evaluate_text(model, load_clip("tiny_clip"), CHECK_SCENES, progress=False)
    for kind, figures in info["text_evaluation_check"].items():
        assert result[kind]["samples"] == figures["samples"]
        for name, value in figures.items():
            assert result[kind][name] == pytest.approx(value, abs=0.01), (kind, name)


# Issue 16's bars are not met yet by the shipped text model and CLIP (see the issue's notes:
# the recipes tried and their figures). strict=True: the day they are met this test passes,
# pytest reports it, and the marker must go -- the bars are never lowered here.
@pytest.mark.xfail(strict=True, reason="issue 16 open: tiny_text and tiny_clip are below the "
                   "bars (weights/README.md, the issue's notes)")
def test_the_shipped_text_model_meets_the_bars():
    """Issue 16's bars on the recorded held-out figures (which the tests above reproduce on a
    subset): text hits the named object 80 % of the time, text alone reaches 0.85 of the
    model's one-click mIoU, text + 1 click at least its two-click mIoU; CLIP retrieval 0.80.
    Words are the only input whichever way the model is asked -- the paper's text token alone,
    or with the model's own click where the words point, or where CLIP points among SAM's
    proposals -- so one of the three ways must meet all three bars (never the best of each)."""
    from samteach.text.clip import CLIP_DIR

    figures = json.loads((WEIGHTS_DIR / "tiny_text.json").read_text())["text_evaluation"]["all"]
    retrieval = json.loads((CLIP_DIR / "tiny_clip.json").read_text())["retrieval"]["top1"]
    assert any(figures[hit] >= 0.80 and figures[first] >= 0.85 * figures["point@1"]
               and figures[then] >= figures["point@2"]
               for hit, first, then in (("hit", "text", "text+1"),
                                        ("peak_hit", "peak", "peak+1"),
                                        ("pick_hit", "pick", "pick+1")))
    assert retrieval >= 0.80
