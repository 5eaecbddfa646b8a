"""SAM's interactive training loop (SAM paper App. A, "Training algorithm"), small enough for a CPU.

Meta never released SAM's training code; the paper describes it, and this module follows it:

1. Encode each image **once**; every prompt on it reuses the embedding (many prompts, one
   embedding -- B images x K masks per step).
2. Round 1: a first prompt per mask, a foreground point or a noisy box (equal odds).
3. Rounds 2..R: look at the previous round's mask -- the output with the highest *predicted*
   IoU --, sample one click uniformly from its error region (a missed pixel gives a foreground
   click, spill a background one), and feed that mask's **unthresholded low-res logits** back as
   the dense (mask) prompt. Optional rounds add no click and only feed the mask back.
4. The loss (focal 20 : dice 1, + IoU MSE; :mod:`samteach.training.losses`) is summed over
   rounds. Only round 1 (a single prompt) uses the three multimask outputs; later rounds use one.
   With text prompts, ``text_grounding`` > 0 adds samteach's own grounding loss (not the
   paper's): each text token must point at its object among the embedding's locations, and
   ``text_click`` > 0 gives a share of text prompts the model's own click where it points.

Gradients: ``grad_rounds="all"`` backpropagates every round's loss (into the shared image
embedding too): memory grows with the number of rounds and each round costs a decoder backward.
``"last"`` runs the earlier rounds without gradients (they only produce the clicks and the fed-back
mask, as in RITM) and trains on the last round alone: cheaper, but rounds 1..R-1 get no signal.
``"sample"`` trains round 1 (the first prompt) and a few other rounds drawn at random each step:
every round is trained now and then, at the cost of a few decoder backwards instead of all.
The fed-back mask is always detached, so no gradient flows from one round into the previous one.

Shapes: B images, K masks per image, P = B*K prompts, T prompt tokens, M masks per prompt,
H/W image size, h/w low-res mask size.
"""

import torch
import torch.nn.functional as F

from ..modeling import Sam
from ..text.crops import object_crop
from ..text.grounding import grounding_map, peak_point
from ..text.pairs import large_enough
from .config import TrainConfig
from .losses import grounding_loss, sam_loss
from .samplers import append_clicks, sample_error_clicks, sample_first_prompts

__all__ = ["InteractiveSam", "interactive_step", "next_round_prompts", "own_clicks",
           "preprocess_batch", "round_plan", "text_first_prompts"]


