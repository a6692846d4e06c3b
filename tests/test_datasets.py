import numpy as np

from emotion_ai.data.datasets import (
    TEST,
    TRAIN,
    VAL,
    FaceDataset,
    assign_splits,
    emotion_dataset,
    load_dataset,
    save_dataset,
)
from emotion_ai.data.formats import FER_FORMAT, read_table
from emotion_ai.settings import SplitSettings


def test_fer_codes_map_to_five_classes_and_fear_neutral_are_dropped(fer_csv):
    table = read_table(fer_csv, FER_FORMAT)
    codes = table.rows["emotion"].to_numpy().astype(int)
    dataset = emotion_dataset(table, SplitSettings(), {"source": "x", "sha256": "y"})
    kept = codes[~np.isin(codes, [2, 6])]
    expected = np.array([{0: 0, 1: 1, 4: 2, 3: 3, 5: 4}[c] for c in kept])
    np.testing.assert_array_equal(dataset.targets, expected)
    assert dataset.metadata["dropped_rows"] == int(np.isin(codes, [2, 6]).sum()) > 0
    assert dataset.images.shape[1:] == (48, 48)


def test_splits_are_deterministic_stratified_and_sized():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(500, 4, 4), dtype=np.uint8)
    labels = np.repeat(np.arange(5), 100)
    settings = SplitSettings(val_fraction=0.2, test_fraction=0.2, seed=3)
    split = assign_splits(images, labels, settings)
    np.testing.assert_array_equal(split, assign_splits(images, labels, settings))
    for label in range(5):
        assert np.bincount(split[labels == label], minlength=3).tolist() == [60, 20, 20]
    eighty_twenty = assign_splits(
        images, labels, SplitSettings(val_fraction=0.0, test_fraction=0.2)
    )
    assert (eighty_twenty == VAL).sum() == 0 and (eighty_twenty == TEST).sum() == 100


def test_identical_images_never_land_in_two_splits():
    rng = np.random.default_rng(1)
    unique = rng.integers(0, 256, size=(50, 4, 4), dtype=np.uint8)
    images = np.concatenate([unique, unique, unique])
    split = assign_splits(images, np.zeros(150, dtype=int), SplitSettings(seed=5))
    assert (split[:50] == split[50:100]).all() and (split[:50] == split[100:]).all()
    assert set(split.tolist()) == {TRAIN, VAL, TEST}


def test_a_single_row_class_goes_to_train():
    images = np.arange(11 * 4, dtype=np.uint8).reshape(11, 2, 2)
    labels = np.array([0] * 10 + [1])
    assert assign_splits(images, labels, SplitSettings())[-1] == TRAIN


def test_save_and_load_round_trip_without_pickles(tmp_path):
    dataset = FaceDataset(
        np.zeros((3, 2, 2), np.uint8),
        np.array([1, 2, 3]),
        np.array([0, 1, 2], np.int8),
        {"kind": "emotion"},
    )
    path = save_dataset(dataset, tmp_path / "d.npz")
    loaded = load_dataset(path)
    assert loaded.metadata == {"kind": "emotion"} and loaded.targets.tolist() == [1, 2, 3]
    assert not list(tmp_path.glob("*.partial"))


def test_fer_usage_column_can_be_the_split(fer_csv):
    table = read_table(fer_csv, FER_FORMAT)
    dataset = emotion_dataset(table, SplitSettings(use_fer_usage=True), {})
    kept = ~table.rows["emotion"].isin([2, 6])
    expected = table.rows["Usage"][kept].map(
        {"Training": TRAIN, "PublicTest": VAL, "PrivateTest": TEST}
    )
    np.testing.assert_array_equal(dataset.split, expected.to_numpy())


def test_unknown_usage_value_names_its_row(fer_csv):
    import pytest

    from emotion_ai.data.formats import DataFormatError

    table = read_table(fer_csv, FER_FORMAT)
    table.rows.loc[3, "Usage"] = "Holdout"
    with pytest.raises(DataFormatError, match=r"row 5, column 'Usage': Usage 'Holdout'"):
        emotion_dataset(table, SplitSettings(use_fer_usage=True), {})


def test_without_private_test_rows_public_test_is_the_test_split(fer_csv, caplog):
    """Like the shared fer2013.csv.gz (Kaggle held PrivateTest back): PublicTest rows are tested
    on, and validation is `val_fraction` of the Training rows, stratified and seeded."""
    import logging

    table = read_table(fer_csv, FER_FORMAT)
    table.rows["Usage"] = table.rows["Usage"].replace("PrivateTest", "Training")
    with caplog.at_level(logging.INFO, logger="emotion_ai.data.datasets"):
        dataset = emotion_dataset(table, SplitSettings(0.25, use_fer_usage=True), {})
    kept = ~table.rows["emotion"].isin([2, 6]).to_numpy()
    public = (table.rows["Usage"] == "PublicTest").to_numpy()[kept]
    np.testing.assert_array_equal(dataset.split == TEST, public)
    training = ~public
    assert abs((dataset.split[training] == VAL).mean() - 0.25) < 0.1
    assert "PublicTest rows are the test split" in caplog.text
    again = emotion_dataset(table, SplitSettings(0.25, use_fer_usage=True), {})
    np.testing.assert_array_equal(again.split, dataset.split)


def test_a_usage_split_with_no_rows_to_test_on_is_refused(fer_csv):
    import pytest

    from emotion_ai.data.formats import DataFormatError

    table = read_table(fer_csv, FER_FORMAT)
    table.rows["Usage"] = "Training"
    with pytest.raises(DataFormatError, match="needs PrivateTest or PublicTest rows"):
        emotion_dataset(table, SplitSettings(use_fer_usage=True), {})
