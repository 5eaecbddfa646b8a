"""Planted mistakes of lab 07 (see __init__): edits of solutions/07_text_prompts.ipynb."""

PLANTED: dict[str, list[tuple[str, str, str]]] = {
    'clip_loss': [
        ('not_normalised',
         'images = F.normalize(image_embeddings, dim=-1)',
         'images = image_embeddings'),
        ('one_direction',
         '(F.cross_entropy(logits, answers) + F.cross_entropy(logits.T, answers)) / 2',
         'F.cross_entropy(logits, answers)'),
        ('scale_not_exponentiated',
         'logits = log_scale.exp() * images',
         'logits = log_scale * images'),
        ('scale_divides',
         'logits = log_scale.exp() * images @ texts.T',
         'logits = images @ texts.T / log_scale.exp()'),
        ('no_scale',
         'logits = log_scale.exp() * images',
         'logits = images'),
        ('not_halved',
         'F.cross_entropy(logits.T, answers)) / 2',
         'F.cross_entropy(logits.T, answers))'),
        ('detached',
         'return (F.cross_entropy(logits, answers) + F.cross_entropy(logits.T, a'
         'nswers)) / 2',
         'return torch.tensor(float((F.cross_entropy(logits, answers) + F.cross_'
         'entropy(logits.T, answers)) / 2))'),
    ],
    'paper_crop': [
        ('draws_swapped',
         'u_grow, u_zero = torch.rand',
         'u_zero, u_grow = torch.rand'),
        ('no_grow',
         'half = factor * max(',
         'half = max('),
        ('shorter_side',
         'half = factor * max(',
         'half = factor * min('),
        ('centre_pixel_index',
         'cx, cy = (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2',
         'cx, cy = (x0 + x1) / 2, (y0 + y1) / 2'),
        ('box_exclusive',
         'cx, cy = (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2  # the centre, in pixel '
         'edges\n    half = factor * max(x1 - x0 + 1, y1 - y0 + 1) / 2',
         'cx, cy = (x0 + x1) / 2, (y0 + y1) / 2  # the centre, in pixel edges\n  '
         '  half = factor * max(x1 - x0, y1 - y0) / 2'),
        ('zero_inside',
         'pixels = pixels * mask',
         'pixels = pixels * ~mask'),
        ('coin_flipped',
         'if u_zero < zero_outside:',
         'if u_zero > zero_outside:'),
        ('half_is_side',
         'y1 - y0 + 1) / 2  # half',
         'y1 - y0 + 1)  # half'),
    ],
    'embed_text_prompt': [
        ('not_normalised',
         'prompt_encoder.text_projection(F.normalize(text, dim=-1))',
         'prompt_encoder.text_projection(text)'),
        ('no_type_embedding',
         'token = token + prompt_encoder.text_embed.weight',
         'token = token'),
        ('text_first',
         'torch.cat([sparse, token[:, None]], dim=1)',
         'torch.cat([token[:, None], sparse], dim=1)'),
        ('no_pad_alone',
         '    if points is None and boxes is None:  # text alone: zero points, a'
         'nd SAM adds its pad\n        points = (text.new_zeros(B, 0, 2), torch.z'
         'eros(B, 0, dtype=torch.long))\n    sparse, _ = prompt_encoder(points, b'
         "oxes, None)  # (B, T, C): SAM's tokens",
         '    if points is None and boxes is None:\n        sparse = text.new_zer'
         'os(B, 0, prompt_encoder.embed_dim)\n    else:\n        sparse, _ = promp'
         't_encoder(points, boxes, None)'),
        ('pad_with_box',
         'sparse, _ = prompt_encoder(points, boxes, None)',
         'sparse, _ = prompt_encoder(points if points is not None else (text.new'
         '_zeros(B, 0, 2), torch.zeros(B, 0, dtype=torch.long)), boxes, None, pa'
         'd=True)'),
    ],
}
