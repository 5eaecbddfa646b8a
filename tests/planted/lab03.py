"""Planted mistakes of lab 03 (see __init__)."""

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    "downsampled_attention": [
        ("softmax_axis", ".softmax(dim=-1)", ".softmax(dim=-2)"),
        ("scale_full_width", "c = q.shape[-1]", "c = layer.internal_dim"),
        ("no_scale", " / math.sqrt(c)", ""),
        ("heads_not_separated",
         "q, k, v = (x.unflatten(-1, (h, -1)).transpose(1, 2) for x in (q, k, v))",
         "q, k, v = (x.unsqueeze(1) for x in (q, k, v))"),
        ("heads_reshaped", "out = (weights @ v).transpose(1, 2).flatten(2)",
         "out = (weights @ v).reshape(q.shape[0], q.shape[2], -1)"),
        ("head_width_full", "x.unflatten(-1, (h, -1))",
         "x.unflatten(-1, (-1, layer.embedding_dim // h))"),
    ],
    "two_way_block": [
        ("first_layer_residual", "queries = block.self_attn(queries, queries, queries)",
         "queries = queries + block.self_attn(queries, queries, queries)"),
        ("first_layer_pe", "if block.skip_first_layer_pe:", "if False:"),
        ("no_self_residual", "queries = queries + block.self_attn(q, q, queries)",
         "queries = block.self_attn(q, q, queries)"),
        ("pe_on_values", "block.cross_attn_token_to_image(q, k, keys)",
         "block.cross_attn_token_to_image(q, k, k)"),
        ("stale_queries", "    q = queries + query_pe\n    keys = block.norm4",
         "    keys = block.norm4"),
        ("image_step_no_pe", "block.cross_attn_image_to_token(k, q, queries)",
         "block.cross_attn_image_to_token(keys, queries, queries)"),
    ],
    "hypernetwork_masks": [
        ("off_by_one", "hs[:, 1 : 1 + M]", "hs[:, :M]"),
        ("shared_mlp", "[mlp(mask_tokens[:, i])", "[hypernetworks[0](mask_tokens[:, i])"),
        ("hw_transposed", "masks.unflatten(2, (h, w))", "masks.unflatten(2, (w, h))"),
        ("reshape_not_permute", "weights @ upscaled.flatten(2)",
         "(upscaled.reshape(B, h * w, c) @ weights.transpose(1, 2)).transpose(1, 2)"),
    ],
}
