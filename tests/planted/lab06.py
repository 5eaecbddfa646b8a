"""Planted mistakes of lab 06 (see __init__): edits of solutions/06_data_engine.ipynb."""

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    "stability_score": [
        ("ge_threshold", "mask_logits > mask_threshold + offset",
         "mask_logits >= mask_threshold + offset"),
        ("inverted", "return strict.sum(dim=(-2, -1)) / loose.sum(dim=(-2, -1))",
         "return loose.sum(dim=(-2, -1)) / strict.sum(dim=(-2, -1))"),
        ("one_sided", "mask_logits > mask_threshold - offset", "mask_logits > mask_threshold"),
        ("no_threshold", "mask_logits > mask_threshold + offset", "mask_logits > offset"),
        ("sum_all", "strict.sum(dim=(-2, -1)) / loose.sum(dim=(-2, -1))",
         "strict.sum() / loose.sum()"),
        ("sigmoid_first", "strict = mask_logits > mask_threshold + offset  # (..., H, W) the "
         "smaller mask\n    loose = mask_logits > mask_threshold - offset",
         "strict = mask_logits.sigmoid() > mask_threshold + offset\n"
         "    loose = mask_logits.sigmoid() > mask_threshold - offset"),
        ("union_as_sum", "return strict.sum(dim=(-2, -1)) / loose.sum(dim=(-2, -1))",
         "return strict.sum(dim=(-2, -1)) / (strict.sum(dim=(-2, -1)) + loose.sum(dim=(-2, -1)))"),
    ],
    "nms": [
        ("ascending", "descending=True", "descending=False"),
        ("ge_threshold", "iou[i] > iou_threshold", "iou[i] >= iou_threshold"),
        ("suppress_all",
         "        if suppressed[i]:\n            continue  # a suppressed box suppresses nothing\n"
         "        kept.append(i)\n",
         "        if not suppressed[i]:\n            kept.append(i)\n"),
        ("order_positions", "return order[kept]", "return kept"),
        ("original_order", "return order[kept]", "return order[kept].sort().values"),
        ("bool_mask", "return order[kept]",
         "return torch.zeros(len(scores), dtype=torch.bool).index_fill(0, order[kept], True)"),
        ("threshold_inverted", "iou[i] > iou_threshold", "iou[i] < iou_threshold"),
        ("unsorted", "order = torch.argsort(scores, descending=True, stable=True)",
         "order = torch.arange(len(scores))"),
    ],
}
