"""The explicit (teaching) and fused SDPA attention paths compute the same numbers."""

import pytest
import torch

from samteach import build_sam
from samteach.modeling import image_encoder, set_attention

from .conftest import VIT_B_REDUCED, assert_same, randomize_


@pytest.fixture(scope="module")
def model():
    return randomize_(build_sam(VIT_B_REDUCED), seed=2)


def encode(model, attention, x):
    set_attention(model, attention)
    return model.image_encoder(x)


def test_encoder_paths_agree_with_many_bias_chunks(model, monkeypatch):
    """Force the fused path to split the bias into chunks of one grid row, then of 3 rows
    (20 rows do not divide by 3: a ragged last chunk)."""
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        explicit = encode(model, "explicit", x)
        for rows in (1, 3):
            monkeypatch.setattr(image_encoder, "_BIAS_CHUNK_ELEMENTS", rows * 12 * 20 * 400)
            assert_same(encode(model, "sdpa", x), explicit)


def test_decoder_paths_agree(model):
    g = torch.Generator().manual_seed(1)
    embedding = torch.randn(2, 256, 20, 20, generator=g)
    points = (torch.rand(6, 3, 2, generator=g) * 320, torch.tensor([[1, 0, -1]] * 6))
    with torch.no_grad():
        sparse, dense = model.prompt_encoder(points=points, boxes=None, masks=None)
        pe = model.prompt_encoder.get_dense_pe()
        outputs = {}
        for attention in ("explicit", "sdpa"):
            set_attention(model, attention)
            outputs[attention] = model.mask_decoder(embedding, pe, sparse, dense, True)
    for a, b in zip(outputs["sdpa"], outputs["explicit"], strict=True):
        assert_same(a, b)


def test_gradients_agree():
    """Training uses the fused path too: its gradients must match the explicit path's."""
    grads = {}
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    for attention in ("explicit", "sdpa"):
        model = randomize_(build_sam("tiny", attention=attention), seed=3)
        model.image_encoder(x).square().mean().backward()
        grads[attention] = {n: p.grad for n, p in model.image_encoder.named_parameters()}
    for name, grad in grads["explicit"].items():
        assert_same(grads["sdpa"][name], grad, atol=1e-5)


def test_set_attention_rejects_unknown_names(model):
    with pytest.raises(ValueError, match="attention"):
        set_attention(model, "flash")


def test_two_way_attention_weights_are_what_forward_mixes_the_values_with():
    from samteach.modeling.transformer import Attention as TwoWayAttention

    attn = randomize_(TwoWayAttention(32, num_heads=4, downsample_rate=2))
    q, k, v = torch.randn(2, 5, 32), torch.randn(2, 7, 32), torch.randn(2, 7, 32)
    weights = attn.attention_weights(q, k)  # (B, h, n, m)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))
    values = attn._separate_heads(attn.v_proj(v))  # (B, h, m, c)
    rebuilt = attn.out_proj(attn._recombine_heads(weights @ values))
    assert_same(rebuilt, attn(q, k, v), atol=1e-5)
