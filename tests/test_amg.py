"""Automatic mask generation: parity with Meta's generator and its utils, and behaviour.

Meta's ``SamAutomaticMaskGenerator`` imports torchvision (for ``batched_nms`` and
``box_area``), which cannot be imported beside the CPU torch this project uses; tests/official.py
stands in a plain greedy loop with torchvision's documented semantics for those two, so the
whole official pipeline -- grids, crops, batching, filters, uncropping, RLE, records -- runs on
the same weights and image as ours. Each of its stages is also compared with the function of
``segment_anything.utils.amg`` it corresponds to.
"""

import json
import warnings

import numpy as np
import pytest
import torch

from samteach import build_sam, get_config
from samteach.amg import (
    AMG_PRESETS,
    AMGConfig,
    SamAutomaticMaskGenerator,
    area_from_rle,
    box_iou,
    build_all_layer_point_grids,
    build_point_grid,
    coco_encode_rle,
    generate_crop_boxes,
    mask_to_rle,
    nms,
    rle_to_mask,
    stability_score,
)
from samteach.amg.engine import (
    assisted_manual,
    fully_automatic,
    run_data_engine,
    semi_automatic,
)
from samteach.amg.grids import is_box_near_crop_edge, uncrop_boxes_xyxy, uncrop_masks
from samteach.amg.rle import remove_small_regions
from samteach.amg.stats import MASK_COUNT_BINS, SA1BStats, sa1b_statistics, write_generated
from samteach.data import SA1B
from samteach.data.scenes import make_scene
from samteach.utils.masks import mask_iou_matrix, mask_to_box

from . import official

LAB = {"pred_iou_thresh": 0.6, "stability_score_thresh": 0.8}  # what the tiny model can pass


@pytest.fixture(scope="module")
def amg_ref():
    return official.load("utils.amg")


@pytest.fixture(scope="module")
def sam1_tiny(trained_tiny):
    """The shipped tiny's weights with its high-res path left out (a somewhat different model),
    so that Meta's SAM 1 code can run the very same model as samteach."""
    plain = build_sam(official.sam1(get_config("tiny"))).eval()
    weights = {k: v for k, v in trained_tiny.state_dict().items() if k in plain.state_dict()}
    plain.load_state_dict(weights, strict=True)
    return plain


@pytest.fixture(scope="module")
def official_tiny(sam1_tiny):
    theirs = official.build_official(get_config("tiny")).eval()
    theirs.load_state_dict(sam1_tiny.state_dict())
    return theirs


@pytest.fixture(scope="module")
def image():
    return make_scene(5).image


