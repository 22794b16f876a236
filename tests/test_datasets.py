"""The dataset registry and loaders, against the offline mirror and against malformed copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs
import pytest

from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.download import verify
from imputebench.data.sources import (
    ALIASES,
    SKLEARN,
    DatasetSpec,
    dataset_names,
    default_data_dir,
    get_spec,
    load_dataset,
    resolve_datasets,
)
from imputebench.models.registry import UnknownNameError

# name: (rows, numeric features (real, positive, count), one-hot features (categorical, ordinal), complete rows, task)
EXPECTED: dict[str, tuple[int, int, int, int, str]] = {
    "adult": (48842, 6, 8, 45222, "classification"),
    "boston": (506, 12, 1, 506, "regression"),
    "breast_cancer": (569, 30, 0, 569, "classification"),
    "breast_cancer_wisconsin": (699, 9, 0, 683, "classification"),
    "concrete": (1030, 8, 0, 1030, "regression"),
    "default_credit": (30000, 14, 9, 29998, "classification"),
    "diabetes": (442, 9, 1, 442, "regression"),
    "digits": (1797, 54, 0, 1797, "classification"),
    "energy": (768, 6, 2, 768, "regression"),
    "glass": (214, 9, 0, 214, "classification"),
    "heart": (303, 6, 7, 297, "classification"),
    "iris": (150, 4, 0, 150, "classification"),
    "letter": (20000, 16, 0, 20000, "classification"),
    "mushroom": (8124, 0, 21, 5644, "classification"),
    "phishing": (11055, 0, 30, 11055, "classification"),
    "spambase": (4601, 57, 0, 4601, "classification"),
    "uci_iris": (150, 4, 0, 150, "classification"),
    "uci_wine": (178, 13, 0, 178, "classification"),
    "wdbc": (569, 30, 0, 569, "classification"),
    "website_phishing": (1353, 0, 9, 1353, "classification"),
    "whitewine": (4898, 11, 0, 4898, "regression"),
    "wine": (178, 13, 0, 178, "classification"),
    "yeast": (1484, 8, 0, 1484, "classification"),
    "zoo": (101, 1, 15, 101, "classification"),
}


@pytest.fixture(scope="module")
def loaded(mirror_dir: Path) -> Callable[[str], Dataset]:
    """Each dataset parsed at most once per module."""
    cache: dict[str, Dataset] = {}

    def get(name: str) -> Dataset:
        if name not in cache:
            cache[name] = load_dataset(name, mirror_dir)
        return cache[name]

    return get


#: image sets, tested in test_multimodal_data.py
IMAGE_SETS = ("digits_pairs", "fashion_label", "mnist_label", "mnist_mnist", "mnist_svhn", "polymnist", "polymnist_extended")
#: files the mirror lacks (shared/datasets/MANIFEST.md, "Missing or not canonical")
NOT_MIRRORED = {"svhn/train_32x32.mat", "svhn/test_32x32.mat"}


def test_every_registered_dataset_is_documented_here():
    assert sorted([*EXPECTED, *IMAGE_SETS]) == dataset_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_loads_with_documented_shape_and_schema(name, loaded):
    rows, n_real, n_cat, complete, task = EXPECTED[name]
    data = loaded(name)
    spec = get_spec(name)
    assert data.name == name and spec.task == task and spec.rows == rows
    assert data.values.shape == (rows, n_real + n_cat) and data.values.dtype == np.float64
    assert (len(data.schema.numeric_indices), len(data.schema.categorical_indices)) == (n_real, n_cat)
    assert data.target is not None and len(data.target) == rows
    assert data.target_name not in data.schema.names
    if task == "regression":
        assert data.target.dtype == np.float64 and np.isfinite(data.target).all()
    else:
        assert data.target.dtype.kind == "U" and (data.target != "").all()
    for j, feature in enumerate(data.schema.features):
        column = data.values[:, j]
        observed = column[~np.isnan(column)]
        assert np.isfinite(observed).all()
        if not feature.is_numeric:
            assert np.array_equal(observed, np.round(observed)), feature.name
            assert observed.min() >= 0 and observed.max() < feature.n_categories, feature.name
    assert data.complete_cases().n_rows == complete


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_complete_cases_validate_except_documented_constant(name, loaded):
    data = loaded(name).complete_cases()
    data.validate()
    if name == "mushroom":  # veil-type: only 'partial' occurs, so the loader drops it
        assert "veil-type" not in data.schema.names and "veil-type" in get_spec(name).description


def _raw(path: Path, sep: str = ",", skiprows: int = 0) -> pd.DataFrame:
    """An independent read of a text file as strings, for cross-checking."""
    return pd.read_csv(path, sep=sep, header=None, dtype=str, skiprows=skiprows, skipinitialspace=True,
                       keep_default_na=False)


@pytest.mark.parametrize(
    ("name", "files", "feature_columns", "n_incomplete"),
    [
        ("heart", [("heart_disease/processed.cleveland.data", 0)], list(range(13)), 6),
        ("mushroom", [("mushroom/agaricus-lepiota.data", 0)], [*range(1, 16), *range(17, 23)], 2480),  # 16: veil-type
        ("breast_cancer_wisconsin", [("breast_cancer_wisconsin/breast-cancer-wisconsin.data", 0)], list(range(1, 10)), 16),
        ("adult", [("adult/adult.data", 0), ("adult/adult.test", 1)], list(range(14)), 3620),
    ],
)
def test_nan_exactly_where_the_file_has_a_question_mark(name, files, feature_columns, n_incomplete, loaded, mirror_dir):
    raw = pd.concat([_raw(mirror_dir / f, skiprows=skip) for f, skip in files], ignore_index=True)
    question = (raw[feature_columns] == "?").to_numpy()
    data = loaded(name)
    assert np.array_equal(np.isnan(data.values), question)
    assert question.any(axis=1).sum() == n_incomplete == data.n_rows - data.complete_cases().n_rows


def test_real_values_match_an_independent_parse(loaded, mirror_dir):
    wine = pd.read_csv(mirror_dir / "wine_quality/winequality-white.csv", sep=";")
    data = loaded("whitewine")
    assert data.schema.names == tuple(wine.columns[:11])
    np.testing.assert_array_equal(data.values, wine.iloc[:, :11].to_numpy())
    np.testing.assert_array_equal(data.target, wine["quality"].to_numpy(dtype=float))
    letter = pd.read_csv(mirror_dir / "letter/letter-recognition.data", header=None)
    np.testing.assert_array_equal(loaded("letter").values, letter.iloc[:, 1:].to_numpy(dtype=float))
    assert (loaded("letter").target == letter[0].to_numpy(dtype=str)).all()
    yeast = pd.read_csv(mirror_dir / "yeast/yeast.data", sep=r"\s+", header=None)
    np.testing.assert_array_equal(loaded("yeast").values, yeast.iloc[:, 1:9].to_numpy())


def test_heart_schema_and_first_row(loaded):
    data = loaded("heart")
    kinds = {f.name: f.kind for f in data.schema.features}
    assert [n for n, k in kinds.items() if k == "positive"] == ["age", "trestbps", "chol", "thalach", "oldpeak"]
    assert [n for n, k in kinds.items() if k == "categorical"] == ["sex", "cp", "fbs", "restecg", "exang", "thal"]
    assert (kinds["slope"], kinds["ca"]) == ("ordinal", "count")
    # 63.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0
    np.testing.assert_array_equal(data.values[0], [63, 1, 0, 145, 233, 1, 2, 150, 0, 2.3, 2, 0, 1])
    thal = data.schema.features[data.schema.names.index("thal")]
    assert thal.categories == ("normal", "fixed defect", "reversable defect")
    assert data.target[0] == "0" and set(data.target) == {"0", "1", "2", "3", "4"}


def test_adult_joins_both_files_and_strips_test_labels(loaded):
    data = loaded("adult")
    assert set(data.target) == {">50K", "<=50K"}
    features = dict(zip(data.schema.names, data.schema.features))
    assert len(features["native-country"].categories) == 41 and len(features["education"].categories) == 16
    first = dict(zip(data.schema.names, data.values[0]))  # 39, State-gov, 77516, Bachelors, 13, ...
    assert first["age"] == 39 and features["workclass"].categories[int(first["workclass"])] == "State-gov"
    assert first["fnlwgt"] == 77516 and features["education"].categories[int(first["education"])] == "Bachelors"
    test_first = dict(zip(data.schema.names, data.values[32561]))  # adult.test: 25, Private, 226802, 11th, ...
    assert test_first["age"] == 25 and test_first["fnlwgt"] == 226802


def test_declared_kinds_of_mixed_datasets(loaded):
    zoo = loaded("zoo")
    assert zoo.schema.features[zoo.schema.names.index("legs")].kind == "count"
    assert all(f.categories == ("false", "true") for f in zoo.schema.features if f.name != "legs")
    heart = {f.name: f for f in loaded("heart").schema.features}
    assert [n for n, f in heart.items() if f.kind == "positive"] == ["age", "trestbps", "chol", "thalach", "oldpeak"]
    assert heart["ca"].kind == "count" and heart["slope"].kind == "ordinal" and heart["cp"].kind == "categorical"
    assert {f.kind for f in loaded("letter").schema.features} == {"count"}
    assert "animal_name" not in zoo.schema.names
    yeast = loaded("yeast")
    assert yeast.schema.features[yeast.schema.names.index("erl")].kind == "real"  # as the papers score it
    assert "sequence_name" not in yeast.schema.names
    credit = loaded("default_credit")
    cats = [f.name for f in credit.schema.features if f.kind == "categorical"]
    assert cats == ["SEX", "EDUCATION", "MARRIAGE", "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
    assert "ID" not in credit.schema.names
    assert np.flatnonzero(np.isnan(credit.values).any(axis=1)).tolist() == [2, 3]  # AGE written as `nan` (IDs 3, 4)
    boston = loaded("boston")
    assert [f.name for f in boston.schema.features if f.kind == "categorical"] == ["CHAS"]
    energy = loaded("energy")
    assert [f.name for f in energy.schema.features if f.kind == "categorical"] == [
        "orientation", "glazing_area_distribution"]
    assert energy.target_name == "heating_load" and "cooling_load" not in energy.schema.names
    np.testing.assert_array_equal(loaded("concrete").values[0], [540, 0, 0, 162, 2.5, 1040, 676, 28])
    assert "sample_code" not in loaded("breast_cancer_wisconsin").schema.names


def test_arff_categories_come_from_the_header(loaded):
    phishing = loaded("phishing")
    features = dict(zip(phishing.schema.names, phishing.schema.features))
    assert features["URL_Length"].categories == ("1", "0", "-1")
    assert features["having_IP_Address"].categories == ("-1", "1")
    assert phishing.target_name == "Result" and set(phishing.target) == {"-1", "1"}
    assert loaded("website_phishing").schema.names[0] == "SFH"


def test_embedded_datasets(loaded):
    diabetes = loaded("diabetes")
    sex = diabetes.schema.features[diabetes.schema.names.index("sex")]
    assert sex.kind == "categorical" and sex.n_categories == 2
    assert diabetes.values[:, diabetes.schema.names.index("age")].max() > 1  # unscaled
    digits = loaded("digits")
    assert not {"pixel_0_0", "pixel_4_0", "pixel_4_7"} & set(digits.schema.names)
    assert ((digits.values > 0).mean(axis=0) >= 0.01).all()
    assert "dropped" in get_spec("digits").description
    assert set(loaded("iris").target) == {"setosa", "versicolor", "virginica"}


def test_registry_files_match_the_mirror(mirror_dir):
    for name in dataset_names():
        spec = get_spec(name)
        assert isinstance(spec, DatasetSpec) and spec.licence and spec.description
        for file in spec.files:
            if file.relpath in NOT_MIRRORED:
                assert not file.local_path(mirror_dir).exists(), f"{file.relpath} is mirrored now: check it here"
                continue
            assert verify(file.local_path(mirror_dir), file.sha256), file.relpath
            assert file.local_path(mirror_dir).stat().st_size == file.size


# --- names and aliases ------------------------------------------------------------------------------------------
def test_aliases_expand_and_deduplicate():
    assert resolve_datasets("uci") == ["yeast", "glass", "zoo", "mushroom", "phishing", "whitewine", "heart"]
    assert resolve_datasets("iris, embedded,iris") == ["iris", "wine", "breast_cancer", "diabetes", "digits", "digits_pairs"]
    assert resolve_datasets(["zoo", "yeast,zoo", "UCI"])[:3] == ["zoo", "yeast", "glass"]
    assert all(name in dataset_names() for names in ALIASES.values() for name in names)
    assert not set(ALIASES) & set(dataset_names())


def test_embedded_names_differ_from_uci_files():
    for name in ALIASES["embedded"]:
        assert get_spec(name).source == SKLEARN and get_spec(name).files == ()
    for name in ALIASES["uci"]:
        assert get_spec(name).files


@pytest.mark.parametrize("names", ["nope", "yeast,nope", ["iris", "nope"], ""])
def test_unknown_names_list_the_known_ones(names):
    with pytest.raises(UnknownNameError) as info:
        resolve_datasets(names)
    message = str(info.value)
    assert "unknown dataset" in message and "yeast" in message and "aliases: uci, embedded, bimodal" in message


def test_load_unknown_dataset():
    with pytest.raises(UnknownNameError, match="unknown dataset 'uci'"):
        load_dataset("uci")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPUTEBENCH_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("IMPUTEBENCH_DATA_DIR")
    assert default_data_dir() == Path(platformdirs.user_cache_dir("imputebench"))


# --- malformed files -----------------------------------------------------------------------------------------------
def copy_altered(mirror_dir: Path, root: Path, relpath: str, alter: Callable[[bytes], bytes] = lambda b: b) -> Path:
    """Write ``alter(bytes of the mirror file)`` to ``root/relpath``; return ``root`` (a data dir)."""
    dest = root / relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(alter((mirror_dir / relpath).read_bytes()))
    return root


def edit_line(number: int, edit: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Apply ``edit`` to 1-based line ``number`` (line endings kept)."""

    def alter(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[number - 1] = edit(lines[number - 1])
        return b"\n".join(lines)

    return alter


def set_field(index: int, value: bytes, sep: bytes = b",") -> Callable[[bytes], bytes]:
    def edit(line: bytes) -> bytes:
        fields = line.split(sep)
        fields[index] = value
        return sep.join(fields)

    return edit


def load_error(name: str, data_dir: Path) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_dir)
    return str(info.value)


