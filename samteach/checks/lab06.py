"""Checks of lab 06 (the data engine): the stability score and non-maximum suppression."""

import torch

from ..amg import box_iou, nms, stability_score
from ._core import Context, exercise, nearest, seeded_generator

__all__ = ["check_nms", "check_stability_score"]


def _counts(mask: torch.Tensor) -> torch.Tensor:
    """(..., H, W) bool -> (...) pixels."""
    return mask.sum(dim=(-2, -1))


def _stability_mistakes(x: torch.Tensor, t: float, off: float) -> dict:
    """What each known mistake returns for logits ``x`` at threshold ``t`` and offset ``off``."""
    ratio = lambda strict, loose: _counts(strict) / _counts(loose)  # noqa: E731

    def ge(got):
        return lambda: nearest(got, ratio(x >= t + off, x >= t - off),
                               ratio(x >= t + off, x > t - off), ratio(x > t + off, x >= t - off))

    def no_threshold(got):
        return lambda: nearest(got, ratio(x > off, x > -off), ratio(x > off, x > t - off),
                               ratio(x > t + off, x > -off))

    return {
        "ge_threshold": ge,
        "inverted": lambda got: lambda: ratio(x > t - off, x > t + off),
        "one_sided": lambda got: lambda: nearest(got, ratio(x > t + off, x > t),
                                                 ratio(x > t, x > t - off)),
        "no_threshold": no_threshold,
        "sum_all": lambda got: lambda: (x > t + off).sum() / (x > t - off).sum(),
        "sigmoid_first": lambda got: lambda: ratio(x.sigmoid() > t + off, x.sigmoid() > t - off),
        "union_as_sum": lambda got: lambda: _counts(x > t + off) / (
            _counts(x > t + off) + _counts(x > t - off)),
    }


@exercise(
    "stability_score", lab="06_data_engine", points=2,
    what="stability_score(mask_logits, mask_threshold, offset)",
    reference=("samteach.amg.filters.stability_score",),
    mistakes={
        "ge_threshold": "a logit exactly at a threshold was counted as inside: a mask is "
        "logits > threshold (strictly greater), as SAM thresholds its masks -- use > at both "
        "thresholds, not >=",
        "inverted": "the ratio is upside down (it comes out >= 1): the mask at the higher "
        "threshold (mask_threshold + offset) is the smaller one and lies inside the other, so "
        "IoU = |logits > t + offset| / |logits > t - offset|",
        "one_sided": "one of the two masks is thresholded at mask_threshold itself: the score "
        "compares the mask at mask_threshold + offset with the one at mask_threshold - offset",
        "no_threshold": "mask_threshold is ignored: the two thresholds are mask_threshold + "
        "offset and mask_threshold - offset, not +offset and -offset",
        "sum_all": "you summed over everything and got one number for the whole batch: count "
        "the pixels of each mask over its last two dims, .sum(dim=(-2, -1)), so (..., H, W) "
        "logits give (...) scores",
        "sigmoid_first": "the thresholds were applied to sigmoid probabilities: mask_threshold "
        "and the offset are in LOGIT units (SAM's mask is logits > 0), so compare the logits "
        "themselves",
        "union_as_sum": "the union was taken as |A| + |B|: that counts the intersection twice. "
        "Here the strict mask lies inside the loose one, so the union IS the loose mask and "
        "IoU = |strict| / |loose|",
    },
)
def check_stability_score(ctx: Context) -> int:
    # Logits on a 0.5 grid, so some sit exactly on the thresholds (t +- offset).
    cases = [("4 masks of 16x16, threshold 0, offset 1", (4, 16, 16), 0.0, 1.0),
             ("a batch (2, 3, 12, 20): 2 images x 3 masks, not square", (2, 3, 12, 20), 0.0, 1.0),
             ("threshold 1, offset 2", (3, 10, 10), 1.0, 2.0)]
    for i, (case, shape, t, off) in enumerate(cases):
        g = seeded_generator(60 + i)
        x = torch.randint(-8, 9, shape, generator=g).float() / 2  # (..., H, W)
        got = ctx.call(x, t, off, case=case)
        mistakes = {k: make(got) for k, make in _stability_mistakes(x, t, off).items()}
        ctx.expect(got, stability_score(x, t, off), case, mistakes=mistakes,
                   name="the score tensor")
    case = "3 masks: some pixels, empty at t + offset (score 0), empty at both (0 / 0)"
    x = torch.full((3, 6, 8), -5.0)
    x[0, 1:4, 2:6], x[0, 2, 3] = 0.5, 3.0
    x[1, 2:5, 1:3] = 0.5
    got = ctx.call(x, 0.0, 1.0, case=case)
    expected = stability_score(x, 0.0, 1.0)  # (3,): 1/12, 0, nan
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        ctx.expect(got[:2], expected[:2], case, name="the score tensor")
        if not torch.isnan(got[2]):
            ctx.fail("a mask that is empty at both thresholds has no stability: 0 / 0 must "
                     "stay nan (as in samteach and Meta's code), which fails every threshold "
                     f"test, so the generator drops it; got {float(got[2]):.3g} -- do not clamp "
                     "the denominator or add an epsilon", case)
    else:
        ctx.expect(got, expected, case, name="the score tensor")
    return len(cases) + 1


