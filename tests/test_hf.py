"""Records as a `datasets.Dataset`, prompt sampling with `with_transform`, batching."""

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from samteach.data import SegmentationRecord
from samteach.data.generic import make_generic_scene
from samteach.data.hf import (
    PromptSampler,
    collate_prompts,
    records_dataset,
    scenes_dataset,
    to_record,
    to_row,
)
from samteach.data.scenes import make_scene


@pytest.fixture(scope="module")
def scenes():
    return scenes_dataset(12, size=96, seed=3, progress=False)


def assert_same_record(a: SegmentationRecord, b: SegmentationRecord) -> None:
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert (a.class_names, a.parents, a.image_id) == (b.class_names, b.parents, b.image_id)


def test_rows_round_trip_exactly():
    record = make_scene(4, (80, 112))
    assert_same_record(to_record(to_row(record)), record)


def test_scenes_dataset_holds_the_scenes(scenes):
    assert len(scenes) == 12 and set(scenes.column_names) == {
        "image", "masks", "class_names", "parents", "image_id"}
    assert_same_record(to_record(scenes[5]), make_scene(8, 96))


def test_generic_scenes_use_the_same_adapter():
    ds = scenes_dataset(3, size=(64, 96), seed=10, progress=False, kind="generic")
    assert_same_record(to_record(ds[2]), make_generic_scene(12, (64, 96)))


def test_save_and_load_from_disk(scenes, tmp_path):
    scenes.save_to_disk(str(tmp_path / "scenes"))
    loaded = datasets.load_from_disk(str(tmp_path / "scenes"))
    for i in (0, 11):
        assert_same_record(to_record(loaded[i]), to_record(scenes[i]))


def test_records_of_different_sizes():
    records = [make_scene(0, 64), make_scene(1, (96, 48))]
    ds = records_dataset(records)
    for row, record in zip(ds, records, strict=True):
        assert_same_record(to_record(row), record)


def test_prompt_sampler_picks_k_masks_and_prompts_them(scenes):
    example = scenes.with_transform(PromptSampler(k=3, seed=0))[2]
    record = to_record(scenes[2])
    index = example["mask_index"].numpy()
    assert len(set(index.tolist())) == 3  # distinct masks when the image has enough
    assert torch.equal(example["masks"], torch.from_numpy(record.masks[index]))
    assert example["class_names"] == [record.class_names[i] for i in index]
    assert example["image"].shape == (3, 96, 96) and example["image"].dtype == torch.uint8
    assert example["points"].shape == (3, 2, 2) and example["labels"].shape == (3, 2)
    for k in range(3):
        if not example["is_box"][k]:  # a foreground click inside its mask, then padding
            x, y = example["points"][k, 0].long().tolist()
            assert example["masks"][k, y, x] and example["labels"][k].tolist() == [1, -1]
        else:
            assert example["labels"][k].tolist() == [2, 3]


def test_images_with_few_masks_repeat_some():
    ds = records_dataset([make_scene(0, 64)])
    n = len(to_record(ds[0]))
    index = ds.with_transform(PromptSampler(k=n + 3, seed=1))[0]["mask_index"]
    assert sorted(set(index.tolist())) == list(range(n)) and len(index) == n + 3


def test_sampling_is_reproducible_and_fresh(scenes):
    a = scenes.with_transform(PromptSampler(k=2, seed=5))
    b = scenes.with_transform(PromptSampler(k=2, seed=5))
    first, again = a[0], b[0]
    assert torch.equal(first["points"], again["points"])
    assert torch.equal(first["mask_index"], again["mask_index"])
    later = a[0]  # the same image, next epoch: new prompts
    assert not (torch.equal(later["points"], first["points"])
                and torch.equal(later["mask_index"], first["mask_index"]))


def test_dataloader_batches_b_images_times_k_prompts(scenes):
    loader = DataLoader(scenes.with_transform(PromptSampler(k=4, seed=0)), batch_size=5,
                        collate_fn=collate_prompts)
    batch = next(iter(loader))
    assert batch["images"].shape == (5, 3, 96, 96)
    assert batch["masks"].shape == (5, 4, 96, 96) and batch["masks"].dtype == torch.bool
    assert batch["points"].shape == (5, 4, 2, 2) and batch["labels"].shape == (5, 4, 2)
    assert batch["is_box"].shape == (5, 4) and len(batch["class_names"]) == 5
    assert sum(1 for _ in loader) == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be a positive int, the number of scenes"):
        scenes_dataset(0)
    with pytest.raises(ValueError, match="kind must be 'lab' or 'generic'"):
        scenes_dataset(1, kind="labs")
    with pytest.raises(ValueError, match="k must be a positive int, the number of masks"):
        PromptSampler(k=0)
    with pytest.raises(ValueError, match="examples must share one image size"):
        sampler = PromptSampler(k=1)
        rows = records_dataset([make_scene(0, 64), make_scene(1, 96)]).with_transform(sampler)
        collate_prompts([rows[0], rows[1]])
    with pytest.raises(ValueError, match="examples must hold at least one"):
        collate_prompts([])