def test_truncated_mid_line(mirror_dir, tmp_path):
    cut = lambda data: b"\n".join(data.split(b"\n")[:16]) + b"\n" + data.split(b"\n")[16][:12]  # noqa: E731
    message = load_error("zoo", copy_altered(mirror_dir, tmp_path, "zoo/zoo.data", cut))
    assert "zoo.data: line 17" in message and "expected 18 fields" in message


def test_truncated_at_a_line_boundary(mirror_dir, tmp_path):
    cut = lambda data: b"\n".join(data.split(b"\n")[:100]) + b"\n"  # noqa: E731
    message = load_error("glass", copy_altered(mirror_dir, tmp_path, "glass/glass.data", cut))
    assert "glass.data" in message and "expected 214 rows, found 100" in message


def test_wrong_number_of_fields(mirror_dir, tmp_path):
    drop_last = edit_line(17, lambda line: line.rsplit(b",", 1)[0])
    message = load_error("heart", copy_altered(mirror_dir, tmp_path, "heart_disease/processed.cleveland.data", drop_last))
    assert "processed.cleveland.data: line 17" in message and "expected 14 fields, found 13" in message


@pytest.mark.parametrize("token", [b"abc", b"inf", b"nan", b""])
def test_non_numeric_value(mirror_dir, tmp_path, token):
    alter = edit_line(10, set_field(0, token, b";"))
    message = load_error("whitewine", copy_altered(mirror_dir, tmp_path, "wine_quality/winequality-white.csv", alter))
    assert "winequality-white.csv: line 10" in message and "'fixed acidity'" in message and "not a number" in message


