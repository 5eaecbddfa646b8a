"""samteach.fast computes what samteach.modeling computes: component by component, fp32, 1e-4,
gradients included (training runs the fast paths)."""

import copy

import pytest
import torch

from samteach import build_sam
from samteach.fast import decoder as fast_decoder
from samteach.fast import encoder as fast_encoder
from samteach.fast import is_fast, use_fast_paths
from samteach.fast.mlp import FastMLPBlock
from samteach.modeling.common import MLPBlock
from samteach.modeling.image_encoder import Attention as EncoderAttention
from samteach.modeling.transformer import Attention as DecoderAttention

from .conftest import VIT_B_REDUCED, assert_same, randomize_


@pytest.fixture(scope="module")
def pair():
    """(readable, fast) vit_b-shaped models with the same random weights."""
    readable = randomize_(build_sam(VIT_B_REDUCED, fast=False), seed=2)
    return readable, use_fast_paths(copy.deepcopy(readable))


@pytest.fixture(scope="module")
def tiny_pair():
    """(readable, fast) tiny models with SAM 2's high-res path, the same random weights."""
    readable = randomize_(build_sam("tiny", fast=False), seed=3)
    return readable, use_fast_paths(copy.deepcopy(readable))


def test_the_switch_swaps_every_module_with_a_twin_and_back(pair):
    readable, fast = pair
    assert not is_fast(readable) and is_fast(fast)
    assert readable.config.fast is False and fast.config.fast is True
    kinds = {type(m).__name__ for m in fast.modules()}
    assert {"FastAttention", "FastTwoWayTransformer", "FastMaskDecoder", "FastMLPBlock"} <= kinds
    assert readable.state_dict().keys() == fast.state_dict().keys()
    back = use_fast_paths(copy.deepcopy(fast), enabled=False)
    assert [type(m) for m in back.modules()] == [type(m) for m in readable.modules()]
    with pytest.raises(TypeError, match="enabled must be True or False"):
        use_fast_paths(fast, "yes")


@pytest.mark.parametrize("rows", [None, 1, 3])
def test_encoder_attention_with_its_bias_in_row_chunks(pair, monkeypatch, rows):
    """The fused attention, with the bias in chunks of 1 and 3 grid rows too (20 rows do not
    divide by 3: a ragged last chunk), equals the written-out one."""
    readable, fast = pair
    if rows:
        monkeypatch.setattr(fast_encoder, "BIAS_CHUNK_ELEMENTS", rows * 12 * 20 * 400)
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_same(fast.image_encoder(x), readable.image_encoder(x))
    block = fast.image_encoder.blocks[1].attn  # the global block
    assert isinstance(block, fast_encoder.FastAttention) and isinstance(block, EncoderAttention)


@pytest.mark.parametrize("act", [torch.nn.GELU, torch.nn.ReLU])
def test_the_feed_forward_layer_with_its_gelu_fused(act):
    """FastMLPBlock equals MLPBlock: the GELU fused into oneDNN's product (no grad), F.linear
    with gradients, and any other activation through the readable forward."""
    torch.manual_seed(0)
    readable = MLPBlock(64, 256, act)
    fast = use_fast_paths(copy.deepcopy(readable))
    assert isinstance(fast, FastMLPBlock)
    x = torch.randn(2, 300, 64)
    with torch.no_grad():
        assert_same(fast(x), readable(x))
    x.requires_grad_(True)
    (grad_fast,) = torch.autograd.grad(fast(x).square().sum(), x)
    (grad_readable,) = torch.autograd.grad(readable(x).square().sum(), x)
    assert_same(grad_fast, grad_readable)


def test_decoder_attention_broadcasts_over_the_prompts_of_an_image():
    readable = randomize_(DecoderAttention(32, num_heads=4, downsample_rate=2), seed=1)
    fast = copy.deepcopy(readable)
    fast.__class__ = fast_decoder.FastAttention
    g = torch.Generator().manual_seed(0)
    tokens, image = torch.randn(2, 3, 5, 32, generator=g), torch.randn(2, 1, 9, 32, generator=g)
    with torch.no_grad():
        t2i = fast(tokens, image, image)  # (B, K, T, C) queries against a shared image
        i2t = fast(image, tokens, tokens)  # the shared image's tokens against each prompt's
        for b in range(2):
            for k in range(3):
                assert_same(t2i[b, k], readable(tokens[b, k][None], image[b], image[b])[0])
                assert_same(i2t[b, k], readable(image[b], tokens[b, k][None],
                                                tokens[b, k][None])[0])


