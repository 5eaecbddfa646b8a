"""SA-1B reader and writer: exact RLE round trips on files written here (no real data read)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from samteach.data.record import SegmentationRecord
from samteach.data.sa1b import SA1B, SA1BImage, read_sa1b, write_sa1b

H, W = 32, 48


def _record(image_id: str = "7") -> SegmentationRecord:
    rng = np.random.default_rng(0)
    masks = np.zeros((3, H, W), bool)
    masks[0, 0:10, 40:48] = True  # touches the top and right borders
    masks[1, 10:26, 10:30] = True
    masks[1, 14:22, 16:24] = False  # a ring: 16x20 minus an 8x8 hole
    masks[2] = rng.random((H, W)) < 0.3  # speckle: hundreds of runs
    y, x = np.mgrid[:H, :W]  # smooth, so the JPEG test can compare pixels closely
    image = np.stack([5 * x, 7 * y, 200 - 2 * x], axis=-1).astype(np.uint8)
    return SegmentationRecord(image, masks, ("a", "b", "c"), image_id=image_id)


SCORES = {"predicted_iou": [0.91, 0.88, 0.95], "stability_score": [0.97, 0.96, 0.99],
          "point_coords": [[44.5, 3.5], [12.0, 12.0], [1.0, 2.0]]}


@pytest.fixture
def written(tmp_path):
    record = _record()
    write_sa1b(tmp_path / "sa_7.json", record, tmp_path / "sa_7.png", **SCORES)
    return tmp_path, record


def test_round_trip_is_exact(written):
    folder, record = written
    loaded = read_sa1b(folder / "sa_7.json")
    assert isinstance(loaded, SA1BImage) and len(loaded) == 3
    assert loaded.record.masks.dtype == bool
    np.testing.assert_array_equal(loaded.record.masks, record.masks)
    np.testing.assert_array_equal(loaded.record.image, record.image)  # PNG: lossless
    assert loaded.record.class_names == ("object",) * 3
    assert loaded.record.parents == (-1, -1, -1)
    assert loaded.record.image_id == "7"


def test_bbox_area_and_metadata(written):
    folder, record = written
    annotations = read_sa1b(folder / "sa_7.json").annotations
    assert [a["id"] for a in annotations] == [0, 1, 2]
    assert annotations[0]["bbox"] == [40, 0, 8, 10] and annotations[0]["area"] == 80
    assert annotations[1]["bbox"] == [10, 10, 20, 16] and annotations[1]["area"] == 16 * 20 - 64
    ys, xs = np.nonzero(record.masks[2])
    assert annotations[2]["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
    assert annotations[2]["area"] == record.masks[2].sum()
    for key in ("predicted_iou", "stability_score"):
        assert [a[key] for a in annotations] == SCORES[key]
    assert [a["point_coords"] for a in annotations] == [[p] for p in SCORES["point_coords"]]
    assert all(a["crop_box"] == [0, 0, W, H] for a in annotations)
    assert all("segmentation" not in a for a in annotations)


def test_bbox_agrees_with_pycocotools(written):
    from pycocotools import mask as mask_utils

    folder, _ = written
    for annotation in json.loads((folder / "sa_7.json").read_text())["annotations"]:
        rle = dict(annotation["segmentation"], counts=annotation["segmentation"]["counts"].encode())
        assert mask_utils.toBbox(rle).tolist() == annotation["bbox"]
        assert int(mask_utils.area(rle)) == annotation["area"]


def test_json_is_laid_out_like_sa1b(written):
    folder, _ = written
    data = json.loads((folder / "sa_7.json").read_text())
    assert data["image"] == {"image_id": 7, "width": W, "height": H, "file_name": "sa_7.png"}
    segmentation = data["annotations"][1]["segmentation"]
    assert segmentation["size"] == [H, W] and isinstance(segmentation["counts"], str)


def test_jpeg_photo_and_no_scores(tmp_path):
    record = _record("sa_x")
    write_sa1b(tmp_path / "sa_x.json", record, tmp_path / "sa_x.jpg")
    loaded = read_sa1b(tmp_path / "sa_x.json")
    np.testing.assert_array_equal(loaded.record.masks, record.masks)
    assert loaded.record.image_id == "sa_x"  # not all digits: stays a string
    assert loaded.record.image.shape == (H, W, 3)
    # JPEG (quality 95) is lossy: close, not equal. A swapped channel would be far off.
    assert np.abs(loaded.record.image.astype(int) - record.image.astype(int)).max() <= 12
    assert set(loaded.annotations[0]) == {"id", "bbox", "area", "crop_box"}  # none invented


def test_explicit_image_path(tmp_path):
    record = _record()
    write_sa1b(tmp_path / "ann" / "a.json", record)  # no photo written
    Image.fromarray(record.image).save(tmp_path / "photo.png")
    loaded = read_sa1b(tmp_path / "ann" / "a.json", image_path=tmp_path / "photo.png")
    np.testing.assert_array_equal(loaded.record.masks, record.masks)


def test_folder_dataset(tmp_path):
    for image_id in ("2", "10"):
        write_sa1b(tmp_path / f"sa_{image_id}.json", _record(image_id),
                   tmp_path / f"sa_{image_id}.png")
    dataset = SA1B(tmp_path)
    assert len(dataset) == 2
    assert [p.name for p in dataset.json_paths] == ["sa_10.json", "sa_2.json"]  # by name
    assert isinstance(dataset[0], SegmentationRecord) and dataset[0].image_id == "10"
    assert [r.image_id for r in dataset] == ["10", "2"]
    assert dataset.read(-1).annotations[0]["id"] == 0
    with pytest.raises(IndexError, match="index 2 is out of range"):
        dataset[2]


def test_missing_files(tmp_path, written):
    folder, _ = written
    with pytest.raises(ValueError, match="json_path .*nope.json does not exist"):
        read_sa1b(tmp_path / "nope.json")
    (folder / "sa_7.png").unlink()
    with pytest.raises(ValueError, match=r"image_path .*sa_7\.png does not exist"):
        read_sa1b(folder / "sa_7.json")


def _edit(folder, change):
    path = folder / "sa_7.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def test_segmentation_size_differs_from_image(written):
    def change(data):
        data["annotations"][1]["id"] = 4242
        data["annotations"][1]["segmentation"]["size"] = [H, W + 1]
    path = _edit(written[0], change)
    with pytest.raises(ValueError, match=r"annotation id 4242 .*size \[32, 49\].*\[32, 48\]"):
        read_sa1b(path)


def test_truncated_counts(written):
    def change(data):
        counts = data["annotations"][2]["segmentation"]["counts"]
        data["annotations"][2]["segmentation"]["counts"] = counts[: len(counts) // 2]
    with pytest.raises(ValueError, match="annotation id 2 .*not a valid COCO RLE"):
        read_sa1b(_edit(written[0], change))


def test_declared_size_differs_from_photo(written):
    path = _edit(written[0], lambda data: data["image"].update(width=50))
    with pytest.raises(ValueError, match="image_path .* is 48x32 .* describes a 50x32 image"):
        read_sa1b(path)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not valid JSON"),
    ('{"images": []}', "is not an SA-1B annotation file"),
    ('{"image": {}, "annotations": []}', "has no 'image_id'"),
    ('{"image": {"image_id": 1}, "annotations": [{"id": 5, "segmentation": [1, 2]}]}',
     r"annotation id 5 \(annotations\[0\]\) needs a 'segmentation'"),
])
def test_malformed_json(tmp_path, text, message):
    (tmp_path / "sa_1.json").write_text(text)
    with pytest.raises(ValueError, match=f"json_path .*sa_1.json.*{message}"):
        read_sa1b(tmp_path / "sa_1.json")


def test_bad_folder(tmp_path):
    with pytest.raises(ValueError, match="folder .*missing does not exist"):
        SA1B(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no .json annotation files"):
        SA1B(tmp_path)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"predicted_iou": [0.9, 0.8]}, ValueError, r"predicted_iou must have one value per mask, "
                                                r"shape \(3,\); got shape \(2,\)"),
    ({"stability_score": 0.9}, ValueError, "stability_score must have one value per mask"),
    ({"predicted_iou": ["high"] * 3}, TypeError, "predicted_iou must be 3 numbers"),
    ({"point_coords": [[1, 2]] * 3 + [[3, 4]]}, ValueError, r"point_coords must be \(3, 2\)"),
    ({"stability_score": [0.9, float("nan"), 0.9]}, ValueError, "finite"),
])
def test_write_bad_metadata(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        write_sa1b(tmp_path / "sa_1.json", _record(), **kwargs)
    assert not (tmp_path / "sa_1.json").exists()  # checked before anything is written


def test_write_needs_a_record(tmp_path):
    with pytest.raises(TypeError, match="record must be a SegmentationRecord; got ndarray"):
        write_sa1b(tmp_path / "sa_1.json", np.zeros((3, H, W), bool))


def test_write_bad_image_extension(tmp_path):
    with pytest.raises(ValueError, match="image_path .*sa_1.xyz must end in an image extension"):
        write_sa1b(tmp_path / "sa_1.json", _record(), tmp_path / "sa_1.xyz")
    assert not (tmp_path / "sa_1.json").exists()


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    """A file-size limit (as a full disk) stops the second write of sa_1.json half way: the
    first, valid file is still there, whole; no temporary file is left behind."""
    write_sa1b(tmp_path / "sa_1.json", _record(), tmp_path / "sa_1.png")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    limit = max(len(b) for b in before.values()) + 100  # room for the old, not the new
    code = f"""
import resource, signal
import numpy as np
from samteach.data import SegmentationRecord, write_sa1b
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # exceeding the limit: an OSError, not a kill
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
rng = np.random.default_rng(0)
big = SegmentationRecord(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8),
                         rng.random((30, 400, 400)) < 0.5, ("object",) * 30, image_id="1")
try:
    write_sa1b({str(tmp_path / "sa_1.json")!r}, big, {str(tmp_path / "sa_1.png")!r})
except OSError as error:
    print("failed:", error.errno)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "failed: 27" in done.stdout, done.stderr  # EFBIG: the write really was cut short
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