def test_undeclared_category(mirror_dir, tmp_path):
    alter = edit_line(5, set_field(1, b"z"))
    message = load_error("mushroom", copy_altered(mirror_dir, tmp_path, "mushroom/agaricus-lepiota.data", alter))
    assert "agaricus-lepiota.data: line 5" in message and "'cap-shape'" in message and "'z'" in message
    assert "not a declared category" in message


def test_undeclared_numeric_category_and_class(mirror_dir, tmp_path):
    relpath = "heart_disease/processed.cleveland.data"
    message = load_error("heart", copy_altered(mirror_dir, tmp_path, relpath, edit_line(3, set_field(2, b"5.0"))))
    assert "processed.cleveland.data: line 3" in message and "'cp'" in message
    alter = edit_line(2, set_field(4, b"Iris-unknown"))
    message = load_error("uci_iris", copy_altered(mirror_dir, tmp_path, "iris/iris.data", alter))
    assert "iris.data: line 2" in message and "'class'" in message and "Iris-unknown" in message


@pytest.mark.parametrize(("name", "relpath", "line", "field", "value", "sep", "column", "what"), [
    ("zoo", "zoo/zoo.data", 3, 13, b"3.5", b",", "'legs'", "not a count"),
    ("heart", "heart_disease/processed.cleveland.data", 4, 4, b"-1", b",", "'chol'", "negative"),
])
def test_count_and_positive_ranges(mirror_dir, tmp_path, name, relpath, line, field, value, sep, column, what):
    message = load_error(name, copy_altered(mirror_dir, tmp_path, relpath, edit_line(line, set_field(field, value, sep))))
    assert f"line {line}" in message and column in message and what in message