def _prompts(model, g, K: int, B: int, with_masks: bool):
    size = model.image_encoder.img_size
    points = (torch.rand(B * K, 3, 2, generator=g) * size, torch.tensor([[1, 0, -1]] * (B * K)))
    masks = None
    if with_masks:
        masks = torch.randn(B * K, 1, *model.prompt_encoder.mask_input_size, generator=g)
    return model.prompt_encoder(points=points, boxes=None, masks=masks)


@pytest.mark.parametrize("with_masks", [False, True], ids=["no mask prompt", "mask prompts"])
def test_mask_decoder_two_images_three_prompts_each(pair, with_masks):
    readable, fast = pair
    g = torch.Generator().manual_seed(1)
    embedding = torch.randn(2, 256, 20, 20, generator=g)
    with torch.no_grad():
        sparse, dense = _prompts(readable, g, K=3, B=2, with_masks=with_masks)
        pe = readable.prompt_encoder.get_dense_pe()
        for multimask in (True, False):
            expected = readable.mask_decoder(embedding, pe, sparse, dense, multimask)
            actual = fast.mask_decoder(embedding, pe, sparse, dense, multimask)
            for a, b in zip(actual, expected, strict=True):
                assert_same(a, b)


def test_upscaling_channels_last_with_the_high_res_path(tiny_pair):
    readable, _ = tiny_pair
    decoder = readable.mask_decoder
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 64, 16, 16, generator=g)  # 2 images x 3 prompts
    feat_s0, feat_s1 = torch.randn(2, 16, 64, 64, generator=g), torch.randn(2, 32, 32, 32,
                                                                            generator=g)
    with torch.no_grad():
        dc1, ln1, act1, dc2, act2 = decoder.output_upscaling
        s0, s1 = (f.repeat_interleave(3, dim=0) for f in (decoder.conv_s0(feat_s0),
                                                           decoder.conv_s1(feat_s1)))
        expected = act2(dc2(act1(ln1(dc1(x) + s1))) + s0)
        fine = [decoder.conv_s0(feat_s0).permute(0, 2, 3, 1),
                decoder.conv_s1(feat_s1).permute(0, 2, 3, 1)]
        actual = fast_decoder.upscale(decoder.output_upscaling, x.permute(0, 2, 3, 1), fine)
        assert_same(actual.permute(0, 3, 1, 2), expected)
        plain = fast_decoder.upscale(decoder.output_upscaling, x.permute(0, 2, 3, 1))
        assert_same(plain.permute(0, 3, 1, 2), decoder.output_upscaling(x))


def test_conv_transpose_2x2_is_a_per_pixel_linear_layer():
    conv = randomize_(torch.nn.ConvTranspose2d(8, 4, kernel_size=2, stride=2), seed=5)
    x = torch.randn(2, 8, 5, 7, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        actual = fast_decoder.conv_transpose_2x2(x.permute(0, 2, 3, 1), conv)
        assert_same(actual.permute(0, 3, 1, 2), conv(x), atol=1e-5)


def _loss_and_grads(model, images, g_seed: int):
    """A training-like pass: encoder, high-res stem, decoder for 2 images x 3 prompts."""
    g = torch.Generator().manual_seed(g_seed)
    model.zero_grad()
    x = model.preprocess(images)
    embedding = model.image_encoder(x)
    fine = model.image_encoder.high_res_stem(x)
    sparse, dense = _prompts(model, g, K=3, B=2, with_masks=False)
    masks, iou = model.mask_decoder(embedding, model.prompt_encoder.get_dense_pe(), sparse,
                                    dense, True, fine)
    loss = masks.sigmoid().mean() + iou.square().mean()
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_gradients_agree_end_to_end(tiny_pair):
    """Training runs the fast paths: the loss and every parameter's gradient match."""
    readable, fast = (copy.deepcopy(m).train() for m in tiny_pair)
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(6)) * 255
    loss_r, grads_r = _loss_and_grads(readable, images, 7)
    loss_f, grads_f = _loss_and_grads(fast, images, 7)
    assert_same(loss_f, loss_r)
    assert grads_f.keys() == grads_r.keys() and len(grads_r) > 50
    for name, grad in grads_r.items():
        assert_same(grads_f[name], grad, atol=1e-5)


def test_two_way_attention_weights_are_what_forward_mixes_the_values_with():
    attn = randomize_(DecoderAttention(32, num_heads=4, downsample_rate=2))
    q, k, v = torch.randn(2, 5, 32), torch.randn(2, 7, 32), torch.randn(2, 7, 32)
    weights = attn.attention_weights(q, k)  # (B, h, n, m)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))
    values = attn._separate_heads(attn.v_proj(v))  # (B, h, m, c)
    rebuilt = attn.out_proj(attn._recombine_heads(weights @ values))
    assert_same(rebuilt, attn(q, k, v), atol=1e-5)