@pytest.mark.parametrize("options", [
    {},  # Meta's defaults: the tiny model passes none of its masks -- both must agree on that
    {"points_per_side": 16, **LAB},
    {"points_per_side": 12, "points_per_batch": 7, **LAB, "output_mode": "coco_rle"},
    {"points_per_side": 16, "crop_n_layers": 1, **LAB, "output_mode": "uncompressed_rle"},
    {"points_per_side": 8, "crop_n_layers": 2, "crop_n_points_downscale_factor": 2,
     "pred_iou_thresh": 0.5, "stability_score_thresh": 0.7, "crop_overlap_ratio": 0.25},
    {"points_per_side": None, "point_grids": [np.random.default_rng(0).uniform(0, 1, (40, 2))],
     "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 0.5},
], ids=["defaults", "cpu_lab", "coco_rle", "crops_uncompressed", "two_layers", "own_grid"])
def test_same_masks_as_the_official_generator(sam1_tiny, official_tiny, image, options):
    ours = SamAutomaticMaskGenerator(sam1_tiny, **options).generate(image)
    theirs = official.load("automatic_mask_generator").SamAutomaticMaskGenerator(
        official_tiny, **options).generate(image)
    assert len(ours) == len(theirs)
    mode = options.get("output_mode", "binary_mask")
    for a, b in zip(ours, theirs, strict=True):
        assert set(a) == set(b) == {"segmentation", "area", "bbox", "predicted_iou",
                                    "point_coords", "stability_score", "crop_box"}
        if mode == "binary_mask":
            union = (a["segmentation"] | b["segmentation"]).sum()
            assert union == 0 or (a["segmentation"] & b["segmentation"]).sum() / union >= 0.99
        else:
            assert a["segmentation"] == b["segmentation"]
        assert a["predicted_iou"] == pytest.approx(b["predicted_iou"], abs=1e-3)
        assert a["stability_score"] == pytest.approx(b["stability_score"], abs=1e-3, nan_ok=True)
        assert (a["area"], a["bbox"], a["crop_box"]) == (b["area"], b["bbox"], b["crop_box"])
        np.testing.assert_allclose(a["point_coords"], b["point_coords"])
    if options and options.get("points_per_side") != 8:
        assert ours, "the comparison must compare something"


# ------------------------------------------------------ stages vs segment_anything.utils.amg


@pytest.mark.parametrize("n", [4, 16, 32])
def test_point_grids(amg_ref, n):
    np.testing.assert_array_equal(build_point_grid(1), amg_ref.build_point_grid(1))
    np.testing.assert_array_equal(build_point_grid(n), amg_ref.build_point_grid(n))
    for ours, theirs in zip(build_all_layer_point_grids(n, 2, 2),
                            amg_ref.build_all_layer_point_grids(n, 2, 2), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("size", [(128, 128), (480, 640), (1500, 2250), (97, 53)])
@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_crop_boxes_and_that_they_cover_the_image(amg_ref, size, layers):
    ours = generate_crop_boxes(size, layers, 512 / 1500)
    assert ours == amg_ref.generate_crop_boxes(size, layers, 512 / 1500)
    boxes, layer_of = ours
    h, w = size
    for layer in range(layers + 1):
        covered = np.zeros(size, dtype=bool)
        for (x0, y0, x1, y1), lay in zip(boxes, layer_of, strict=True):
            if lay == layer:
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
                covered[y0:y1, x0:x1] = True
        assert covered.all(), f"layer {layer} leaves part of the image uncovered"
    assert layer_of.count(layers) == 4**layers


def test_stability_score_matches_official(amg_ref):
    logits = torch.randn(2, 3, 40, 56, generator=torch.Generator().manual_seed(0)) * 3
    for threshold, offset in [(0.0, 1.0), (0.5, 0.25), (-1.0, 2.0)]:
        torch.testing.assert_close(stability_score(logits, threshold, offset),
                                   amg_ref.calculate_stability_score(logits, threshold, offset))


def test_mask_boxes_uncropping_and_edges_match_official(amg_ref):
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(5, 30, 40, generator=g) > 0.97
    masks[2] = False  # an empty mask: a zero box
    assert torch.equal(mask_to_box(masks), amg_ref.batched_mask_to_box(masks))
    assert torch.equal(mask_to_box(masks[None]), amg_ref.batched_mask_to_box(masks[None]))
    crop = [10, 20, 50, 50]
    boxes = mask_to_box(masks)
    assert torch.equal(uncrop_boxes_xyxy(boxes, crop), amg_ref.uncrop_boxes_xyxy(boxes, crop))
    assert torch.equal(uncrop_masks(masks, crop, 80, 90), amg_ref.uncrop_masks(masks, crop, 80, 90))
    edges = torch.tensor([[0, 0, 10, 10], [25, 5, 39, 28], [5, 5, 20, 20], [0, 0, 40, 30]])
    for crop, image in [([10, 20, 50, 50], [0, 0, 90, 80]), ([0, 0, 40, 30], [0, 0, 40, 30])]:
        assert torch.equal(is_box_near_crop_edge(edges, crop, image),
                           amg_ref.is_box_near_crop_edge(edges, crop, image))


def test_rle_matches_official_and_round_trips(amg_ref):
    from pycocotools import mask as mask_utils

    g = torch.Generator().manual_seed(2)
    masks = torch.rand(4, 17, 23, generator=g) > 0.6
    masks[1] = True  # starts with a 1: counts begin with a zero-length run of 0s
    masks[2] = False
    ours = mask_to_rle(masks)
    assert ours == amg_ref.mask_to_rle_pytorch(masks)
    for rle, mask in zip(ours, masks.numpy(), strict=True):
        assert np.array_equal(rle_to_mask(rle), mask)
        assert np.array_equal(rle_to_mask(rle), amg_ref.rle_to_mask(rle))
        assert area_from_rle(rle) == mask.sum() == amg_ref.area_from_rle(rle)
        coco = coco_encode_rle(rle)
        assert coco == amg_ref.coco_encode_rle(rle)
        with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            decoded = mask_utils.decode({**coco, "counts": coco["counts"].encode()})
        assert np.array_equal(decoded, mask)


# ------------------------------------------------------------------ NMS


def test_nms_keeps_the_higher_score_and_matches_torchvision_semantics():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]],
                         dtype=torch.float)
    scores = torch.tensor([0.5, 0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]  # box 1 beats 0 and 3; 2 is alone
    assert nms(boxes, scores, 1.0).tolist() == [1, 2, 3, 0]  # nothing suppressed, best first
    reference = official.reference_batched_nms()
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        xy = torch.rand(60, 2, generator=g) * 100
        wh = torch.rand(60, 2, generator=g) * 40 + 1
        boxes = torch.cat([xy, xy + wh], dim=1)
        scores = torch.rand(60, generator=g)
        for threshold in (0.3, 0.7):
            expected = reference(boxes, scores, torch.zeros(60), threshold)
            assert nms(boxes, scores, threshold).tolist() == expected.tolist()


def test_nms_suppresses_only_above_the_threshold_and_only_by_kept_boxes():
    # A overlaps B with IoU exactly 1/3 (kept at threshold 1/3: suppression needs IoU > it).
    a, b = [0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 1.0]
    assert box_iou(torch.tensor([a]), torch.tensor([b])).item() == pytest.approx(1 / 3)
    assert nms(torch.tensor([a, b]), torch.tensor([0.9, 0.8]), 1 / 3).tolist() == [0, 1]
    # Chain: A suppresses B; B would have suppressed C, but B is gone, so C stays.
    chain = torch.tensor([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], dtype=torch.float)
    assert nms(chain, torch.tensor([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


# ------------------------------------------------------------------ the generator's behaviour


def test_records_have_the_official_format(trained_tiny, image):
    records = SamAutomaticMaskGenerator(trained_tiny, "cpu_lab").generate(image)
    assert records
    for r in records:
        mask = r["segmentation"]
        assert mask.shape == image.shape[:2] and mask.dtype == bool
        assert r["area"] == int(mask.sum()) and isinstance(r["area"], int)
        ys, xs = np.nonzero(mask)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert all(isinstance(v, int) for v in r["bbox"] + r["crop_box"])
        assert r["crop_box"] == [0, 0, 128, 128]
        assert isinstance(r["predicted_iou"], float) and isinstance(r["stability_score"], float)
        assert len(r["point_coords"]) == 1 and len(r["point_coords"][0]) == 2


def test_filters_filter(trained_tiny, image):
    def run(**options):
        return SamAutomaticMaskGenerator(trained_tiny, points_per_side=8, **options).generate(
            image)

    everything = run(pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=1.0)
    confident = run(pred_iou_thresh=0.6, stability_score_thresh=0, box_nms_thresh=1.0)
    stable = run(pred_iou_thresh=0, stability_score_thresh=0.8, box_nms_thresh=1.0)
    deduplicated = run(pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=0.7)
    assert len(everything) > max(len(confident), len(stable), len(deduplicated)) > 0
    assert all(r["predicted_iou"] > 0.6 for r in confident)
    assert all(r["stability_score"] >= 0.8 for r in stable)
    boxes = torch.tensor([r["bbox"] for r in deduplicated], dtype=torch.float)
    boxes[:, 2:] += boxes[:, :2]
    assert box_iou(boxes, boxes).fill_diagonal_(0).nan_to_num(0).max() <= 0.7
    # Every mask NMS dropped overlaps (IoU > 0.7) a kept one that scored at least as high.
    def boxes_of(records):
        boxes = torch.tensor([r["bbox"] for r in records], dtype=torch.float)
        return torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1)

    kept = {(tuple(r["bbox"]), r["predicted_iou"]) for r in deduplicated}
    kept_boxes = boxes_of(deduplicated)
    kept_scores = torch.tensor([r["predicted_iou"] for r in deduplicated])
    dropped = [r for r in everything if (tuple(r["bbox"]), r["predicted_iou"]) not in kept]
    assert dropped
    for box, r in zip(boxes_of(dropped), dropped, strict=True):
        overlapping = box_iou(box[None], kept_boxes)[0] > 0.7
        assert (overlapping & (kept_scores >= r["predicted_iou"])).any()


def test_small_regions_are_removed_and_holes_filled():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:12, 2:12] = True
    mask[5, 5] = False  # a one-pixel hole
    mask[16:18, 16:18] = True  # a 4-pixel island
    filled, changed = remove_small_regions(mask, 5, "holes")
    assert changed and filled[5, 5] and filled.sum() == mask.sum() + 1
    cleaned, changed = remove_small_regions(filled, 5, "islands")
    assert changed and not cleaned[16:18, 16:18].any() and cleaned.sum() == 100
    again, changed = remove_small_regions(cleaned, 5, "islands")
    assert not changed and again is cleaned
    tiny_only = np.zeros((9, 9), dtype=bool)
    tiny_only[1, 1] = tiny_only[5:7, 5:7] = True
    kept, _ = remove_small_regions(tiny_only, 10, "islands")  # all small: the largest stays
    assert kept.sum() == 4 and kept[5, 5]


def test_min_mask_region_area_cleans_the_generators_masks(trained_tiny, image):
    records = SamAutomaticMaskGenerator(trained_tiny, "cpu_lab",
                                        min_mask_region_area=30).generate(image)
    assert records
    from scipy import ndimage

    for r in records:
        labels, n = ndimage.label(r["segmentation"], structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        assert n == 1 or sizes.min() >= 30
        assert r["area"] == r["segmentation"].sum()


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"points_per_side": None}, ValueError, "exactly one of points_per_side and point_grids; "
     "got neither"),
    ({"point_grids": [build_point_grid(4)], "points_per_side": 4}, ValueError, "got both"),
    ({"pred_iou_thresh": 1.5}, ValueError, r"pred_iou_thresh must be a number in \[0, 1\]"),
    ({"stability_score_thresh": -0.1}, ValueError, "stability_score_thresh"),
    ({"box_nms_thresh": "0.7"}, TypeError, r"box_nms_thresh must be a number in \[0, 1\]"),
    # NaN compares false with everything: it used to pass and leave 0 masks
    ({"stability_score_offset": float("nan")}, ValueError,
     "stability_score_offset must be a number >= 0; got nan"),
    ({"output_mode": "polygon"}, ValueError, "output_mode must be one of"),
    ({"points_per_side": 0}, ValueError, "points_per_side must be a positive int"),
    ({"crop_n_layers": 1, "point_grids": [build_point_grid(4)]}, ValueError,
     "point_grids must be a list of crop_n_layers"),
    ({"point_grids": [np.ones((3, 3))]}, ValueError, r"point_grids\[0\] must be \(P, 2\)"),
    ({"points_per_sides": 8}, TypeError, "unknown option"),
])
def test_bad_options(trained_tiny, options, error, message):
    with pytest.raises(error, match=message):
        SamAutomaticMaskGenerator(trained_tiny, **options)


