"""Digit scenes: exact boxes and masks, labels in range, split by source digit, seeded."""

from __future__ import annotations

import pytest
import torch

from edgebench.prune.digit_scenes import SceneLayout, draw_scenes, split_sources
from edgebench.prune.digits import load_split

LAYOUT = SceneLayout(size=64, min_digits=1, max_digits=3, min_scale=0.2, max_scale=0.45)


@pytest.fixture(scope="module")
def sources():
    return split_sources(seed=0)


@pytest.fixture(scope="module")
def scenes(sources):
    return draw_scenes(sources[0], LAYOUT, 40, torch.Generator().manual_seed(0))


def test_sources_are_the_digits_task_split(sources):
    train, heldout = sources
    split = load_split(8, seed=0)
    assert torch.equal(train.rows, split.train_index) and torch.equal(heldout.rows, split.test_index)
    assert not set(train.rows.tolist()) & set(heldout.rows.tolist())
    assert len(train.rows) + len(heldout.rows) == 1797


def test_scene_shapes_types_and_label_range(scenes):
    for scene in scenes:
        assert scene.image.shape == (3, 64, 64) and scene.image.dtype == torch.uint8
        assert scene.mask.shape == (64, 64) and scene.mask.dtype == torch.int64
        assert scene.boxes.dtype == torch.float32 and scene.labels.dtype == torch.int64
        assert 1 <= len(scene.labels) <= 3 and scene.boxes.shape == (len(scene.labels), 4)
        assert scene.labels.min() >= 1 and scene.labels.max() <= 10
        assert scene.mask.min() >= 0 and scene.mask.max() <= 10
    assert {int(label) for scene in scenes for label in scene.labels} == set(range(1, 11))


def test_each_box_is_the_tight_box_of_its_digits_mask_pixels(scenes):
    for scene in scenes:
        covered = torch.zeros_like(scene.mask, dtype=torch.bool)
        for box, label in zip(scene.boxes.long().tolist(), scene.labels.tolist()):
            x0, y0, x1, y1 = box
            inside = scene.mask[y0:y1, x0:x1] == label
            rows, columns = inside.nonzero(as_tuple=True)
            # Pixels of the digit touch all four edges of its box: the box is tight.
            assert (rows.min(), columns.min(), rows.max(), columns.max()) == (0, 0, y1 - y0 - 1, x1 - x0 - 1)
            covered[y0:y1, x0:x1] = True
        # Every digit pixel lies in some box; digits do not overlap, so boxes hold one digit each.
        assert not ((scene.mask > 0) & ~covered).any()
        boxes = scene.boxes
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_scenes_use_only_their_source_digits(sources, scenes):
    train, heldout = sources
    train_rows = set(train.rows.tolist())
    assert all(set(scene.rows.tolist()) <= train_rows for scene in scenes)
    held = draw_scenes(heldout, LAYOUT, 20, torch.Generator().manual_seed(0))
    assert all(not set(scene.rows.tolist()) & train_rows for scene in held)


def test_the_digit_is_drawn_where_its_mask_is(scenes):
    # Ink contrasts with the background, so digit pixels differ from the pixels around the box.
    scene = scenes[0]
    image = scene.image.float()
    digit = image[:, scene.mask > 0].mean(dim=1)
    background = image[:, scene.mask == 0].mean(dim=1)
    assert (digit - background).abs().max() > 30


def test_same_seed_same_scenes_other_seed_other_scenes(sources, scenes):
    again = draw_scenes(sources[0], LAYOUT, 40, torch.Generator().manual_seed(0))
    assert all(torch.equal(a.image, b.image) and torch.equal(a.boxes, b.boxes) and torch.equal(a.mask, b.mask)
               for a, b in zip(scenes, again))
    other = draw_scenes(sources[0], LAYOUT, 3, torch.Generator().manual_seed(1))
    assert not torch.equal(other[0].image, scenes[0].image)