def preprocess_batch(model: Sam, images: torch.Tensor,
                     input_sizes: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, S, S) uint8 images -> the encoder's input, exactly as ``SamPredictor`` makes it.

    Image b fills the top-left ``input_sizes[b]`` = (h, w) of its square; the predictor
    normalises a resized photo and *then* pads it with zeros, so the padding is the mean colour,
    not black. Same here: normalise, then zero everything outside (h, w).
    """
    x = model.preprocess(images.float())  # (B, 3, S, S)
    if input_sizes is None:
        return x
    S = x.shape[-1]
    position = torch.arange(S, device=x.device)
    rows = position < input_sizes[:, :1].to(x.device)  # (B, S)
    cols = position < input_sizes[:, 1:].to(x.device)  # (B, S)
    inside = rows[:, None, :, None] & cols[:, None, None, :]  # (B, 1, S, S)
    return torch.where(inside, x, 0.0)


def round_plan(config: TrainConfig, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> tuple[list[bool], list[bool]]:
    """Which rounds of one step add a click, and which carry gradients.

    Returns two lists over the ``total_rounds`` rounds: ``clicks[r]`` -- round r brings a new
    corrective click (round 0 brings the first prompt: False) -- and ``grads[r]``. The no-click
    rounds go as in the paper: the last at the end, the others at random places among the click
    rounds. ``grad_rounds``: "all" every round, "last" the last one, "sample" round 0 (the first
    prompt, the only multimask round) and ``grad_sample - 1`` others drawn at random.
    """
    T = config.total_rounds
    clicks = [False] + [True] * (T - 1)
    if config.no_click_rounds:
        clicks[-1] = False
        if config.no_click_rounds > 1:
            middle = torch.randperm(T - 2, generator=generator, device=device) + 1
            for r in middle[: config.no_click_rounds - 1].tolist():
                clicks[r] = False
    if config.grad_rounds == "all":
        grads = [True] * T
    elif config.grad_rounds == "last":
        grads = [r == T - 1 for r in range(T)]
    else:
        others = (torch.randperm(T - 1, generator=generator, device=device) + 1).tolist()
        chosen = {0, *others[: config.grad_sample - 1]}
        grads = [r in chosen for r in range(T)]
    return clicks, grads


def interactive_step(
    model: Sam, images: torch.Tensor, masks: torch.Tensor, config: TrainConfig,
    generator: torch.Generator | None = None, record_rounds: bool = False,
    input_sizes: torch.Tensor | None = None,
    text: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict:
    """One training step's forward pass: all rounds of SAM's interactive loop on a batch.

    Args:
        model: SAM, already on the images' device.
        images: (B, 3, H, W) uint8 images at the model's input size.
        masks: (B, K, H, W) bool ground truth.
        config: rounds, prompt sampling and loss weights.
        generator: randomness of the prompts (on the images' device).
        record_rounds: also return, per round, the prompts and the fed-back mask (for tests
            and for the lab's pictures).
        input_sizes: (B, 2) (h, w) of each image inside its square; the rest is padding
            (:func:`preprocess_batch`). None: every image fills its square.
        text: (P, D) CLIP embeddings and (P,) bool, the prompts whose first interaction is
            that embedding instead of a point or box (SAM §7.5; see :func:`text_first_prompts`).

    Returns:
        "loss" to backpropagate (summed over the rounds with gradients), and per-round detached
        "round_loss" and "round_iou" (mean actual IoU of the chosen masks) of the rounds played:
        all of them, except with ``grad_rounds="sample"``, which stops after the last round
        drawn for training (the rounds after it would only cost time). With
        ``config.text_grounding`` and text prompts: "grounding", that loss (detached), added.
    """
    B, K, H, W = masks.shape
    gt = masks.flatten(0, 1)  # (P, H, W), image-major like the decoder's prompts
    target = gt
    if config.loss_resolution == "low":
        h = model.prompt_encoder.mask_input_size[0]  # the decoder's output size
        target = F.adaptive_avg_pool2d(gt[:, None].float(), h)[:, 0]  # (P, h, w) soft
    x = preprocess_batch(model, images, input_sizes)
    embeddings = model.image_encoder(x)  # (B, C, h, w): once per image, for every round
    stem = model.image_encoder.high_res_stem  # SAM 2's fine maps, where the model has them
    fine = None if stem is None else stem(x)
    image_pe = model.prompt_encoder.get_dense_pe()
    first = sample_first_prompts(gt, generator, p_box=config.p_box, point_mode=config.point_mode)
    points, labels, mask_input = first.points, first.labels, None  # (P, 2, 2), (P, 2)
    if text is not None:  # those prompts start from the text token alone: [pad, text]
        labels = torch.where(text[1][:, None], -1, labels)
        text = (model.prompt_encoder.embed_text(text[0]), text[1])  # (P, C): once, every round
        if config.text_click > 0:  # some with the model's own click instead of the pad
            points, labels = own_clicks(text, embeddings, points, labels, config.text_click,
                                        generator, input_sizes, model.image_encoder.img_size)
    clicks, grads = round_plan(config, generator, gt.device)
    last = max(r for r, g in enumerate(grads) if g)  # later rounds would train nothing: skip
    total, round_loss, round_iou, history = 0.0, [], [], []
    for r in range(last + 1):
        with torch.set_grad_enabled(grads[r]):
            out, low_res = _decode_round(model, (embeddings, fine), image_pe, points, labels,
                                         mask_input, target, config, multimask=(r == 0),
                                         text=text)
        if out["loss"].requires_grad:
            total = total + out["loss"]
        best = out["iou_pred"].detach().argmax(dim=1)  # (P,): the mask fed back
        rows = torch.arange(len(best), device=best.device)
        round_loss.append(float(out["loss"].detach()))
        round_iou.append(float(out["actual_iou"][rows, best].mean()))
        if record_rounds:
            history.append({"points": points, "labels": labels, "mask_input": mask_input,
                            "low_res": low_res.detach(), "best": best})
        if r < last:  # the next round: a corrective click, or the mask alone
            points, labels, mask_input = next_round_prompts(
                points, labels, low_res, out["iou_pred"], gt, generator, click=clicks[r + 1])
    result = {"loss": total, "round_loss": round_loss, "round_iou": round_iou}
    if text is not None and config.text_grounding > 0 and bool(text[1].any()):
        rows = text[1].nonzero()[:, 0]  # (n,) the text prompts; image of prompt p: p // K
        h = embeddings.shape[-2:]
        where = F.adaptive_avg_pool2d(gt[rows, None].float(), h)[:, 0]  # (n, h, w)
        grounding = grounding_loss(text[0][rows], embeddings[rows // K], where)
        result["loss"] = total + config.text_grounding * grounding
        result["grounding"] = float(grounding.detach())
    if record_rounds:
        result["rounds"] = history
    return result


@torch.no_grad()
def own_clicks(text: tuple[torch.Tensor, torch.Tensor], embeddings: torch.Tensor,
               points: torch.Tensor, labels: torch.Tensor, share: float,
               generator: torch.Generator | None, input_sizes: torch.Tensor | None,
               img_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``share`` of the text prompts [pad, text] become [own click, text]: the click (label 1)
    where the token points on its image's embedding (:func:`~samteach.text.grounding.peak_point`),
    as ``predict(text_click=True)`` clicks at inference. Right or wrong, it stays -- the words
    must overrule a wrong one. text = (tokens (P, C), rows (P,) bool); embeddings (B, C, h, w);
    points (P, 2, 2) and labels (P, 2) of the first prompts. Returns new points and labels."""
    coins = torch.rand(len(labels), generator=generator, device=labels.device) < share
    chosen = (text[1] & coins).nonzero()[:, 0]  # (n,)
    if len(chosen) == 0:
        return points, labels
    K = len(labels) // len(embeddings)
    maps = grounding_map(text[0][chosen], embeddings[chosen // K])  # (n, h, w)
    points, labels = points.clone(), labels.clone()
    for row, grounding in zip(chosen.tolist(), maps, strict=True):
        size = (img_size, img_size) if input_sizes is None else input_sizes[row // K].tolist()
        points[row, 0] = points.new_tensor(peak_point(grounding, size, img_size))
        labels[row, 0] = 1
    return points, labels


def next_round_prompts(
    points: torch.Tensor, labels: torch.Tensor, low_res: torch.Tensor, iou_pred: torch.Tensor,
    gt: torch.Tensor, generator: torch.Generator | None = None, click: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From one round's outputs to the next round's prompts (SAM App. A): one turn of the loop.

    The mask fed back is the output the model itself trusts most (highest *predicted* IoU), as
    its unthresholded low-res logits, detached: the next round sees the previous answer with
    its confidence, and no gradient flows from one round into the previous one. The new click
    is drawn uniformly from that mask's error region (upsampled to the ground truth's size and
    thresholded at 0) with :func:`~samteach.training.samplers.sample_error_clicks`.

    Args:
        points: (P, N, 2) pixel (x, y) of the prompt tokens so far.
        labels: (P, N) their labels.
        low_res: (P, M, h, w) this round's mask logits (M = 3 multimask, or 1).
        iou_pred: (P, M) the IoU head's predictions.
        gt: (P, H, W) bool ground truth.
        generator: the randomness of the click, on gt's device.
        click: add a corrective click (False: a round that only feeds the mask back).

    Returns:
        points (P, N + 1, 2), labels (P, N + 1) (N when ``click`` is False), and the next
        round's dense prompt ``mask_input`` (P, 1, h, w).
    """
    best = iou_pred.detach().argmax(dim=1)  # (P,): the output the model trusts most
    rows = torch.arange(len(best), device=best.device)
    mask_input = low_res[rows, best].detach()[:, None]  # (P, 1, h, w) unthresholded logits
    if click:
        pred = _upsample(mask_input, gt.shape[-2:])[:, 0] > 0  # (P, H, W)
        new_points, new_labels = sample_error_clicks(pred, gt, generator)
        points, labels = append_clicks(points, labels, new_points, new_labels)
    return points, labels, mask_input


def _decode_round(model, features, image_pe, points, labels, mask_input, target, config,
                  multimask: bool, text=None):
    """Prompt encoder + decoder for all P prompts, and their loss at the target's size.

    ``features`` = (image embeddings (B, C, h, w), high-res stem maps or None); ``text`` =
    (text tokens (P, C), rows (P,) bool) or None."""
    embeddings, fine = features
    sparse, dense = model.prompt_encoder(points=(points, labels), boxes=None, masks=mask_input,
                                         pad=False)  # prompts are spelled out (prompts.py)
    if text is not None:
        # Token 1 of a text prompt (the first prompt's second token: a pad, or a box's second
        # corner for the others) is its text token, so a text prompt is [pad, text, clicks...]:
        # the tokens SamPredictor makes for text and clicks (their order does not matter).
        second = torch.where(text[1][:, None], text[0], sparse[:, 1])  # (P, C)
        sparse = torch.cat([sparse[:, :1], second[:, None], sparse[:, 2:]], dim=1)
    low_res, iou_pred = model.mask_decoder(embeddings, image_pe, sparse, dense, multimask,
                                           high_res_features=fine)
    logits = low_res if low_res.shape[-2:] == target.shape[-2:] else _upsample(
        low_res, target.shape[-2:])  # (P, M, H, W)
    out = sam_loss(logits, iou_pred, target, config.focal_weight, config.dice_weight,
                   config.iou_weight)
    out["iou_pred"] = iou_pred
    return out, low_res


def _upsample(low_res: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(low_res, size=tuple(size), mode="bilinear", align_corners=False)


class InteractiveSam(torch.nn.Module):
    """SAM with the interactive training step as its ``forward``, so DDP can wrap it.

    (DistributedDataParallel synchronises gradients of what runs inside its ``forward``; the
    step calls SAM's three parts directly, so it must be that forward.)
    """

    def __init__(self, sam: Sam, config: TrainConfig, clip: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.sam, self.config = sam, config
        # Text prompts' training: a frozen CLIP, whose image embeddings of the objects are the
        # first interaction of a share of the prompts. A plain attribute, not a submodule: it
        # is neither trained nor saved with SAM.
        object.__setattr__(self, "clip", clip)

    def forward(self, images: torch.Tensor, masks: torch.Tensor,
                generator: torch.Generator | None = None,
                input_sizes: torch.Tensor | None = None,
                captions: list[str] | None = None) -> dict:
        text = None
        if self.clip is not None and self.config.text_share > 0:
            text = text_first_prompts(self.clip, images, masks, self.config.text_share,
                                      generator, captions, self.config.text_captions)
        return interactive_step(self.sam, images, masks, self.config, generator,
                                input_sizes=input_sizes, text=text)


@torch.no_grad()
def text_first_prompts(clip, images: torch.Tensor, masks: torch.Tensor, share: float,
                       generator: torch.Generator | None = None,
                       captions: list[str] | None = None, caption_share: float = 0.0,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Which prompts start from text, and their CLIP embeddings (SAM §7.5, App. D.5).

    Each of the P = B*K prompts is a text prompt with probability ``share`` if its object is
    large enough (the paper drops small masks); its embedding is the frozen CLIP's *image*
    embedding of the paper's crop of the object -- at inference the *text* embedding of a
    caption takes its place. Not the paper's: with ``captions`` (P strings, "" where no
    caption names the object) a text prompt is, with probability ``caption_share``, the *text*
    embedding of its caption instead. Returns (P, D) embeddings (zero where not text) and (P,)
    bool.
    """
    B, K, H, W = masks.shape
    flat = masks.flatten(0, 1)  # (P, H, W)
    coins = torch.rand(len(flat), generator=generator, device=masks.device) < share
    rows = coins & large_enough(flat, max(H, W))  # (P,)
    said = torch.zeros_like(rows)  # (P,): the text prompts given as a caption
    if captions is not None and caption_share > 0:
        if len(captions) != len(flat):
            raise ValueError(f"captions must be one per mask, {len(flat)}; got {len(captions)}")
        named = torch.tensor([bool(c) for c in captions], device=masks.device)
        said = rows & named & (torch.rand(len(flat), generator=generator,
                                          device=masks.device) < caption_share)
    embeddings = torch.zeros(len(flat), clip.config.embed_dim, device=masks.device)
    chosen = (rows & ~said).nonzero()[:, 0].tolist()
    if chosen:
        size = clip.config.image_size
        crops = torch.stack([object_crop(images[i // K], flat[i], size, generator)
                             for i in chosen])  # (n, 3, S, S)
        embeddings[chosen] = clip.embed_images(crops).float()
    spoken = said.nonzero()[:, 0].tolist()
    if spoken:
        embeddings[spoken] = clip.embed_text([captions[i] for i in spoken]).float()
    return embeddings, rows
