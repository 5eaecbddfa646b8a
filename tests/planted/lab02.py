"""Planted mistakes of lab 02 (see __init__)."""

_ONE_CONV = (
    "nn.Conv2d(1, hidden, kernel_size=2, stride=2),  # 0: (B, C_in/4, 2H, 2W)\n"
    "        LayerNorm2d(hidden),  # 1\n"
    "        nn.GELU(),  # 2\n"
    "        nn.Conv2d(hidden, mask_in_chans, kernel_size=2, stride=2),  # 3: (B, C_in, H, W)\n"
)

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    "fourier_features": [
        ("no_centring", "((2 * coords - 1) @ gaussian_matrix)", "(coords @ gaussian_matrix)"),
        # the two readings of one set of numbers, each planted
        ("pi_or_half_centring", "2 * math.pi * ((2 * coords - 1)", "math.pi * ((2 * coords - 1)"),
        ("pi_or_half_centring", "((2 * coords - 1) @ gaussian_matrix)",
         "((coords - 0.5) @ gaussian_matrix)"),
        ("xy_swapped", "((2 * coords - 1) @ gaussian_matrix)",
         "((2 * coords.flip(-1) - 1) @ gaussian_matrix)"),
        ("no_two_pi", "2 * math.pi * ((2 * coords - 1)", "((2 * coords - 1)"),
        ("cos_first", "[torch.sin(angles), torch.cos(angles)]",
         "[torch.cos(angles), torch.sin(angles)]"),
        ("interleaved", "torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)",
         "torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)"),
    ],
    "embed_points": [
        ("xy_swapped", "pe = prompt_encoder.pe_layer._pe_encoding(xy)",
         "pe = prompt_encoder.pe_layer._pe_encoding(xy.flip(-1))"),
        ("no_pixel_centre", "xy = torch.cat(xy, dim=1) + 0.5", "xy = torch.cat(xy, dim=1)"),
        ("not_padded_frame", "xy = xy / torch.tensor([S_w, S_h], device=device)",
         "h, w = resize.get_preprocess_shape(*original_size, max(S_h, S_w))\n"
         "    xy = xy / torch.tensor([w, h], device=device)"),
        ("no_resize", "xy.append(resize.apply_coords_torch(coords, original_size))",
         "xy.append(coords.float())"),
        ("pad_keeps_position", "pe = pe * (kinds != -1).unsqueeze(-1)", "pe = pe"),
        ("label_offset", "table[kinds + 1]", "table[kinds]"),
        ("box_corner_labels", "torch.tensor([2, 3], device=device)",
         "torch.tensor([3, 2], device=device)"),
        ("pad_rule", "if boxes is None:  # SAM's pad", "if True:  # SAM's pad"),
        ("boxes_not_resized", "resize.apply_boxes_torch(boxes, original_size).reshape(B, 2, 2)",
         "boxes.float().reshape(B, 2, 2)"),
        ("pad_label_zero", "torch.full((B, 1), -1, device=device)",
         "torch.full((B, 1), 0, device=device)"),
    ],
    "build_mask_downscaling": [
        ("relu", "nn.GELU(),  # 2", "nn.ReLU(),  # 2"),
        ("no_layernorm", "LayerNorm2d(hidden),  # 1", "nn.Identity(),  # 1"),
        ("one_stride4_conv", _ONE_CONV,
         "nn.Conv2d(1, mask_in_chans, kernel_size=4, stride=4),  # 0-3: one conv\n"),
        ("torch_layernorm", "LayerNorm2d(hidden),  # 1", "nn.LayerNorm(hidden),  # 1"),
        ("channels", "hidden = mask_in_chans // 4", "hidden = mask_in_chans"),
        ("no_final_conv", "        nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),  # 6",
         "        # 6: forgotten"),
        ("norm_after_gelu", "LayerNorm2d(hidden),  # 1\n        nn.GELU(),  # 2",
         "nn.GELU(),  # 1\n        LayerNorm2d(hidden),  # 2"),
    ],
}
