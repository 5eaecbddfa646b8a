"""Planted mistakes of lab 04 (see __init__)."""

_SOFT = "(p * t).sum((-2, -1)) / (p + t - p * t).sum((-2, -1))"  # IoU of probabilities
_PROBS = "p = torch.sigmoid(logits)\n    t = targets.float()\n    "

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    "noisy_box": [
        ("noise_image_scale", "side = (box[:, 2:] - box[:, :2]).repeat(1, 2)",
         "side = torch.tensor([W, H, W, H], dtype=torch.float32)"),
        ("no_max_noise", "shift = (0.1 * side * noise).clamp(-20, 20)",
         "shift = 0.1 * side * noise"),
        ("xy_swapped", "torch.stack([x0, y0, x1, y1], dim=1)",
         "torch.stack([y0, x0, y1, x1], dim=1)"),
        ("no_image_clip", "return (box + shift).clamp(min=0).minimum(last)",
         "return box + shift"),
        ("no_tenth", "shift = (0.1 * side * noise).clamp(-20, 20)",
         "shift = (side * noise).clamp(-20, 20)"),
        ("exclusive_corners", "torch.stack([x0, y0, x1, y1], dim=1)",
         "torch.stack([x0, y0, x1 + 1, y1 + 1], dim=1)"),
    ],
    "error_click": [
        ("labels_swapped", "labels = fn.flatten(1)[rows, index].long()",
         "labels = fp.flatten(1)[rows, index].long()"),
        ("fn_only", "error = (fn | fp).flatten(1).float()", "error = fn.flatten(1).float()"),
        ("xy_swapped", "torch.stack([index % W, index // W], dim=1)",
         "torch.stack([index // W, index % W], dim=1)"),
        # pick FN or FP with equal odds, then a pixel inside it
        ("region_coin_flip", "error = (fn | fp).flatten(1).float()",
         "error = (fn / fn.sum((1, 2), keepdim=True).clamp(min=1)"
         " + fp / fp.sum((1, 2), keepdim=True).clamp(min=1)).flatten(1)"),
        ("ignores_generator", "torch.multinomial(weights, 1, generator=generator)",
         "torch.multinomial(weights, 1)"),
        ("no_padding", "labels = torch.where(has_error, labels, -1)", "labels = labels"),
    ],
    "next_round": [
        ("argmin", "best = iou_pred.argmax(dim=1)", "best = iou_pred.argmin(dim=1)"),
        ("always_first", "best = iou_pred.argmax(dim=1)",
         "best = torch.zeros(len(iou_pred), dtype=torch.long)"),
        ("thresholded", "return points, labels, mask_input",
         "return points, labels, (mask_input > 0).float()"),
        ("not_detached", "low_res[rows, best][:, None].detach()", "low_res[rows, best][:, None]"),
        ("nearest_upsampling", 'mode="bilinear",\n                         align_corners=False)',
         'mode="nearest")'),
        ("threshold_half", "align_corners=False)[:, 0] > 0", "align_corners=False)[:, 0] > 0.5"),
    ],
    "focal_loss": [
        ("no_gamma", "loss = alpha_t * (1 - p_t) ** gamma * ce", "loss = alpha_t * ce"),
        ("no_alpha", "loss = alpha_t * (1 - p_t) ** gamma * ce", "loss = (1 - p_t) ** gamma * ce"),
        ("alpha_swapped", "alpha_t = alpha * t + (1 - alpha) * (1 - t)",
         "alpha_t = (1 - alpha) * t + alpha * (1 - t)"),
        ("sum_pixels", ".mean(dim=-1)", ".sum(dim=-1)"),
        ("gamma_on_p", "(1 - p_t) ** gamma", "(1 - p) ** gamma"),
        ("mean_all", "return loss.flatten(-2).mean(dim=-1)", "return loss.mean()"),
    ],
    "sam_loss": [
        ("mean_over_masks", "mask_loss = per_mask[rows, best].mean()",
         "mask_loss = per_mask.mean()"),
        ("weights_swapped",
         "20 * losses.focal_loss(logits, targets) + losses.dice_loss(logits, targets)",
         "losses.focal_loss(logits, targets) + 20 * losses.dice_loss(logits, targets)"),
        ("iou_only_best", "F.mse_loss(iou_pred, actual_iou)",
         "F.mse_loss(iou_pred[rows, best], actual_iou[rows, best])"),
        # The "IoU target not detached": only a differentiable (soft) IoU can leak.
        ("iou_target_not_detached", "actual_iou = losses.mask_iou(logits, targets)",
         f"{_PROBS}actual_iou = {_SOFT}"),
        ("iou_target_soft", "actual_iou = losses.mask_iou(logits, targets)",
         f"{_PROBS}actual_iou = ({_SOFT}).detach()"),
        ("no_focal_weight", "20 * losses.focal_loss(logits, targets)",
         "losses.focal_loss(logits, targets)"),
        ("iou_l1", "F.mse_loss(iou_pred, actual_iou)", "F.l1_loss(iou_pred, actual_iou)"),
    ],
}
