"""Text prompting's pieces so far: the paper's object crop (App. D.5) and CLIP's loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from samteach.text import contrastive_loss, object_crop


def _image(H: int = 64, W: int = 64) -> torch.Tensor:
    return torch.arange(3 * H * W, dtype=torch.float32).reshape(3, H, W) % 251 + 1  # no zeros


def _mask(H, W, rows, cols) -> torch.Tensor:
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def test_an_ungrown_crop_of_a_square_object_is_its_pixels():
    image, mask = _image(), _mask(64, 64, slice(10, 20), slice(20, 30))
    crop = object_crop(image, mask, 10, grow=(1.0, 1.0), zero_outside=0.0)
    assert crop.shape == (3, 10, 10)
    torch.testing.assert_close(crop, image[:, 10:20, 20:30])


def test_the_square_follows_the_longer_side_and_zero_out_keeps_only_the_object():
    image, mask = _image(), _mask(64, 64, slice(10, 30), slice(30, 34))  # 20 tall, 4 wide
    kept = object_crop(image, mask, 20, grow=(1.0, 1.0), zero_outside=0.0)
    torch.testing.assert_close(kept, image[:, 10:30, 22:42])  # 20 x 20 around the centre
    zeroed = object_crop(image, mask, 20, grow=(1.0, 1.0), zero_outside=1.0)
    inside = mask[10:30, 22:42]
    torch.testing.assert_close(zeroed[:, inside], image[:, 10:30, 22:42][:, inside])
    assert (zeroed[:, ~inside] == 0).all()


def test_growing_shows_the_surroundings_and_pads_past_the_border_with_zeros():
    image, mask = _image(), _mask(64, 64, slice(0, 8), slice(0, 8))  # in the corner
    crop = object_crop(image, mask, 16, grow=(2.0, 2.0), zero_outside=0.0)
    # a 16 x 16 square centred on (4, 4): its top-left quarter lies outside the image
    assert (crop[:, :4, :] == 0).all() and (crop[:, :, :4] == 0).all()
    torch.testing.assert_close(crop[:, 4:, 4:], image[:, :12, :12])


def test_the_draws_come_from_the_generator():
    image, mask = _image(), _mask(64, 64, slice(20, 30), slice(25, 40))
    a, b = (object_crop(image, mask, 24, torch.Generator().manual_seed(3)) for _ in range(2))
    torch.testing.assert_close(a, b)
    crops = {object_crop(image, mask, 24, torch.Generator().manual_seed(s)).sum().item()
             for s in range(8)}
    assert len(crops) > 4  # the growth factor (and the zero-out) vary


def test_bad_crop_input():
    image = _image()
    with pytest.raises(ValueError, match="mask is empty"):
        object_crop(image, torch.zeros(64, 64, dtype=torch.bool), 8)
    with pytest.raises(ValueError, match="image must be"):
        object_crop(image, torch.ones(32, 32, dtype=torch.bool), 8)
    with pytest.raises(ValueError, match="grow must be a number >= 1"):
        object_crop(image, torch.ones(64, 64, dtype=torch.bool), 8, grow=(0.5, 2.0))


def test_the_contrastive_loss_is_clips():
    g = torch.Generator().manual_seed(0)
    images, texts = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    loss = contrastive_loss(images, texts, log_scale)
    sims = F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T / 0.07
    rows = -sims.log_softmax(dim=1).diag().mean()
    cols = -sims.log_softmax(dim=0).diag().mean()
    torch.testing.assert_close(loss, (rows + cols) / 2)
    torch.testing.assert_close(contrastive_loss(texts, images, log_scale), loss)  # symmetric
    loss.backward()
    assert log_scale.grad is not None and log_scale.grad != 0  # the temperature learns
    # matching pairs far apart from the rest: nearly no loss
    aligned = torch.eye(5) * 10
    assert contrastive_loss(aligned, aligned, torch.tensor(math.log(100.0))) < 1e-3
    with pytest.raises(ValueError, match="must both be"):
        contrastive_loss(images, texts[:4], log_scale)


# ------------------------------------------------------------------- tokenizer and tiny CLIP


def test_the_tokenizer_covers_every_caption_of_the_scenes():
    from samteach.data import make_scene
    from samteach.data.generic import make_generic_scene
    from samteach.text import WordTokenizer, instance_captions

    tokenizer = WordTokenizer()
    for seed in range(10):
        for record in (make_scene(seed, 96), make_generic_scene(seed, 96)):
            captions = [c for found in instance_captions(record) for c in found]
            ids = tokenizer.encode(captions, 12)
            assert tokenizer.decode(ids) == [c.lower() for c in captions]
            assert (ids[:, 0] == tokenizer.BOS).all()


def test_the_tokenizer_refuses_what_it_cannot_encode():
    from samteach.text import WordTokenizer

    tokenizer = WordTokenizer()
    with pytest.raises(ValueError, match="does not know 'giraffe'"):
        tokenizer.encode("the blue giraffe", 12)
    with pytest.raises(ValueError, match="holds no word"):
        tokenizer.encode("  ", 12)
    with pytest.raises(TypeError, match="text must be a string"):
        tokenizer.encode(3, 12)
    with pytest.raises(ValueError, match="at most 3 fit"):
        tokenizer.encode("the blue liquid in the flask", 5)


def test_tiny_clip_shapes_and_the_text_read_at_eos():
    from samteach.text import TinyClip, TinyClipConfig

    torch.manual_seed(0)
    model = TinyClip(TinyClipConfig(image_width=8, text_width=32, embed_dim=16)).eval()
    crops = torch.randint(0, 256, (3, 3, 64, 64))
    tokens = model.tokenizer.encode(["the blue liquid", "cap", "the striped red triangle"], 12)
    with torch.no_grad():
        assert model.encode_image(crops).shape == (3, 16)
        text = model.encode_text(tokens)
        assert text.shape == (3, 16)
        # causal attention: what follows <eos> (padding, or anything) does not change it
        noisy = tokens.clone()
        noisy[tokens == model.tokenizer.PAD] = 5
        torch.testing.assert_close(model.encode_text(noisy), text)
        assert torch.allclose(model.embed_text("the blue liquid").norm(dim=-1), torch.ones(1))


def test_tiny_clip_learns_to_pair_crops_with_captions():
    from samteach.text import TinyClip, TinyClipConfig

    torch.manual_seed(0)
    model = TinyClip(TinyClipConfig(image_width=8, text_width=32, embed_dim=16))
    g = torch.Generator().manual_seed(1)
    crops = torch.randint(0, 256, (4, 3, 64, 64), generator=g)
    tokens = model.tokenizer.encode(["the blue liquid", "the cap", "the red star", "the ring"],
                                    12)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model(crops, tokens)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.25 * first  # four pairs, memorised
