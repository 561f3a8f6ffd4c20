"""Reading a person's answers (al/answers.py) and ranking a request (al/request.py), without a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import constants as C
from al.answers import AnswerError, has_answers, read_answers
from al.brush_rle import encode
from al.request import (
    NO_FOREGROUND,
    NO_FOREGROUND_FILE,
    NO_FOREGROUND_NAME,
    RankedCandidate,
    heat_colours,
    overlay,
    ranked,
)

SIZES = {"a": (20, 30), "b": (20, 30)}


def _mask(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((20, 30)) > 0.5).astype(np.uint8)


def _brush(mask: np.ndarray, label: str = "foreground") -> dict:
    return {"type": "brushlabels", "original_height": mask.shape[0], "original_width": mask.shape[1],
            "value": {"format": "rle", "rle": encode(mask), "brushlabels": [label]}}


def _task(sample_id: str, annotations: list[dict], task_id: int = 1) -> dict:
    return {"id": task_id, "data": {"sample_id": sample_id}, "annotations": annotations}


def _write(path: Path, tasks: list[dict]) -> Path:
    path.write_text(json.dumps(tasks))
    return path


def test_png_answers_accept_0_255_and_0_1_in_grey_or_rgb_and_ignore_other_files(tmp_path: Path) -> None:
    Image.fromarray(_mask(0) * 255).convert("RGB").save(tmp_path / "a.png")
    Image.fromarray(_mask(1)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("done")
    answers = read_answers(tmp_path, ["a", "b"], SIZES)
    assert np.array_equal(answers["a"].mask, _mask(0)) and np.array_equal(answers["b"].mask, _mask(1))
    assert answers["a"].source == C.SOURCE_FILE and answers["a"].reference == str(tmp_path / "a.png")
    assert answers["a"].lead_time is None


def test_a_binary_mask_may_be_drawn_in_any_full_colour_on_black(tmp_path: Path) -> None:
    for k, colour in enumerate([(255, 0, 0), (0, 255, 0), (255, 255, 255)]):
        rgb = np.zeros((20, 30, 3), dtype=np.uint8)
        rgb[_mask(k) == 1] = colour
        Image.fromarray(rgb).save(tmp_path / "a.png")
        assert np.array_equal(read_answers(tmp_path, ["a"], SIZES)["a"].mask, _mask(k))
    rgb[0, 0] = (128, 0, 0)   # an anti-aliased edge
    Image.fromarray(rgb).save(tmp_path / "a.png")
    with pytest.raises(AnswerError, match="non-binary"):
        read_answers(tmp_path, ["a"], SIZES)


def test_every_problem_is_reported_in_one_line_with_the_ids(tmp_path: Path) -> None:
    Image.fromarray(_mask(0) * 128).save(tmp_path / "a.png")
    Image.fromarray(_mask(0) * 255).save(tmp_path / "zz.png")
    with pytest.raises(AnswerError) as info:
        read_answers(tmp_path, ["a", "b", "c", "d", "e", "f", "g", "h"], {**SIZES, **{k: (20, 30) for k in "cdefgh"}})
    message = str(info.value)
    assert "\n" not in message
    assert "missing <id>.png (b, c, d, e, f and 2 more)" in message
    assert "not asked for (zz)" in message and "non-binary (use only 0 and 255) (a)" in message


def test_has_answers_needs_a_png_or_an_export(tmp_path: Path) -> None:
    assert not has_answers(tmp_path / "missing")
    (tmp_path / "answers").mkdir()
    assert not has_answers(tmp_path / "answers")
    Image.fromarray(_mask(0) * 255).save(tmp_path / "answers" / "a.png")
    assert has_answers(tmp_path / "answers") and has_answers(_write(tmp_path / "e.json", []))


def test_label_studio_brush_and_polygon_are_united_and_polygons_are_filled(tmp_path: Path) -> None:
    rectangle = {"type": "polygonlabels", "original_height": 20, "original_width": 30,
                 "value": {"points": [[10, 10], [50, 10], [50, 50], [10, 50]], "polygonlabels": ["foreground"]}}
    empty = np.zeros((20, 30), dtype=np.uint8)
    brush = empty.copy()
    brush[15:18, 25:28] = 1
    tasks = [_task("a", [{"id": 5, "result": [_brush(brush), rectangle], "lead_time": 12.5}], 1),
             _task("b", [{"id": 6, "result": [NO_FOREGROUND_TICKED], "lead_time": "n/a"}], 2)]
    answers = read_answers(_write(tmp_path / "export.json", tasks), ["a", "b"], SIZES)
    expected = brush.copy()
    expected[2:11, 3:16] = 1  # rows 10%..50% of 20, columns 10%..50% of 30 (PIL fills the outline too)
    assert np.array_equal(answers["a"].mask, expected)
    assert answers["a"].source == C.SOURCE_LABEL_STUDIO and answers["a"].reference == "task 1, annotation 5"
    assert answers["a"].lead_time == 12.5
    assert np.array_equal(answers["b"].mask, empty) and answers["b"].lead_time is None


def test_the_latest_annotation_that_was_not_skipped_counts(tmp_path: Path) -> None:
    old, new, skipped = _mask(0), _mask(1), _mask(2)
    tasks = [_task("a", [{"id": 3, "result": [_brush(new)]}, {"id": 1, "result": [_brush(old)]},
                         {"id": 9, "result": [_brush(skipped)], "was_cancelled": True}], 1),
             _task("b", [{"id": 4, "result": [NO_FOREGROUND_TICKED], "was_cancelled": True}], 2)]
    path = _write(tmp_path / "export.json", tasks)
    with pytest.raises(AnswerError, match=r"missing annotation \(b\)"):
        read_answers(path, ["a", "b"], SIZES)
    tasks[1]["annotations"][0]["was_cancelled"] = False
    answers = read_answers(_write(path, tasks), ["a", "b"], SIZES)
    assert np.array_equal(answers["a"].mask, new) and answers["a"].reference == "task 1, annotation 3"


NO_FOREGROUND_TICKED = {"type": "choices", "from_name": NO_FOREGROUND_NAME, "to_name": "image",
                        "value": {"choices": [NO_FOREGROUND]}}


def test_an_empty_png_is_refused_unless_listed_in_no_foreground(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(_mask(1) * 255).save(tmp_path / "b.png")
    with pytest.raises(AnswerError, match=rf"empty \(nothing drawn: .* list it in {NO_FOREGROUND_FILE} .*\) \(a\)"):
        read_answers(tmp_path, ["a", "b"], SIZES)
    (tmp_path / NO_FOREGROUND_FILE).write_text("# no lesion in these\na\n\n")
    answers = read_answers(tmp_path, ["a", "b"], SIZES)
    assert not answers["a"].mask.any() and answers["a"].reference == str(tmp_path / "a.png")
    (tmp_path / "a.png").unlink()   # a listed image needs no PNG
    answers = read_answers(tmp_path, ["a", "b"], SIZES)
    assert answers["a"].mask.shape == (20, 30) and not answers["a"].mask.any()
    assert answers["a"].reference == str(tmp_path / NO_FOREGROUND_FILE)
    (tmp_path / NO_FOREGROUND_FILE).write_text("a\nb\nzz\n")   # b has foreground; zz was not asked for
    with pytest.raises(AnswerError) as info:
        read_answers(tmp_path, ["a", "b"], SIZES)
    assert "declared without foreground but foreground drawn" in str(info.value) and "(b)" in str(info.value)
    assert "not asked for (zz)" in str(info.value)


def test_a_folder_with_only_the_no_foreground_list_has_answers(tmp_path: Path) -> None:
    (tmp_path / NO_FOREGROUND_FILE).write_text("a\n")
    assert has_answers(tmp_path)


def test_an_empty_label_studio_annotation_is_refused_unless_no_foreground_is_ticked(tmp_path: Path) -> None:
    empty_brush = _brush(np.zeros((20, 30), dtype=np.uint8))
    tasks = [_task("a", [{"id": 1, "result": []}], 1), _task("b", [{"id": 2, "result": [empty_brush]}], 2)]
    path = _write(tmp_path / "export.json", tasks)
    with pytest.raises(AnswerError, match=rf"empty \(nothing drawn: .* tick '{NO_FOREGROUND}' .*\) \(a, b\)"):
        read_answers(path, ["a", "b"], SIZES)
    tasks[0]["annotations"][0]["result"] = [NO_FOREGROUND_TICKED]
    tasks[1]["annotations"][0]["result"] = [empty_brush, NO_FOREGROUND_TICKED]
    answers = read_answers(_write(path, tasks), ["a", "b"], SIZES)
    assert not answers["a"].mask.any() and not answers["b"].mask.any()
    tasks[1]["annotations"][0]["result"] = [_brush(_mask(3)), NO_FOREGROUND_TICKED]
    with pytest.raises(AnswerError, match=r"declared without foreground but foreground drawn .*\(b\)"):
        read_answers(_write(path, tasks), ["a", "b"], SIZES)


def test_a_label_map_of_only_background_and_unlabelled_pixels_is_empty(tmp_path: Path) -> None:
    classes = ("background", "road")
    label = np.zeros((20, 30), dtype=np.uint8)
    label[:5] = C.IGNORE
    Image.fromarray(label).save(tmp_path / "a.png")
    with pytest.raises(AnswerError, match=r"empty \(nothing drawn: draw the classes"):
        read_answers(tmp_path, ["a"], SIZES, classes)
    label[10, 10] = 1
    Image.fromarray(label).save(tmp_path / "a.png")
    assert read_answers(tmp_path, ["a"], SIZES, classes)["a"].mask[10, 10] == 1
    (tmp_path / "a.png").unlink()
    (tmp_path / NO_FOREGROUND_FILE).write_text("a\n")   # declared: all background
    assert (read_answers(tmp_path, ["a"], SIZES, classes)["a"].mask == 0).all()


def test_a_sample_in_two_tasks_is_refused(tmp_path: Path) -> None:
    tasks = [_task("a", [{"id": 1, "result": [NO_FOREGROUND_TICKED]}], 1),
             _task("a", [{"id": 2, "result": [NO_FOREGROUND_TICKED]}], 2)]
    with pytest.raises(AnswerError, match=r"in several tasks \(a\)"):
        read_answers(_write(tmp_path / "export.json", tasks), ["a"], SIZES)


def test_an_answer_that_is_neither_folder_nor_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "masks.zip").write_bytes(b"PK")
    with pytest.raises(AnswerError, match="neither a folder"):
        read_answers(tmp_path / "masks.zip", ["a"], SIZES)


def test_png_label_maps_hold_class_indices_or_255(tmp_path: Path) -> None:
    classes = ("background", "road", "car")
    label = np.random.default_rng(0).integers(0, 3, (20, 30)).astype(np.uint8)
    label[:2] = C.IGNORE
    Image.fromarray(label).save(tmp_path / "a.png")
    assert np.array_equal(read_answers(tmp_path, ["a"], SIZES, classes)["a"].mask, label)
    palette = Image.fromarray(label, mode="P")   # VOC stores its label maps as palette PNGs
    palette.putpalette([v for k in range(256) for v in (k * 40 % 256, k * 90 % 256, k * 10 % 256)])
    palette.save(tmp_path / "a.png")
    assert np.array_equal(read_answers(tmp_path, ["a"], SIZES, classes)["a"].mask, label)
    Image.fromarray(np.stack([label] * 3, axis=-1)).save(tmp_path / "a.png")
    with pytest.raises(AnswerError, match="a RGB image: save the class index of each pixel"):
        read_answers(tmp_path, ["a"], SIZES, classes)
    label[5, 5] = 3
    Image.fromarray(label).save(tmp_path / "a.png")
    with pytest.raises(AnswerError, match=r"values other than the class indices 0\.\.2 and 255 \(a\)"):
        read_answers(tmp_path, ["a"], SIZES, classes)


def test_label_studio_class_regions_paint_in_order_over_the_background(tmp_path: Path) -> None:
    road, car = np.zeros((20, 30), dtype=np.uint8), np.zeros((20, 30), dtype=np.uint8)
    road[10:] = 1
    car[8:14, 5:10] = 1
    square = {"type": "polygonlabels", "value": {"points": [[0, 0], [10, 0], [10, 10], [0, 10]],
                                                 "polygonlabels": ["car"]}}
    path = _write(tmp_path / "export.json", [_task("a", [{"id": 1, "result": [_brush(road, "road"),
                                                                             _brush(car, "car"), square]}])])
    expected = np.where(car == 1, 2, np.where(road == 1, 1, 0)).astype(np.uint8)
    expected[0:3, 0:4] = 2   # the polygon, 0%..10% of each side (PIL fills the outline too)
    answer = read_answers(path, ["a"], SIZES, ("background", "road", "car"))["a"].mask
    assert np.array_equal(answer, expected)
    # Without a "background" class, unpainted pixels are unlabelled.
    answer = read_answers(path, ["a"], SIZES, ("sky", "road", "car"))["a"].mask
    assert np.array_equal(answer == C.IGNORE, expected == 0)
    with pytest.raises(AnswerError, match="a region labelled \\['road'\\], expected one of the classes sky, car"):
        read_answers(path, ["a"], SIZES, ("sky", "car"))


def test_the_ranking_puts_the_picked_first_then_by_score() -> None:
    rows = [RankedCandidate("u", "u.png", "x", 0.9, False), RankedCandidate("p2", "p2.png", "x", 0.2, True),
            RankedCandidate("p1", "p1.png", "x", 0.5, True), RankedCandidate("n", "n.png", "x", None, False), RankedCandidate("w", "w.png", "x", -3.0, False),
            RankedCandidate("v", "v.png", "x", 0.1, False)]
    assert [r.id for r in ranked(rows)] == ["p1", "p2", "u", "v", "w", "n"]


def test_the_heat_map_is_brightest_where_the_model_is_unsure() -> None:
    colours = heat_colours(np.array([[0.0, 0.5, 1.0]])).astype(int).sum(axis=-1)[0]
    assert colours[1] > colours[0] and colours[0] == colours[2]


def test_the_overlay_tints_the_predicted_foreground_only() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    prediction = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    tinted = overlay(image, prediction)
    assert tinted[0, 0].tolist() == [170, 55, 55]   # 0.55 * 100 + 0.45 * (255, 0, 0)
    assert (tinted[1:] == 100).all() and (tinted[0, 1] == 100).all()