def test_undeclared_arff_value_names_the_data_line(mirror_dir, tmp_path):
    relpath = "website_phishing/PhishingData.arff"
    lines = (mirror_dir / relpath).read_bytes().split(b"\n")
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == b"@data") + 3
    message = load_error("website_phishing", copy_altered(mirror_dir, tmp_path, relpath, edit_line(line, set_field(0, b"7"))))
    assert f"PhishingData.arff: line {line}" in message and "'SFH'" in message


def test_non_nominal_arff_attribute(mirror_dir, tmp_path):
    alter = edit_line(3, lambda line: line.replace(b"{1,-1,0}", b"numeric"))
    message = load_error("website_phishing", copy_altered(mirror_dir, tmp_path, "website_phishing/PhishingData.arff", alter))
    assert "PhishingData.arff: line 3" in message and "nominal" in message


def test_adult_test_line_numbers_count_the_skipped_first_line(mirror_dir, tmp_path):
    copy_altered(mirror_dir, tmp_path, "adult/adult.data")
    alter = edit_line(3, set_field(0, b"x"))
    message = load_error("adult", copy_altered(mirror_dir, tmp_path, "adult/adult.test", alter))
    assert "adult.test: line 3" in message and "'age'" in message


def test_missing_file_says_how_to_fetch(tmp_path):
    message = load_error("yeast", tmp_path)
    assert str(tmp_path / "yeast" / "yeast.data") in message and "imputebench data fetch yeast" in message
    assert "--data-dir" in message


