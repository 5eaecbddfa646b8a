"""Planted mistakes of lab 01 (see __init__): edits of solutions/01_patch_embedding.ipynb."""

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    "patchify": [
        ("channels_last_order", "x.permute(0, 2, 4, 1, 3, 5)", "x.permute(0, 2, 4, 3, 5, 1)"),
        ("grid_transposed", "x.permute(0, 2, 4, 1, 3, 5)", "x.permute(0, 4, 2, 1, 3, 5)"),
        ("pixels_transposed", "x.permute(0, 2, 4, 1, 3, 5)", "x.permute(0, 2, 4, 1, 5, 3)"),
        ("reshape_without_permute", "x = x.permute(0, 2, 4, 1, 3, 5)", "x = x"),
        ("unfold_not_transposed", "return x.reshape(B, h // p, w // p, C * p * p)",
         "return F.unfold(images, p, stride=p).reshape(B, h // p, w // p, C * p * p)"),
    ],
    "window_partition": [
        ("no_permute", "x = x.permute(0, 1, 3, 2, 4, 5)", "x = x"),
        ("pad_front", "F.pad(x, (0, 0, 0, pad_w, 0, pad_h))",
         "F.pad(x, (0, 0, pad_w, 0, pad_h, 0))"),
        ("pad_full_window", "(S - H % S) % S, (S - W % S) % S", "S - H % S, S - W % S"),
        ("windows_column_major", "x = x.permute(0, 1, 3, 2, 4, 5)",
         "x = x.permute(0, 3, 1, 2, 4, 5)"),
        ("returns_unpadded_size", "return x.reshape(-1, S, S, C), (Hp, Wp)",
         "return x.reshape(-1, S, S, C), (H, W)"),
    ],
    "attention": [
        ("softmax_axis", "logits.softmax(dim=-1)", "logits.softmax(dim=-2)"),
        ("no_scale", "(q @ k.transpose(-2, -1)) * c**-0.5", "(q @ k.transpose(-2, -1))"),
        ("offset_sign", "offsets[:, None] - offsets[None, :]",
         "offsets[None, :] - offsets[:, None]"),
        ("axes_swapped", "table(rel_pos_h, H), table(rel_pos_w, W)",
         "table(rel_pos_w, H), table(rel_pos_h, W)"),
        ("no_rel_pos", "logits = logits + bias.reshape(B, nh, N, N)", "logits = logits"),
        ("scale_by_c", "(q @ k.transpose(-2, -1)) * c**-0.5", "(q @ k.transpose(-2, -1)) / c"),
        ("no_offset", "offsets[:, None] - offsets[None, :] + size - 1",
         "offsets[:, None] - offsets[None, :]"),
        ("bias_from_scaled_query", "q_grid = q.reshape(B, nh, H, W, c)",
         "q_grid = (q * c**-0.5).reshape(B, nh, H, W, c)"),
    ],
}
