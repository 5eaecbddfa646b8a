"""SAM's loss: focal, dice, IoU MSE, the paper's weights, and the minimum over multimask."""

import math

import pytest
import torch

from samteach.training.losses import dice_loss, focal_loss, grounding_loss, mask_iou, sam_loss


def test_focal_loss_by_hand():
    # logit 0 on a foreground pixel: p = 0.5, CE = ln 2, (1 - p_t)^2 = 1/4, alpha_t = 1/4.
    logits, targets = torch.zeros(1, 1, 1), torch.ones(1, 1, 1, dtype=torch.bool)
    assert focal_loss(logits, targets).item() == pytest.approx(math.log(2) / 16)
    # logit 2 on background: p = sigmoid(2), CE = softplus(2), p_t = 1 - p, alpha_t = 3/4.
    p = 1 / (1 + math.exp(-2))
    expected = 0.75 * math.log1p(math.exp(2)) * p**2
    assert focal_loss(torch.full((1, 1), 2.0)[None], torch.zeros(1, 1, 1)).item() == \
        pytest.approx(expected)
    # averaged over pixels: the two pixels above together
    pair = focal_loss(torch.tensor([[[0.0, 2.0]]]), torch.tensor([[[True, False]]]))
    assert pair.item() == pytest.approx((math.log(2) / 16 + expected) / 2)


def test_dice_loss_by_hand():
    # p = 0.5 on two pixels, one of them foreground: 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3
    logits, targets = torch.zeros(1, 1, 2), torch.tensor([[[True, False]]])
    assert dice_loss(logits, targets).item() == pytest.approx(1 / 3)
    # a perfect, confident prediction has (almost) no loss; the exact opposite (two wrong
    # pixels predicted, two right ones missed) 1 - (0 + 1) / (2 + 2 + 1) = 4/5
    target = torch.tensor([[[True, False, False, True]]])
    confident = torch.where(target, 20.0, -20.0)
    assert dice_loss(confident, target).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(-confident, target).item() == pytest.approx(4 / 5, abs=1e-6)


def test_mask_iou_thresholds_logits_at_zero():
    logits = torch.tensor([[[1.0, -1.0, 0.5, 0.0]]])
    targets = torch.tensor([[[True, True, False, False]]])
    assert mask_iou(logits, targets).item() == pytest.approx(1 / 3)  # {0} / {0, 1, 2}
    assert mask_iou(-torch.ones(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool)) == 1.0


def test_min_over_multimask_trains_only_the_best_mask():
    target = torch.zeros(2, 4, 4, dtype=torch.bool)
    target[:, 1:3, 1:3] = True
    good = torch.where(target, 5.0, -5.0)
    logits = torch.stack([-good, good, torch.zeros_like(good)], dim=1)  # mask 1 is right
    logits[1] = logits[1, [2, 0, 1]]  # prompt 1: the right mask is output 2
    logits.requires_grad_(True)
    iou_pred = torch.full((2, 3), 0.5, requires_grad=True)
    out = sam_loss(logits, iou_pred, target)
    assert out["best"].tolist() == [1, 2]
    out["loss"].backward()
    grad_per_mask = logits.grad.abs().flatten(2).sum(-1)  # (2, 3)
    assert (grad_per_mask[0] > 0).tolist() == [False, True, False]
    assert (grad_per_mask[1] > 0).tolist() == [False, False, True]
    assert (iou_pred.grad != 0).all()  # the IoU head learns on every output


def test_weights_and_iou_mse():
    target = torch.zeros(1, 2, 2, dtype=torch.bool)
    target[0, 0, 0] = True
    logits = torch.tensor([[[[3.0, -3.0], [-3.0, 3.0]]]])  # IoU 1/2
    iou_pred = torch.tensor([[0.9]])
    out = sam_loss(logits, iou_pred, target)
    focal, dice = focal_loss(logits, target[:, None]), dice_loss(logits, target[:, None])
    assert out["loss"].item() == pytest.approx((20 * focal + dice).item() + (0.9 - 0.5) ** 2)
    out = sam_loss(logits, iou_pred, target, focal_weight=0.0, dice_weight=0.0, iou_weight=2.0)
    assert out["loss"].item() == pytest.approx(2 * 0.16)


def test_grounding_loss_by_hand_and_where_it_is_low():
    """One token, a 1 x 2 embedding: the object on the first location. Similarities are
    cosines / 0.1: the token points one way, location 0 the same way, location 1 opposite."""
    token = torch.tensor([[1.0, 0.0]])
    embedding = torch.tensor([[[[2.0, -3.0]], [[0.0, 0.0]]]])  # (1, C=2, h=1, w=2)
    on_first = torch.tensor([[[1.0, 0.0]]])  # (1, h, w)
    # logits 10 and -10: the cross-entropy of location 0 is log(1 + e^-20)
    assert grounding_loss(token, embedding, on_first).item() == pytest.approx(
        math.log1p(math.exp(-20)), abs=1e-7)
    on_second = torch.tensor([[[0.0, 1.0]]])
    assert grounding_loss(token, embedding, on_second).item() == pytest.approx(
        20 + math.log1p(math.exp(-20)), rel=1e-6)
    # a soft object (a share of each location) is normalised: half and half -> the mean
    half = torch.tensor([[[0.25, 0.25]]])
    assert grounding_loss(token, embedding, half).item() == pytest.approx(
        10 + math.log1p(math.exp(-20)), rel=1e-6)


def test_grounding_loss_teaches_the_token_and_the_features():
    torch.manual_seed(0)
    tokens = torch.randn(3, 8, requires_grad=True)
    embeddings = torch.randn(3, 8, 4, 4, requires_grad=True)
    targets = (torch.rand(3, 4, 4) > 0.5).float()
    targets[:, 0, 0] = 1.0  # no empty object
    grounding_loss(tokens, embeddings, targets).backward()
    assert tokens.grad.abs().sum() > 0 and embeddings.grad.abs().sum() > 0
