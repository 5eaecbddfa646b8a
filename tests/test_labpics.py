"""LabPicsV1 reader on a tiny fixture written in the real folder layout (no real data read).

Every scene is 40x60 with rectangle edges on multiples of 4, so nearest-neighbour shrinking by
2 or 4 samples each rectangle exactly and the expected masks are plain strided slices.
"""

import numpy as np
import pytest
from PIL import Image

from samteach.data.labpics import LabPicsV1, read_labpics
from samteach.data.record import SegmentationRecord

H, W = 40, 60


def _id_map(*rects: tuple[int, int, int, int, int]) -> np.ndarray:
    """(H, W) uint8 map from (id, y0, y1, x0, x1) rectangles, later ones on top."""
    ids = np.zeros((H, W), np.uint8)
    for value, y0, y1, x0, x1 in rects:
        ids[y0:y1, x0:x1] = value
    return ids


# Two beakers side by side (vessel ids 1 and 2), a liquid (material 1) in the left one, a solid
# (material 2) in the right one, and foam (material 3) spilling over the right beaker's rim:
# 64 of its pixels are inside vessel 2, 128 outside any vessel.
BEAKERS_VESSELS = _id_map((1, 4, 36, 4, 24), (2, 4, 36, 36, 56))
BEAKERS_MATERIALS = _id_map((1, 20, 36, 4, 24), (2, 28, 36, 36, 56), (3, 0, 12, 28, 44))
# Ids need not be 1, 2, 3: vessels 3 and 7, materials 2, 5 and 9. Material 5 lies mostly in
# vessel 7 (96 pixels) and a little in vessel 3 (32 pixels). Material 2 is a one-pixel speck
# at (8, 8), which no centre-sampling nearest resize by 1/4 picks (it samples 2, 6, 10, ...).
FLASKS_VESSELS = _id_map((3, 4, 36, 4, 28), (7, 4, 36, 32, 56))
FLASKS_MATERIALS = _id_map((5, 24, 32, 20, 44), (9, 32, 36, 32, 56), (2, 8, 9, 8, 9))
SCENES = {
    "Train": {"beakers": (BEAKERS_VESSELS, BEAKERS_MATERIALS),
              "flasks": (FLASKS_VESSELS, FLASKS_MATERIALS)},
    "Test": {"bottle": (_id_map((1, 8, 40, 20, 40)), _id_map((1, 24, 40, 20, 40)))},
}


