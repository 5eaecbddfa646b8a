"""Invariants of the building blocks, the ones the labs teach (cheap, exact, no reference)."""

import pytest
import torch
from torch import nn

from samteach.modeling import LayerNorm2d, PromptEncoder
from samteach.modeling.image_encoder import (
    Attention,
    PatchEmbed,
    attention_logits,
    patchify,
    window_partition,
    window_unpartition,
)

from .conftest import assert_same, randomize_


def test_layer_norm_2d_is_layer_norm_over_channels():
    norm, reference = LayerNorm2d(6), nn.LayerNorm(6, eps=1e-6)
    randomize_(norm)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 6, 4, 5)
    assert_same(norm(x), reference(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), atol=1e-5)


@pytest.mark.parametrize("hw", [(14, 14), (20, 9)])
def test_window_partition_round_trip(hw):
    x = torch.randn(2, *hw, 3)
    windows, padded = window_partition(x, 7)
    assert windows.shape == (2 * (padded[0] // 7) * (padded[1] // 7), 7, 7, 3)
    assert torch.equal(window_unpartition(windows, 7, padded, hw), x)


@pytest.fixture(scope="module")
def prompt_encoder() -> PromptEncoder:
    return randomize_(PromptEncoder(256, (64, 64), (1024, 1024), 16), seed=3)


def test_a_point_at_a_cell_centre_gets_that_cells_encoding(prompt_encoder):
    """Pixel (16j + 7.5, 16i + 7.5), whose centre is 16j + 8, lies at the centre of cell (i, j)."""
    dense = prompt_encoder.get_dense_pe()[0]  # (C, 64, 64)
    i, j = 5, 40
    point = (torch.tensor([[[16 * j + 7.5, 16 * i + 7.5]]]), torch.tensor([[1]]))
    sparse, _ = prompt_encoder(point, None, None)  # (1, 2, C): the point, then the pad token
    position = sparse[0, 0] - prompt_encoder.point_embeddings[1].weight[0]  # minus "foreground"
    assert_same(position, dense[:, i, j], atol=1e-5)
    assert dense.abs().max() <= 1.0  # sines and cosines


def test_token_counts_per_prompt_kind(prompt_encoder):
    point = (torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]]))
    box = torch.tensor([[10.0, 20.0, 100.0, 200.0]])
    counts = {
        "point": prompt_encoder(point, None, None)[0].shape[1],
        "box": prompt_encoder(None, box, None)[0].shape[1],
        "point+box": prompt_encoder(point, box, None)[0].shape[1],
        "nothing": prompt_encoder(None, None, None)[0].shape[1],
    }
    assert counts == {"point": 2, "box": 2, "point+box": 3, "nothing": 0}


def test_box_as_two_labelled_points_equals_the_box(prompt_encoder):
    """The ONNX export's convention: corners as points with labels 2 and 3, no pad token."""
    point = torch.tensor([[[50.0, 60.0]]])
    box = torch.tensor([[10.0, 20.0, 100.0, 200.0]])
    as_points = (torch.cat([point, box.view(1, 2, 2)], dim=1), torch.tensor([[1, 2, 3]]))
    sparse_points, _ = prompt_encoder(as_points, None, None)
    sparse_box, _ = prompt_encoder((point, torch.tensor([[1]])), box, None)
    assert_same(sparse_points, sparse_box, atol=1e-6)


def test_explicit_pad_flag(prompt_encoder):
    """pad=False keeps a spelled-out prompt as it is: [point, pad] stays two tokens."""
    spelled = (torch.tensor([[[50.0, 60.0], [0.0, 0.0]]]), torch.tensor([[1, -1]]))
    sparse_spelled, _ = prompt_encoder(spelled, None, None, pad=False)
    sparse_auto, _ = prompt_encoder((spelled[0][:, :1], spelled[1][:, :1]), None, None)
    assert sparse_spelled.shape == sparse_auto.shape == (1, 2, 256)
    assert_same(sparse_spelled, sparse_auto, atol=1e-6)
    assert prompt_encoder(spelled, None, None)[0].shape[1] == 3  # SAM's rule pads again


def test_patch_embed_is_patchify_then_one_linear_layer():
    embed = randomize_(PatchEmbed(patch_size=4, in_chans=3, embed_dim=10))
    x = torch.randn(2, 3, 12, 16)
    weight = embed.proj.weight.flatten(1)  # (C, 3*p*p), channel-major like patchify
    assert_same(patchify(x, 4) @ weight.T + embed.proj.bias, embed(x))


def test_attention_logits_are_what_forward_takes_the_softmax_of():
    attn = randomize_(Attention(16, num_heads=2, use_rel_pos=True, input_size=(3, 5)))
    x = torch.randn(2, 3, 5, 16)
    q, k, v = attn.project(x)  # (B, nh, N, c)
    logits = attention_logits(q, k, attn.rel_pos_h, attn.rel_pos_w, (3, 5))  # (B, nh, N, N)
    mixed = (logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 3, 5, 16)
    assert_same(attn.proj(mixed), attn(x), atol=1e-5)