def test_bad_model_preset_and_image(trained_tiny):
    with pytest.raises(TypeError, match="model must be a samteach SamPredictor or Sam"):
        SamAutomaticMaskGenerator("tiny")
    with pytest.raises(ValueError, match="config must be an AMGConfig or one of"):
        SamAutomaticMaskGenerator(trained_tiny, "fast")
    generator = SamAutomaticMaskGenerator(trained_tiny, "cpu_lab")
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\)"):
        generator.generate(np.zeros((64, 64), np.uint8))
    with pytest.raises(TypeError, match="dtype uint8"):
        generator.generate(np.zeros((64, 64, 3)))
    assert AMG_PRESETS["official"] == AMGConfig()


# ------------------------------------------------------------------ the data engine and SA-1B


@pytest.fixture(scope="module")
def engine_scene():
    return make_scene(1001)


def test_the_three_stages(trained_tiny, engine_scene):
    from samteach import SamPredictor

    predictor = SamPredictor(trained_tiny)
    generator = SamAutomaticMaskGenerator(predictor, "cpu_lab")
    manual = assisted_manual(predictor, engine_scene, max_clicks=6)
    assert manual.masks_per_image == len(engine_scene) and not manual.automatic.any()
    assert (1 <= manual.clicks).all() and (manual.clicks <= 6).all() and manual.recall >= 0.8
    semi = semi_automatic(generator, predictor, engine_scene, max_clicks=6)
    auto = fully_automatic(generator, engine_scene)
    assert auto.automatic.all() and (auto.clicks == 0).all() and auto.clicks_per_mask == 0.0
    assert semi.automatic.sum() == auto.masks_per_image  # the same proposals, pre-filled
    # The annotator clicks only objects the proposals missed, so never more than by hand.
    assert semi.clicks.sum() <= manual.clicks.sum() and semi.recall >= auto.recall
    found = mask_iou_matrix(engine_scene.masks, auto.masks).max(axis=1) >= 0.5
    assert (~semi.automatic).sum() == (~found).sum()
    assert auto.recall == pytest.approx(found.mean())