def _photo() -> np.ndarray:
    """A smooth (H, W, 3) image, so JPEG at quality 100 changes it by a few levels only."""
    y, x = np.mgrid[:H, :W]
    return np.stack([4 * x, 6 * y, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def _write_instance_png(path, vessels: np.ndarray, materials: np.ndarray, green=None) -> None:
    # Laid out as the real files are: OpenCV (the reference tutorial) reads them as BGR with
    # channel 0 = material ids and channel 2 = vessel ids. We build that BGR array and reverse
    # it to RGB for PIL, so in the file red = vessels and blue = materials.
    green = np.zeros_like(vessels) if green is None else green
    bgr = np.stack([materials, green, vessels], axis=-1)
    Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).save(path)


def _write_root(root, scenes=SCENES, green=None):
    for split, images in scenes.items():
        for sub in ("Image", "Instance"):
            (root / "Simple" / split / sub).mkdir(parents=True)
        for stem, (vessels, materials) in images.items():
            Image.fromarray(_photo()).save(root / "Simple" / split / "Image" / f"{stem}.jpg",
                                           quality=100, subsampling=0)
            _write_instance_png(root / "Simple" / split / "Instance" / f"{stem}.png",
                                vessels, materials, green)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    # Noise in the unused green channel: the reader must ignore it.
    green = np.random.default_rng(0).integers(0, 256, (H, W), dtype=np.uint8)
    return _write_root(tmp_path_factory.mktemp("LabPicsV1"), green=green)


def _expected(vessels, materials, vessel_ids, material_ids):
    return np.stack([vessels == i for i in vessel_ids] + [materials == i for i in material_ids])


def test_splits_list_their_images_sorted(root):
    train, test = LabPicsV1(root), LabPicsV1(root, split="Test")
    assert (len(train), len(test)) == (2, 1)
    assert train.stems == ["beakers", "flasks"] and test.stems == ["bottle"]
    records = list(train)
    assert [r.image_id for r in records] == ["beakers", "flasks"]
    assert all(isinstance(r, SegmentationRecord) for r in records)
    assert train[-1].image_id == "flasks"
    with pytest.raises(IndexError, match="index 2 is out of range"):
        train[2]


def test_masks_equal_the_id_maps(root):
    record = LabPicsV1(root)[0]
    assert record.masks.dtype == bool and record.masks.shape == (5, H, W)
    np.testing.assert_array_equal(
        record.masks, _expected(BEAKERS_VESSELS, BEAKERS_MATERIALS, [1, 2], [1, 2, 3]))
    assert record.class_names == ("vessel", "vessel", "material", "material", "material")
    # Liquid in beaker 0, solid in beaker 1, foam mostly outside but touching only beaker 1.
    assert record.parents == (-1, -1, 0, 1, 1)


def test_vessels_stay_separate(root):
    """The tutorial's merge would give both beakers one id; here they are two masks."""
    record = LabPicsV1(root)[0]
    left, right = record.masks[:2]
    assert not (left & right).any()
    assert left.sum() == 32 * 20 and right.sum() == 32 * 20
    assert not np.array_equal(left | right, left)


def test_arbitrary_ids_sorted_and_majority_parent(root):
    record = LabPicsV1(root)[1]
    np.testing.assert_array_equal(
        record.masks, _expected(FLASKS_VESSELS, FLASKS_MATERIALS, [3, 7], [2, 5, 9]))
    # Speck in vessel 3; material 5 has 96 pixels in vessel 7 and 32 in vessel 3.
    assert record.parents == (-1, -1, 0, 1, 1)


def test_image_pixels(root):
    record = LabPicsV1(root)[0]
    assert record.image.dtype == np.uint8 and record.image.shape == (H, W, 3)
    # JPEG is lossy even at quality 100; a swapped channel or a transposed image is far off.
    diff = np.abs(record.image.astype(int) - _photo().astype(int))
    assert diff.max() <= 8


@pytest.mark.parametrize("max_size, factor", [(30, 2), (15, 4)])
def test_max_size_keeps_ids_exact(root, max_size, factor):
    record = LabPicsV1(root, max_size=max_size)[0]
    assert record.image.shape == (H // factor, W // factor, 3)
    assert record.masks.dtype == bool
    expected = _expected(BEAKERS_VESSELS, BEAKERS_MATERIALS, [1, 2], [1, 2, 3])
    start = factor // 2  # PIL's nearest samples pixel centres: rows 1, 3, ... or 2, 6, ...
    np.testing.assert_array_equal(record.masks, expected[:, start::factor, start::factor])
    assert record.parents == (-1, -1, 0, 1, 1)
    # The photo is shrunk bilinearly (PIL), the way the id maps are shrunk nearest.
    photo = Image.open(root / "Simple" / "Train" / "Image" / "beakers.jpg").convert("RGB")
    small = photo.resize((W // factor, H // factor), Image.BILINEAR)
    np.testing.assert_array_equal(record.image, np.asarray(small))


def test_max_size_rounds_like_resize_longest_side(root):
    record = LabPicsV1(root, max_size=25)[0]  # 40 * 25 / 60 = 16.67 -> int(16.67 + 0.5) = 17
    assert record.image.shape == (17, 25, 3) and record.masks.shape == (5, 17, 25)


def test_max_size_never_blends_ids(tmp_path):
    """Halfway between material 1 and material 3 is not a material 2: ids are resized nearest."""
    materials = _id_map((1, 0, 40, 0, 31), (3, 0, 40, 31, 60))  # edge off the 4-pixel grid
    _write_root(tmp_path, {"Train": {"two": (np.zeros((H, W), np.uint8), materials)}})
    record = LabPicsV1(tmp_path, max_size=15)[0]
    assert record.class_names == ("material", "material")  # no phantom id 2 at the edge
    assert not (record.masks[0] & record.masks[1]).any() and record.masks.any(axis=0).all()


def test_max_size_drops_vanished_instances(root):
    probe = np.arange(H * W, dtype=np.int32).reshape(H, W)
    sampled = np.asarray(Image.fromarray(probe).resize((W // 4, H // 4), Image.NEAREST))
    assert 8 * W + 8 not in sampled  # the fixture's premise: the speck is not sampled
    full, small = LabPicsV1(root)[1], LabPicsV1(root, max_size=15)[1]
    assert len(full) == 5 and len(small) == 4
    assert small.class_names == ("vessel", "vessel", "material", "material")
    assert small.parents == (-1, -1, 1, 1)  # indices renumbered after the speck left
    np.testing.assert_array_equal(small.masks[2], (FLASKS_MATERIALS == 5)[2::4, 2::4])


def test_max_size_above_the_image_changes_nothing(root):
    record = LabPicsV1(root, max_size=500)[0]
    np.testing.assert_array_equal(record.masks, LabPicsV1(root)[0].masks)


def test_image_without_instances(tmp_path):
    empty = np.zeros((H, W), np.uint8)
    _write_root(tmp_path, {"Train": {"empty": (empty, empty)}})
    record = LabPicsV1(tmp_path)[0]
    assert record.masks.shape == (0, H, W) and record.class_names == ()


def test_read_labpics_single_pair(root):
    split = root / "Simple" / "Test"
    record = read_labpics(split / "Image" / "bottle.jpg", split / "Instance" / "bottle.png",
                          image_id="b")
    assert record.image_id == "b" and record.class_names == ("vessel", "material")
    assert record.parents == (-1, 0)


def test_missing_root(tmp_path):
    with pytest.raises(ValueError, match=f"root must be the LabPicsV1 folder; {tmp_path / 'x'}"):
        LabPicsV1(tmp_path / "x")


def test_root_one_level_too_high(tmp_path):
    _write_root(tmp_path / "LabPicsV1")
    with pytest.raises(ValueError, match="no Simple/ folder -- did you mean root=.*LabPicsV1"):
        LabPicsV1(tmp_path)


@pytest.mark.parametrize("split", ["train", "Val", ""])
def test_unknown_split(root, split):
    with pytest.raises(ValueError, match=rf"split must be one of \('Train', 'Test'\).*{split!r}"):
        LabPicsV1(root, split=split)


def test_missing_split_folder_lists_the_splits_there(tmp_path):
    _write_root(tmp_path, {"Train": SCENES["Train"]})
    with pytest.raises(ValueError, match=r"split 'Test'.*splits found there are \['Train'\]"):
        LabPicsV1(tmp_path, split="Test")


def test_image_without_instance_png(tmp_path):
    _write_root(tmp_path, {"Train": SCENES["Train"]})
    (tmp_path / "Simple" / "Train" / "Instance" / "flasks.png").unlink()
    with pytest.raises(ValueError, match=r"image .*flasks\.jpg has no instance PNG.*flasks\.png"):
        LabPicsV1(tmp_path)


def _root_with_bad_png(tmp_path, write):
    _write_root(tmp_path, {"Train": {"beakers": SCENES["Train"]["beakers"]}})
    write(tmp_path / "Simple" / "Train" / "Instance" / "beakers.png")
    return LabPicsV1(tmp_path)


@pytest.mark.parametrize("write, message", [
    (lambda p: Image.fromarray(BEAKERS_VESSELS).save(p), "must have 3 colour channels.*'L'"),
    (lambda p: Image.fromarray(np.zeros((H, W + 4, 3), np.uint8)).save(p),
     "is 64x40 .* but its image .*beakers.jpg is 60x40"),
    (lambda p: p.write_bytes(b"not a png at all"), "is not a readable image"),
])
def test_bad_instance_png_names_the_file(tmp_path, write, message):
    dataset = _root_with_bad_png(tmp_path, write)
    with pytest.raises(ValueError, match=rf"instance PNG .*beakers\.png .*{message}"):
        dataset[0]


def test_rgba_png_is_read_like_opencv(tmp_path):
    def write(path):
        rgb = np.stack([BEAKERS_VESSELS, np.zeros_like(BEAKERS_VESSELS), BEAKERS_MATERIALS], -1)
        Image.fromarray(np.dstack([rgb, np.full((H, W), 255, np.uint8)])).save(path)
    record = _root_with_bad_png(tmp_path, write)[0]
    assert len(record) == 5 and record.parents == (-1, -1, 0, 1, 1)


@pytest.mark.parametrize("max_size, error", [(0, ValueError), (-5, ValueError),
                                             (1.5, TypeError), (True, TypeError)])
def test_bad_max_size(root, max_size, error):
    with pytest.raises(error, match="max_size must"):
        LabPicsV1(root, max_size=max_size)
