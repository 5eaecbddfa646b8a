"""What does a SAM image encoder know that text prompts need? A linear probe.

    python benchmarks/probe_text_features.py                    # ~1 minute, the shipped tiny
    python benchmarks/probe_text_features.py --weights runs/text/t3000/model.safetensors

Text prompts name objects by class and colour ("the purple liquid"). The decoder can only find
such an object if the image embedding it attends to says what is where. For every large enough
object (text prompting's minimum size) the embedding is averaged over the object's mask, and a
linear classifier learns the object's class and its colour on training scenes; its accuracy on
held-out scenes, beside the majority-class baseline, says how much of that the features hold.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from samteach import build_sam
from samteach.evaluation.heldout import held_out_scenes
from samteach.text.pairs import large_enough
from samteach.training.scenes import training_scene
from samteach.training.step import preprocess_batch


def pooled_features(sam, records, desc: str):
    """Per large enough object: its mask-pooled embedding (C,), class name and colour."""
    size = sam.image_encoder.img_size
    rows = []
    for record in tqdm(records, desc=desc):
        image = torch.zeros(3, size, size, dtype=torch.uint8)
        h, w = record.image.shape[:2]
        image[:, :h, :w] = torch.from_numpy(record.image).permute(2, 0, 1)
        with torch.no_grad():
            embedding = sam.image_encoder(preprocess_batch(sam, image[None]))[0]  # (C, h', w')
        masks = torch.zeros(len(record), size, size)
        masks[:, :h, :w] = torch.from_numpy(record.masks).float()
        weights = F.adaptive_avg_pool2d(masks[:, None], embedding.shape[-1])[:, 0]  # (n, h', w')
        for i in large_enough(masks > 0, size).nonzero()[:, 0].tolist():
            pooled = (embedding * weights[i] / weights[i].sum()).sum((1, 2))
            rows.append((pooled.numpy(), record.class_names[i],
                         record.attributes[i].get("color", "none")))
    return rows


def probe(train, test, which: int) -> tuple[float, float, int]:
    """Held-out accuracy of a linear classifier of label ``which`` (1 class, 2 colour), the
    majority baseline and the number of labels."""
    labels = sorted({r[which] for r in train + test})
    index = {label: i for i, label in enumerate(labels)}
    x_train = torch.tensor(np.stack([r[0] for r in train]))
    x_test = torch.tensor(np.stack([r[0] for r in test]))
    y_train = torch.tensor([index[r[which]] for r in train])
    y_test = torch.tensor([index[r[which]] for r in test])
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_train.shape[1], len(labels))
    optimizer = torch.optim.Adam(linear.parameters(), 1e-2, weight_decay=1e-4)
    for _ in range(500):
        loss = F.cross_entropy(linear((x_train - mean) / std), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (linear((x_test - mean) / std).argmax(1) == y_test).float().mean().item()
    majority = np.bincount(y_test.numpy()).max() / len(y_test)
    return accuracy, majority, len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="tiny",
                        help="shipped weights of the tiny preset, or a checkpoint file")
    parser.add_argument("--train-scenes", type=int, default=600)
    parser.add_argument("--test-scenes", type=int, default=60, help="per held-out set")
    args = parser.parse_args()
    sam = build_sam(args.weights) if Path(args.weights).is_file() else build_sam(
        "tiny", pretrained=args.weights)
    size = sam.image_encoder.img_size
    train = pooled_features(sam, [training_scene(9_000_000 + i, size, generic_share=0.5,
                                                 nonsquare_share=0.25)[0]
                                  for i in range(args.train_scenes)], "training scenes")
    test = pooled_features(sam, [r for kind in ("lab", "generic")
                                 for r in held_out_scenes(kind, args.test_scenes, size)],
                           "held-out scenes")
    for name, which in (("class", 1), ("colour", 2)):
        accuracy, majority, n = probe(train, test, which)
        print(f"{args.weights}: {name} from mask-pooled image features, held-out accuracy "
              f"{accuracy:.3f} (majority {majority:.3f}; {n} labels, {len(train)} training and "
              f"{len(test)} held-out objects)")


if __name__ == "__main__":
    main()