def test_run_data_engine_summarises_each_stage(trained_tiny):
    rows = run_data_engine(trained_tiny, [make_scene(1001), make_scene(1002)], max_clicks=3)
    assert [r["stage"] for r in rows] == ["assisted-manual", "semi-automatic", "fully automatic"]
    assert rows[0]["automatic"] == 0.0 and rows[2]["automatic"] == 1.0
    assert rows[2]["clicks_per_image"] == 0.0 < rows[1]["clicks_per_image"] <= rows[0][
        "clicks_per_image"]
    with pytest.raises(ValueError, match="max_clicks must be a positive int"):
        run_data_engine(trained_tiny, [make_scene(1001)], max_clicks=0)


def test_generated_masks_as_sa1b_files_and_their_statistics(trained_tiny, tmp_path):
    generator = SamAutomaticMaskGenerator(trained_tiny, "cpu_lab")
    expected = []
    for seed in (1001, 1002):
        scene = make_scene(seed)
        records = generator.generate(scene.image)
        write_generated(tmp_path, str(seed), scene.image, records)
        expected.append(records)
    dataset = SA1B(tmp_path)
    assert len(dataset) == 2
    first = dataset.read(0)
    assert np.array_equal(first.record.masks, [r["segmentation"] for r in expected[0]])
    assert [a["predicted_iou"] for a in first.annotations] == pytest.approx(
        [r["predicted_iou"] for r in expected[0]])
    stats = sa1b_statistics(tmp_path)
    assert stats.masks_per_image.tolist() == [len(r) for r in expected]
    areas = [r["area"] for rs in expected for r in rs]
    np.testing.assert_allclose(stats.relative_sizes, np.sqrt(np.array(areas) / 128**2))
    assert ((stats.centres >= 0) & (stats.centres <= 1)).all()
    assert stats.histogram()["<50"] == 2