@pytest.mark.parametrize(("name", "relpath", "content"), [
    ("yeast", "yeast/yeast.data", b""),
    ("glass", "glass/glass.data", b"\n  \n\r\n"),
    ("whitewine", "wine_quality/winequality-white.csv", None),  # header only
])
def test_empty_file_has_no_rows(mirror_dir, tmp_path, name, relpath, content):
    header_only = lambda data: data.split(b"\n")[0] + b"\n"  # noqa: E731
    alter = header_only if content is None else (lambda data: content)
    message = load_error(name, copy_altered(mirror_dir, tmp_path, relpath, alter))
    assert relpath.split("/")[1] in message and "no rows" in message


def test_corrupt_spreadsheet(mirror_dir, tmp_path):
    message = load_error("concrete", copy_altered(mirror_dir, tmp_path, "concrete/Concrete_Data.xls", lambda b: b[:5000]))
    assert "Concrete_Data.xls" in message and "cannot read spreadsheet" in message


def test_unexpected_header(mirror_dir, tmp_path):
    alter = edit_line(1, lambda line: line.replace(b'"pH"', b'"PH"'))
    message = load_error("whitewine", copy_altered(mirror_dir, tmp_path, "wine_quality/winequality-white.csv", alter))
    assert "winequality-white.csv: line 1" in message and "unexpected header" in message


def test_unaltered_copy_loads(mirror_dir, tmp_path):
    shutil.copytree(mirror_dir / "zoo", tmp_path / "zoo")
    assert load_dataset("zoo", tmp_path).n_rows == 101