def _suppress_all(boxes: torch.Tensor, scores: torch.Tensor, t: float) -> torch.Tensor:
    """NMS where a box is dropped when any better box overlaps it, kept or not."""
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])  # (N, N) in visiting order
    kept = [i for i in range(len(order)) if not (iou[i, :i] > t).any()]
    return order[torch.tensor(kept, dtype=torch.long)]


def _greedy(boxes: torch.Tensor, scores: torch.Tensor, t: float, ascending: bool = False,
            ge: bool = False, below: bool = False,
            unsorted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Variants of the greedy loop -> (kept indices, their positions in the visiting order)."""
    order = torch.argsort(scores, descending=not ascending, stable=True)
    if unsorted:  # boxes visited in the order they come
        order = torch.arange(len(scores))
    iou = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= (iou[i] < t) if below else (iou[i] >= t) if ge else (iou[i] > t)
    positions = torch.tensor(kept, dtype=torch.long)
    return order[positions], positions


def _nms_mistakes(boxes: torch.Tensor, scores: torch.Tensor, t: float) -> dict:
    keep, positions = _greedy(boxes, scores, t)
    return {
        "ascending": lambda: _greedy(boxes, scores, t, ascending=True)[0],
        "ge_threshold": lambda: _greedy(boxes, scores, t, ge=True)[0],
        "suppress_all": lambda: _suppress_all(boxes, scores, t),
        "order_positions": lambda: positions,
        "original_order": lambda: keep.sort().values,
        "bool_mask": lambda: torch.zeros(len(boxes), dtype=torch.bool).index_fill(0, keep, True),
        "threshold_inverted": lambda: _greedy(boxes, scores, t, below=True)[0],
        "unsorted": lambda: _greedy(boxes, scores, t, unsorted=True)[0],
    }


def _random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 4) boxes in clusters around 3 centres, so many overlap; (n,) distinct scores."""
    g = seeded_generator(seed)
    centres = torch.tensor([[20.0, 20.0], [50.0, 30.0], [30.0, 60.0]])
    centre = centres[torch.arange(n) % 3] + torch.randn(n, 2, generator=g) * 4  # (n, 2)
    half = 8 + torch.rand(n, 2, generator=g) * 8  # (n, 2) half width, half height
    scores = torch.randperm(n, generator=g).float() / n + 0.01  # distinct
    return torch.cat([centre - half, centre + half], dim=1).round(), scores


@exercise(
    "nms", lab="06_data_engine", points=3, what="nms(boxes, scores, iou_threshold)",
    reference=("samteach.amg.filters.nms",),
    mistakes={
        "ascending": "the boxes are visited from the lowest score up: sort by score in "
        "descending order (argsort(scores, descending=True, stable=True)) so the best box of "
        "each cluster is kept",
        "ge_threshold": "a box whose IoU equals iou_threshold was suppressed: suppress only "
        "when IoU > iou_threshold (strictly greater, as torchvision.ops.nms and SAM do)",
        "suppress_all": "a suppressed box still suppressed the boxes after it: only *kept* "
        "boxes suppress. In a chain A > B > C where A overlaps B and B overlaps C (but A does "
        "not overlap C), A removes B and C survives",
        "order_positions": "you returned positions in the sorted order, not the boxes' own "
        "indices: map them back through the sort, order[kept]",
        "original_order": "the kept indices are in index order: return them best score "
        "first, in the order the greedy loop keeps them",
        "bool_mask": "you returned a boolean mask over the boxes: return the (K,) int64 indices "
        "of the kept boxes, best score first (like torchvision.ops.nms)",
        "threshold_inverted": "the test is the wrong way round: a box is suppressed when a kept "
        "box overlaps it MORE than iou_threshold (iou > iou_threshold), not less",
        "unsorted": "the boxes are visited in the order they come: visit them from the best "
        "score down (torch.argsort(scores, descending=True, stable=True)), so a box can only "
        "be suppressed by a better one",
    },
)
def check_nms(ctx: Context) -> int:
    boxes, scores = _random_boxes(12, seed=6)
    square = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    cases = [
        ("12 boxes in 3 clusters, threshold 0.5", boxes, scores, 0.5),
        ("the same, threshold 0.2", boxes, scores, 0.2),
        ("IoU exactly 0.5 at threshold 0.5 (kept)",
         torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [30.0, 0, 40, 10]]),
         torch.tensor([0.6, 0.9, 0.1]), 0.5),
        ("a chain A > B > C: A removes B, so C (far from A) survives",
         torch.tensor([[30.0, 0.0, 40.0, 10.0], [22.0, 0, 32, 10], [26.0, 0, 36, 10],
                       [0.0, 20, 5, 25]]),
         torch.tensor([0.7, 0.9, 0.8, 0.5]), 0.3),
        ("ties: equal scores keep the lower index first",
         torch.cat([square, square, square + 20, square + 40]),
         torch.tensor([0.5, 0.5, 0.8, 0.5]), 0.7),
        ("no boxes at all", torch.zeros(0, 4), torch.zeros(0), 0.7),
    ]
    for case, b, s, t in cases:
        got = ctx.call(b.clone(), s.clone(), t, case=case)
        if isinstance(got, torch.Tensor) and got.dtype.is_floating_point and got.numel():
            ctx.fail("nms returns indices (int64), not scores or boxes", case)
        ctx.expect(got, nms(b, s, t), case, mistakes=_nms_mistakes(b, s, t),
                   name="the index tensor")
    return len(cases)