def test_an_image_without_masks_is_written_and_counted(tmp_path):
    """A generator may find nothing (a blank image, a strict setting): still a valid pair."""
    image = make_scene(1001).image
    write_generated(tmp_path, "empty", image, [])
    assert SA1B(tmp_path).read(0).record.masks.shape == (0, 128, 128)
    assert sa1b_statistics(tmp_path).masks_per_image.tolist() == [0]


def test_mask_count_bins_follow_the_lecture():
    counts = np.array([0, 49, 50, 99, 100, 199, 200, 300, 399, 400, 499, 500, 5000])
    stats = SA1BStats(tuple(map(str, counts)), counts, np.zeros(0), np.zeros((0, 2)))
    assert [label for label, *_ in MASK_COUNT_BINS] == [
        "<50", "50-100", "100-200", "200-300", "300-400", "400-500", ">500"]
    assert stats.histogram() == {"<50": 2, "50-100": 2, "100-200": 2, "200-300": 1,
                                 "300-400": 2, "400-500": 2, ">500": 2}


def test_statistics_of_a_known_mask(tmp_path):
    from samteach.data import SegmentationRecord, write_sa1b

    mask = np.zeros((1, 40, 80), dtype=bool)
    mask[0, 10:20, 0:20] = True  # 200 px of 3200, centred at (10, 15)
    record = SegmentationRecord(np.zeros((40, 80, 3), np.uint8), mask, ("object",), image_id="7")
    write_sa1b(tmp_path / "sa_7.json", record, image_path=tmp_path / "sa_7.jpg")
    stats = sa1b_statistics(tmp_path)
    np.testing.assert_allclose(stats.relative_sizes, [np.sqrt(200 / 3200)])
    np.testing.assert_allclose(stats.centres, [[10 / 80, 15 / 40]])
    with pytest.raises(ValueError, match="holds no SA-1B .json files"):
        sa1b_statistics(tmp_path / "nothing")
    # A JSON without the image's height and width is valid SA-1B for read_sa1b (the photo gives
    # the size); the statistics, which never open the photo, take it from the masks.
    data = json.loads((tmp_path / "sa_7.json").read_text())
    del data["image"]["height"], data["image"]["width"]
    (tmp_path / "sa_7.json").write_text(json.dumps(data))
    np.testing.assert_allclose(sa1b_statistics(tmp_path).centres, [[10 / 80, 15 / 40]])
