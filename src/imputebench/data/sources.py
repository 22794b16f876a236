"""The dataset registry: what each benchmark dataset is, where its files come from, how to read them.

Names. The scikit-learn bundled tables (no download) are ``iris``, ``wine``,
``breast_cancer`` (Wisconsin diagnostic, = UCI ``wdbc``), ``diabetes`` and
``digits``, and ``digits_pairs`` (the MNIST+MNIST pairing of ``digits``; alias
``embedded`` names all six, alias ``quickstart`` the three small tables of ``imputebench run``'s
demonstration). The image sets (``mnist_mnist``, ``mnist_svhn``,
``mnist_label``, ``fashion_label``; alias ``bimodal``) are declared in
:mod:`imputebench.data.multimodal`, the five-modality ``polymnist`` and
``polymnist_extended`` (alias ``pentamodal``; generated from MNIST) in
:mod:`imputebench.data.polymnist`, and registered here. The raw UCI files, read from the cache or
mirror layout ``<data_dir>/<folder>/<filename>`` (see ``shared/datasets/MANIFEST.md``),
are ``yeast``, ``glass``, ``zoo``, ``mushroom``, ``phishing`` (Phishing
Websites, 11,055 rows), ``website_phishing`` (Website Phishing, 1,353 rows),
``whitewine`` (Wine Quality, white), ``heart`` (Cleveland heart disease),
``letter``, ``spambase``, ``breast_cancer_wisconsin`` (the original 699-row
set with ``?``), ``wdbc``, ``boston``, ``concrete``, ``energy``, ``uci_wine``,
``uci_iris``, ``adult`` and ``default_credit``. Alias ``uci`` names the seven
UCI sets most used in imputation papers.

Every feature's kind is declared by hand from the dataset's ``.names`` file
or UCI page (ARFF files: from their header), never inferred from the values.
Each load checks every file's sha256 against the one recorded here
(:mod:`imputebench.data.integrity`): a modified file is refused unless
``allow_modified``, and the dataset records what it was read from
(:meth:`Dataset.provenance`).

Missing-value markers (``?``; ``nan`` in the default_credit CSV) become
``NaN``; rows are never dropped here (use :meth:`Dataset.complete_cases`). The
prediction target is returned apart from ``values``: class labels as text
(``task == "classification"``) or a float response (``"regression"``); ID
columns are dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from imputebench.data import integrity, multimodal, polymnist, uci
from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.spec import SKLEARN, DatasetSpec, Loader, RemoteFile, Task
from imputebench.data.uci import Column, cat, count, drop, ordinal, positive, real, target
from imputebench.errors import UnknownNameError
from imputebench.schema import FeatureSchema

UCI = "UCI Machine Learning Repository"
CC_BY = "CC BY 4.0 (UCI)"
UCI_DB = "https://archive.ics.uci.edu/ml/machine-learning-databases"


_REGISTRY: dict[str, DatasetSpec] = {}

ALIASES: dict[str, list[str]] = {
    "uci": ["yeast", "glass", "zoo", "mushroom", "phishing", "whitewine", "heart"],
    "embedded": ["iris", "wine", "breast_cancer", "diabetes", "digits", "digits_pairs"],
    "bimodal": ["mnist_mnist", "mnist_svhn", "mnist_label", "fashion_label"],
    "pentamodal": ["polymnist", "polymnist_extended"],  # not "polymnist": that is the vanilla set's own name
    # the default run's tables: small (150, 178, 442 rows), numeric and categorical (diabetes' sex), no download
    "quickstart": ["iris", "wine", "diabetes"],
}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry; names are unique and distinct from aliases."""
    if spec.name in _REGISTRY or spec.name in ALIASES:
        raise ValueError(f"dataset {spec.name!r} registered twice or shadows an alias")
    _REGISTRY[spec.name] = spec
    return spec


def dataset_names() -> list[str]:
    """All registered dataset names, sorted."""
    return sorted(_REGISTRY)


def _unknown(name: str) -> UnknownNameError:
    return UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}, aliases: {', '.join(ALIASES)}")


def get_spec(name: str) -> DatasetSpec:
    """The spec of one dataset (not an alias)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise _unknown(name) from None


def resolve_datasets(names: str | Sequence[str]) -> list[str]:
    """Expand comma-separated names and aliases into dataset names, de-duplicated in first-seen order."""
    items = [names] if isinstance(names, str) else list(names)
    tokens = [t.strip().lower() for item in items for t in item.split(",") if t.strip()]
    if not tokens:
        raise _unknown("")
    out: list[str] = []
    for token in tokens:
        if token not in _REGISTRY and token not in ALIASES:
            raise _unknown(token)
        out.extend(ALIASES.get(token, [token]))
    return list(dict.fromkeys(out))


def default_data_dir() -> Path:
    """``$IMPUTEBENCH_DATA_DIR`` if set, else the per-user cache directory ``imputebench``."""
    env = os.environ.get("IMPUTEBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("imputebench"))


#: Reads of a dataset whose files change under it before :func:`load_dataset` gives up.
_READ_ATTEMPTS = 2


def load_dataset(name: str, data_dir: Path | None = None, allow_modified: bool = False) -> Dataset:
    """Read one dataset with its declared schema; ``NaN`` marks values missing in the source.

    Each file is checked against the sha256 its spec records (hashed once per process and file
    version, see :mod:`.integrity`); the result carries the digests in ``Dataset.files``.

    Raises :class:`DatasetError` for a missing, empty, malformed or truncated file, and its
    subclass :class:`~imputebench.data.integrity.ModifiedDataError` for a file whose sha256 is
    not the manifest's, unless ``allow_modified`` (the dataset's provenance is then ``"modified"``).
    """
    spec = get_spec(name)
    root = default_data_dir() if data_dir is None else Path(data_dir)
    paths = [_existing(file, root, name) for file in spec.files]
    for _ in range(_READ_ATTEMPTS):
        stamps = integrity.file_stamps(paths)
        dataset = _read_verified(spec, root, allow_modified, data_dir is not None)
        if _stamps_now(paths) == stamps:  # the bytes hashed are the bytes read
            return dataset
    raise DatasetError(f"{', '.join(map(str, paths))}: changed while being read (is another process writing it?); "
                       "load it again once it is complete")


def _existing(file: RemoteFile, root: Path, name: str) -> Path:
    """The local path of ``file``; :class:`DatasetError` saying how to fetch it when it is not there."""
    path = file.local_path(root)
    if not path.is_file():
        raise DatasetError(
            f"{path}: file not found; run `imputebench data fetch {name}` "
            f"(or pass --data-dir DIR where DIR/{file.relpath} exists)"
        )
    return path


def _stamps_now(paths: Sequence[Path]) -> tuple[integrity.FileStamp, ...] | None:
    """The files' stamps now, or ``None`` when one has gone."""
    try:
        return integrity.file_stamps(paths)
    except OSError:
        return None


def _read_verified(spec: DatasetSpec, root: Path, allow_modified: bool, data_dir_given: bool) -> Dataset:
    """Run the loader, check the row count and the files' sha256; the dataset with its file digests.

    The files are read before they are verified, so a file both modified and unreadable is refused
    with a message that says what is wrong in it as well as how to restore it.
    """
    try:
        dataset = spec.loader(root)
        _check_rows(spec, dataset, root)
    except DatasetError as error:
        if not allow_modified:
            digests = integrity.file_digests(spec.files, root)
            integrity.refuse_modified(spec.name, spec.files, digests, root, data_dir_given, cause=error)
        raise
    digests = integrity.file_digests(spec.files, root)
    if not allow_modified:
        integrity.refuse_modified(spec.name, spec.files, digests, root, data_dir_given)
    return replace(dataset, files=digests)


def _check_rows(spec: DatasetSpec, dataset: Dataset, root: Path) -> None:
    """:class:`DatasetError` when the dataset has not the number of rows its spec documents."""
    if spec.rows is not None and dataset.n_rows != spec.rows:
        paths = ", ".join(str(f.local_path(root)) for f in spec.files) or spec.name
        raise DatasetError(f"{paths}: expected {spec.rows} rows, found {dataset.n_rows} (truncated or altered file?)")


# --- loader factories ------------------------------------------------------------------------------
def _dataset(name: str, parts: Sequence[uci.Decoded]) -> Dataset:
    first = parts[0]
    values = np.concatenate([p.values for p in parts])
    target_values = None if first.target is None else np.concatenate([p.target for p in parts])
    return Dataset(name, values, FeatureSchema(first.features), target_values, first.target_name)


def _file(folder: str, filename: str, sha256: str, size: int, url: str | None = None, member: str | None = None,
          mirror_only: bool = False) -> RemoteFile:
    """A mirror-layout file; its canonical URL defaults to ``UCI_DB/<folder>/<filename>``."""
    return RemoteFile(folder, filename, url or f"{UCI_DB}/{folder}/{filename}", sha256, size, member, mirror_only)


def _text(name: str, file: RemoteFile, columns: Sequence[Column], rows: int, description: str, *, sep: str | None = ",",
          header: bool = False, task: Task = "classification", licence: str = CC_BY,
          missing: Sequence[str] = uci.MISSING_TOKENS) -> None:
    """Register a dataset read from one delimited text file (``sep=None``: whitespace; ``missing``: no-value tokens)."""

    def load(data_dir: Path) -> Dataset:
        path = file.local_path(data_dir)
        return _dataset(name, [uci.decode(uci.read_delimited(path, columns, sep, header), columns, path, missing)])

    register(DatasetSpec(name, UCI, licence, (file,), load, description, task, rows))


def _arff(name: str, file: RemoteFile, n_attributes: int, rows: int, description: str) -> None:
    """Register an all-nominal ARFF dataset; names and categories come from its header, the last attribute is the class."""

    def load(data_dir: Path) -> Dataset:
        path = file.local_path(data_dir)
        columns, frame = uci.read_arff(path)
        if len(columns) != n_attributes:
            raise uci.fail(path, f"expected {n_attributes} attributes, found {len(columns)}")
        return _dataset(name, [uci.decode(frame, columns, path)])

    register(DatasetSpec(name, UCI, CC_BY, (file,), load, description, "classification", rows))


def _excel(name: str, file: RemoteFile, columns: Sequence[Column], header: Sequence[str], rows: int,
           description: str) -> None:
    """Register a regression dataset read from the first sheet of a spreadsheet with a one-row header."""

    def load(data_dir: Path) -> Dataset:
        path = file.local_path(data_dir)
        return _dataset(name, [uci.decode(uci.read_excel(path, columns, header), columns, path)])

    register(DatasetSpec(name, UCI, CC_BY, (file,), load, description, "regression", rows))


def _pairs(name: str, domain: str) -> Column:
    """A categorical column from a ``.names`` domain such as ``"bell=b,conical=c"`` (label=level)."""
    labels, levels = zip(*(item.strip().split("=") for item in domain.split(",")))
    return cat(name, levels, labels)


def _listed(name: str, domain: str) -> Column:
    """A categorical column from a comma-separated ``.names`` list of levels."""
    return cat(name, tuple(v.strip() for v in domain.rstrip(".").split(",")))


def _texts(*levels: int) -> tuple[str, ...]:
    return tuple(str(v) for v in levels)


BOOL = ("false", "true")
NO_YES = ("no", "yes")

# --- UCI text datasets ---------------------------------------------------------------------------------
_text("yeast", _file("yeast", "yeast.data", "7cf61776fc04f527f93bf57a327b863893a1225d82df02d457e8950173218258", 94976), (
    drop("sequence_name"),
    *real("mcg", "gvh", "alm", "mit"),
    # yeast.names calls `erl` binary (values 0.5/1.0), but both papers score Yeast as a continuous
    # dataset (NRMSE over all features: VSAE Table 3, VAEAC Table 1); declared real for comparability.
    *real("erl", "pox", "vac", "nuc"),
    target("localization_site", ("CYT", "NUC", "MIT", "ME3", "ME2", "ME1", "EXC", "VAC", "POX", "ERL")),
), 1484, "Yeast protein localisation (Horton & Nakai 1996): 8 real scores (the binary `erl` too, as the papers "
   "score it); the sequence name is dropped.", sep=None)

_text("glass", _file("glass", "glass.data", "dd67373f4baf2807345df02cbfef2093d342e61ad0d82a4fb79af43ef8ce449d", 11903), (
    drop("id"), *real("RI", "Na", "Mg", "Al", "Si", "K", "Ca", "Ba", "Fe"), target("type", _texts(1, 2, 3, 4, 5, 6, 7)),
), 214, "Glass identification (German 1987): refractive index and 8 oxide weight percents, all real; Id dropped.")

_text("zoo", _file("zoo", "zoo.data", "cddc71c26ab9bc82795b8f4ff114cade41885d92720c6af29ffb69bcf73f0315", 4126), (
    drop("animal_name"),
    *(cat(n, (0, 1), BOOL) for n in ("hair", "feathers", "eggs", "milk", "airborne", "aquatic", "predator", "toothed",
                                     "backbone", "breathes", "venomous", "fins")),
    *count("legs"),  # zoo.names: "Numeric (set of values: {0,2,4,5,6,8})"
    *(cat(n, (0, 1), BOOL) for n in ("tail", "domestic", "catsize")),
    target("type", _texts(1, 2, 3, 4, 5, 6, 7)),
), 101, "Zoo (Forsyth 1990): 15 Boolean features (categorical) and the count `legs` in {0,2,4,5,6,8}; animal name "
   "dropped.")

_COLOURS = "brown=n,buff=b,cinnamon=c,gray=g,orange=o,pink=p,red=e,white=w,yellow=y"
_SURFACE = "fibrous=f,scaly=y,silky=k,smooth=s"
_text("mushroom", _file("mushroom", "agaricus-lepiota.data",
                        "e65d082030501a3ebcbcd7c9f7c71aa9d28fdfff463bf4cf4716a3fe13ac360e", 373704), (
    target("class", ("e", "p")),  # edible, poisonous
    _pairs("cap-shape", "bell=b,conical=c,convex=x,flat=f,knobbed=k,sunken=s"),
    _pairs("cap-surface", "fibrous=f,grooves=g,scaly=y,smooth=s"),
    _pairs("cap-color", "brown=n,buff=b,cinnamon=c,gray=g,green=r,pink=p,purple=u,red=e,white=w,yellow=y"),
    _pairs("bruises?", "bruises=t,no=f"),
    _pairs("odor", "almond=a,anise=l,creosote=c,fishy=y,foul=f,musty=m,none=n,pungent=p,spicy=s"),
    _pairs("gill-attachment", "attached=a,descending=d,free=f,notched=n"),
    _pairs("gill-spacing", "close=c,crowded=w,distant=d"),
    _pairs("gill-size", "broad=b,narrow=n"),
    _pairs("gill-color", "black=k,brown=n,buff=b,chocolate=h,gray=g,green=r,orange=o,pink=p,purple=u,red=e,white=w,"
                         "yellow=y"),
    _pairs("stalk-shape", "enlarging=e,tapering=t"),
    _pairs("stalk-root", "bulbous=b,club=c,cup=u,equal=e,rhizomorphs=z,rooted=r"),  # "?" = missing
    _pairs("stalk-surface-above-ring", _SURFACE),
    _pairs("stalk-surface-below-ring", _SURFACE),
    _pairs("stalk-color-above-ring", _COLOURS),
    _pairs("stalk-color-below-ring", _COLOURS),
    drop("veil-type"),  # constant: only 'partial' occurs, so it can be neither standardised nor scored
    _pairs("veil-color", "brown=n,orange=o,white=w,yellow=y"),
    _pairs("ring-number", "none=n,one=o,two=t"),
    _pairs("ring-type", "cobwebby=c,evanescent=e,flaring=f,large=l,none=n,pendant=p,sheathing=s,zone=z"),
    _pairs("spore-print-color", "black=k,brown=n,buff=b,chocolate=h,green=r,orange=o,purple=u,white=w,yellow=y"),
    _pairs("population", "abundant=a,clustered=c,numerous=n,scattered=s,several=v,solitary=y"),
    _pairs("habitat", "grasses=g,leaves=l,meadows=m,paths=p,urban=u,waste=w,woods=d"),
), 8124, "Mushroom (Schlimmer 1987): 21 categorical features, categories from agaricus-lepiota.names; `stalk-root` "
   "has 2480 `?`. `veil-type` is dropped: it is constant in the data (only 'partial' occurs).")

# Kinds and codes from the UCI Heart Disease page (https://archive.ics.uci.edu/dataset/45/heart+disease).
_text("heart", _file("heart_disease", "processed.cleveland.data",
                     "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8", 18461), (
    *positive("age"),  # years
    cat("sex", (0, 1), ("female", "male")),
    cat("cp", (1, 2, 3, 4), ("typical angina", "atypical angina", "non-anginal pain", "asymptomatic")),
    *positive("trestbps", "chol"),  # resting blood pressure (mm Hg), serum cholesterol (mg/dl)
    cat("fbs", (0, 1), ("<=120 mg/dl", ">120 mg/dl")),
    cat("restecg", (0, 1, 2), ("normal", "ST-T wave abnormality", "left ventricular hypertrophy")),
    *positive("thalach"),  # maximum heart rate achieved (beats per minute)
    cat("exang", (0, 1), NO_YES),
    *positive("oldpeak"),  # ST depression induced by exercise relative to rest, >= 0
    ordinal("slope", (1, 2, 3), ("upsloping", "flat", "downsloping")),
    *count("ca"),  # number of major vessels (0-3) coloured by fluoroscopy
    cat("thal", (3, 6, 7), ("normal", "fixed defect", "reversable defect")),
    target("num", _texts(0, 1, 2, 3, 4)),
), 303, "Cleveland heart disease (Detrano et al. 1989): 5 positive (age, trestbps, chol, thalach, oldpeak), 1 count "
   "(`ca`), 1 ordinal (`slope`) and 6 categorical features; `ca` and `thal` have "
   "`?` in 6 rows; target `num` 0..4.")

_text("letter", _file("letter", "letter-recognition.data",
                      "2b89f3602cf768d3c8355267d2f13f2417809e101fc2b5ceee10db19a60de6e2", 712565), (
    target("lettr", tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
    *count("x-box", "y-box", "width", "high", "onpix", "x-bar", "y-bar", "x2bar", "y2bar", "xybar", "x2ybr", "xy2br",
           "x-ege", "xegvy", "y-ege", "yegvx"),  # letter-recognition.names: "(integer)", 0..15
), 20000, "Letter recognition (Frey & Slate 1991): 16 integer-scaled (0..15) image statistics, declared counts.")

_WORDS = ("make address all 3d our over remove internet order mail receive will people report addresses free business "
          "email you credit your font 000 money hp hpl george 650 lab labs telnet 857 data 415 85 technology 1999 "
          "parts pm direct cs meeting original project re edu table conference").split()
_text("spambase", _file("spambase", "spambase.data", "b1ef93de71f97714d3d7d4f58fc9f718da7bbc8ac8a150eff2778616a8097b12",
                        702942), (
    *real(*(f"word_freq_{w}" for w in _WORDS), *(f"char_freq_{c}" for c in ";([!$#")),
    *real("capital_run_length_average", "capital_run_length_longest", "capital_run_length_total"),
    target("spam", ("0", "1")),
), 4601, "Spambase (Hopkins et al. 1999): 57 continuous word/character frequencies and capital-run lengths.")

_text("breast_cancer_wisconsin", _file("breast_cancer_wisconsin", "breast-cancer-wisconsin.data",
                                       "402c585309c399237740f635ef9919dc512cca12cbeb20de5e563a4593f22b64", 19889), (
    drop("sample_code"),
    # The nine cytology scores are pathologist grades 1..10: ordered, equally spaced, and treated as numbers
    # throughout the literature; as real features they keep that order and are scored by NRMSE.
    *real("clump_thickness", "uniformity_of_cell_size", "uniformity_of_cell_shape", "marginal_adhesion",
          "single_epithelial_cell_size", "bare_nuclei", "bland_chromatin", "normal_nucleoli", "mitoses"),
    target("class", ("2", "4")),  # benign, malignant
), 699, "Original Wisconsin breast cancer (Wolberg 1992): 9 scores 1..10 declared real; 16 `?` in bare_nuclei; "
   "sample code dropped.")

_NUCLEUS = ("radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave_points",
            "symmetry", "fractal_dimension")
_text("wdbc", _file("breast_cancer_wisconsin", "wdbc.data",
                    "d606af411f3e5be8a317a5a8b652b425aaf0ff38ca683d5327ffff94c3695f4a", 124103), (
    drop("id"), target("diagnosis", ("M", "B")), *real(*(f"{f}_{s}" for s in ("mean", "se", "worst") for f in _NUCLEUS)),
), 569, "Wisconsin diagnostic breast cancer, raw UCI file (= scikit-learn's `breast_cancer`): 30 real features; ID dropped.")

_text("boston", _file("boston_housing", "housing.data", "baadf72995725d76efe787b664e1f083388c79ba21ef9a7990d87f774184735a",
                      49082, url=f"{UCI_DB}/housing/housing.data"), (
    *real("CRIM", "ZN", "INDUS"), cat("CHAS", (0, 1), ("no", "bounds river")),
    *real("NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"), target("MEDV"),
), 506, "Boston housing (Harrison & Rubinfeld 1978): 12 real features and binary CHAS; target MEDV.", sep=None,
    task="regression",
    licence="unclear: StatLib/UCI, no explicit licence; deprecated in scikit-learn for ethical concerns (B column)")

_text("uci_wine", _file("wine", "wine.data", "6be6b1203f3d51df0b553a70e57b8a723cd405683958204f96d23d7cd6aea659", 10782), (
    target("class", ("1", "2", "3")),
    *real("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
          "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315_of_diluted_wines", "proline"),
), 178, "Wine recognition (Forina et al.), raw UCI file: 13 real constituents.")

_text("uci_iris", _file("iris", "iris.data", "6f608b71a7317216319b4d27b4d9bc84e6abd734eda7872b71a458569e2656c0", 4551), (
    *real("sepal_length", "sepal_width", "petal_length", "petal_width"),
    target("class", ("Iris-setosa", "Iris-versicolor", "Iris-virginica")),
), 150, "Iris (Fisher 1936), raw UCI file: 4 real features (rows 35 and 38 differ from Fisher's paper, see iris.names; "
   "scikit-learn's `iris` corrects them).")

_text("whitewine", _file("wine_quality", "winequality-white.csv",
                         "76c3f809815c17c07212622f776311faeb31e87610d52c26d87d6e361b169836", 264426,
                         url=f"{UCI_DB}/wine-quality/winequality-white.csv"), (
    *real("fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides", "free sulfur dioxide",
          "total sulfur dioxide", "density", "pH", "sulphates", "alcohol"),
    target("quality"),
), 4898, "Wine quality, white (Cortez et al. 2009): 11 real physicochemical features; target quality score 0..10.",
    sep=";", header=True, task="regression")

# --- ARFF --------------------------------------------------------------------------------------------------
_arff("phishing", _file("phishing", "Training Dataset.arff",
                        "0dfcd84ccdedca6e1be2ce26452c1f1089ac3f839b9a1b0ab1cdcf6d895f9a70", 800856,
                        url="https://archive.ics.uci.edu/static/public/327/phishing+websites.zip",
                        member="Training Dataset.arff"),
      31, 11055, "Phishing Websites (Mohammad et al. 2012): 30 nominal features with values among -1/0/1; "
                 "categories in ARFF-header order.")
_arff("website_phishing", _file("website_phishing", "PhishingData.arff",
                                "9de9749acfcf47e048fb4efa8e04d1fc18e7ea8be2640a31f368a5cc70da4ece", 33379,
                                url=f"{UCI_DB}/00379/PhishingData.arff"),
      10, 1353, "Website Phishing (Abdelhamid et al. 2014): 9 nominal features; categories in ARFF-header order.")

# --- spreadsheets ------------------------------------------------------------------------------------------
_MIX = "(kg in a m^3 mixture)"
_excel("concrete", _file("concrete", "Concrete_Data.xls", "0233dedd4c6f36b73ce7ffe2dd607eb5373ea74de1fe2a88c1b69fd69fabfad3",
                         124928, url=f"{UCI_DB}/concrete/compressive/Concrete_Data.xls"), (
    *real("cement", "blast_furnace_slag", "fly_ash", "water", "superplasticizer", "coarse_aggregate", "fine_aggregate",
          "age"),
    target("compressive_strength"),
), (f"Cement (component 1){_MIX}", f"Blast Furnace Slag (component 2){_MIX}", f"Fly Ash (component 3){_MIX}",
    f"Water (component 4){_MIX}", f"Superplasticizer (component 5){_MIX}", f"Coarse Aggregate (component 6){_MIX}",
    f"Fine Aggregate (component 7){_MIX}", "Age (day)", "Concrete compressive strength(MPa, megapascals)"),
    1030, "Concrete compressive strength (Yeh 1998): 7 mixture amounts and age, all real.")

_excel("energy", _file("energy", "ENB2012_data.xlsx", "ce80fba0fdf4be0e2f2e709fd01ff9c807246947fe666e18710d5105af7970b6",
                       80458, url=f"{UCI_DB}/00242/ENB2012_data.xlsx"), (
    *real("relative_compactness", "surface_area", "wall_area", "roof_area", "overall_height"),
    # Tsanas & Xifara (2012): orientation 2..5 = N, E, S, W; glazing distribution 0 = none, 1 = uniform, 2..5 = N..W.
    cat("orientation", (2, 3, 4, 5), ("north", "east", "south", "west")),
    *real("glazing_area"),
    cat("glazing_area_distribution", (0, 1, 2, 3, 4, 5), ("none", "uniform", "north", "east", "south", "west")),
    target("heating_load"), drop("cooling_load"),
), ("X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8", "Y1", "Y2"), 768,
    "Energy efficiency (Tsanas & Xifara 2012): 6 real features, orientation and glazing distribution categorical; "
    "target Y1 heating load; the second response Y2 (cooling load) is dropped.")

# --- adult: two files --------------------------------------------------------------------------------------------
# Categories exactly as listed in adult.names (in that order).
ADULT_COLUMNS = (
    *real("age"),
    _listed("workclass", "Private, Self-emp-not-inc, Self-emp-inc, Federal-gov, Local-gov, State-gov, Without-pay, "
                         "Never-worked."),
    *real("fnlwgt"),
    _listed("education", "Bachelors, Some-college, 11th, HS-grad, Prof-school, Assoc-acdm, Assoc-voc, 9th, 7th-8th, "
                         "12th, Masters, 1st-4th, 10th, Doctorate, 5th-6th, Preschool."),
    *real("education-num"),
    _listed("marital-status", "Married-civ-spouse, Divorced, Never-married, Separated, Widowed, Married-spouse-absent, "
                              "Married-AF-spouse."),
    _listed("occupation", "Tech-support, Craft-repair, Other-service, Sales, Exec-managerial, Prof-specialty, "
                          "Handlers-cleaners, Machine-op-inspct, Adm-clerical, Farming-fishing, Transport-moving, "
                          "Priv-house-serv, Protective-serv, Armed-Forces."),
    _listed("relationship", "Wife, Own-child, Husband, Not-in-family, Other-relative, Unmarried."),
    _listed("race", "White, Asian-Pac-Islander, Amer-Indian-Eskimo, Other, Black."),
    _listed("sex", "Female, Male."),
    *real("capital-gain", "capital-loss", "hours-per-week"),
    _listed("native-country", "United-States, Cambodia, England, Puerto-Rico, Canada, Germany, "
                              "Outlying-US(Guam-USVI-etc), India, Japan, Greece, South, China, Cuba, Iran, Honduras, "
                              "Philippines, Italy, Poland, Jamaica, Vietnam, Mexico, Portugal, Ireland, France, "
                              "Dominican-Republic, Laos, Ecuador, Taiwan, Haiti, Columbia, Hungary, Guatemala, Nicaragua, "
                              "Scotland, Thailand, Yugoslavia, El-Salvador, Trinadad&Tobago, Peru, Hong, "
                              "Holand-Netherlands."),
    target("income", (">50K", "<=50K")),
)
ADULT_FILES = (
    _file("adult", "adult.data", "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d", 3974305),
    _file("adult", "adult.test", "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05", 2003153),
)


def _load_adult(data_dir: Path) -> Dataset:
    """adult.data then adult.test: ``|`` lines skipped, labels' trailing ``.`` (test file) stripped."""
    parts = []
    for file in ADULT_FILES:
        path = file.local_path(data_dir)
        frame = uci.read_delimited(path, ADULT_COLUMNS, ",", comment="|")
        frame["income"] = frame["income"].str.removesuffix(".")
        parts.append(uci.decode(frame, ADULT_COLUMNS, path))
    return _dataset("adult", parts)


register(DatasetSpec("adult", UCI, CC_BY, ADULT_FILES, _load_adult,
                     "Adult census income (Kohavi 1996), train + test files: 6 real and 8 categorical features; `?` in "
                     "workclass, occupation and native-country.", "classification", 48842))

# --- default of credit card clients ---------------------------------------------------------------------------------
# Codes per the UCI page (https://archive.ics.uci.edu/dataset/350); the levels marked "undocumented" occur in the
# data but are not described there. PAY_* share one level set: -1 = paid duly, k = payment delay of k months.
_UNDOC = "undocumented"
_PAY = cat("PAY", tuple(range(-2, 9)), (f"-2 ({_UNDOC})", "paid duly", f"0 ({_UNDOC})",
                                         *(f"delay {k} month{'s' * (k > 1)}" for k in range(1, 9))))
DEFAULT_CREDIT_COLUMNS = (
    drop("ID"),
    *real("LIMIT_BAL"),
    cat("SEX", (1, 2), ("male", "female")),
    cat("EDUCATION", tuple(range(7)), (f"0 ({_UNDOC})", "graduate school", "university", "high school", "others",
                                       f"5 ({_UNDOC})", f"6 ({_UNDOC})")),
    cat("MARRIAGE", (0, 1, 2, 3), (f"0 ({_UNDOC})", "married", "single", "others")),
    *real("AGE"),
    *(cat(f"PAY_{k}", _PAY.levels, _PAY.labels) for k in (0, 2, 3, 4, 5, 6)),
    *real(*(f"BILL_AMT{k}" for k in range(1, 7)), *(f"PAY_AMT{k}" for k in range(1, 7))),
    target("default.payment.next.month", ("0", "1")),
)
_text("default_credit", _file("default_credit", "UCI_Credit_Card.csv",
                              "5c69a6b4e167dac42c4b22665330404fe49928a198de44d2d061b800cb65f9b1", 2875733,
                              url=f"{UCI_DB}/00350/default%20of%20credit%20card%20clients.xls", mirror_only=True),
      DEFAULT_CREDIT_COLUMNS, 30000,
      "Default of credit card clients (Yeh & Lien 2009), Kaggle CSV conversion of the UCI xls: 14 real and 9 "
      "categorical features; ID dropped. This CSV writes AGE as `nan` in 2 rows (IDs 3 and 4), read as missing, and "
      "some amounts in 3-digit scientific notation (`1.00E+05`). The canonical URL serves the xls: fetch from a mirror.",
      header=True, licence="CC0 (Kaggle re-post); derived from UCI data, CC BY 4.0", missing=("nan",))


# --- scikit-learn bundled datasets --------------------------------------------------------------------------------
_DIGITS_MIN_INK = 0.01  # keep a pixel only if it is non-zero in at least 1% of the images


def _load_sklearn(name: str) -> Loader:
    """``sklearn.datasets.load_<name>``: all features real except diabetes' ``sex`` (2 categories)."""

    def load(data_dir: Path) -> Dataset:
        from sklearn import datasets

        options = {"scaled": False} if name == "diabetes" else {}
        bunch = getattr(datasets, f"load_{name}")(**options)
        frame = pd.DataFrame(bunch.data, columns=[str(n) for n in bunch.feature_names])
        frame.index = np.arange(1, len(frame) + 1)
        if name == "digits":  # border pixels ink in < 1% of images: constant once split and masked
            frame = frame.loc[:, (frame > 0).mean() >= _DIGITS_MIN_INK]
        columns = [cat(c, (1, 2)) if (name, c) == ("diabetes", "sex") else Column(c) for c in frame.columns]
        decoded = uci.decode(frame, columns, Path(f"sklearn.datasets.load_{name}"))
        if name == "diabetes":
            labels = np.asarray(bunch.target, dtype=np.float64)
        else:
            labels = np.asarray(bunch.target_names).astype(str)[bunch.target]
        return Dataset(name, decoded.values, FeatureSchema(decoded.features), labels, "target")

    return load


def _embedded(name: str, rows: int, description: str, task: Task = "classification",
              licence: str = "CC BY 4.0 (UCI data shipped with scikit-learn, BSD-3-Clause)") -> None:
    register(DatasetSpec(name, SKLEARN, licence, (), _load_sklearn(name), description, task, rows))


_embedded("iris", 150, "Iris via sklearn.datasets.load_iris: 4 real features, 3 classes.")
_embedded("wine", 178, "Wine recognition via sklearn.datasets.load_wine: 13 real features, 3 classes.")
_embedded("breast_cancer", 569, "Wisconsin diagnostic breast cancer via sklearn.datasets.load_breast_cancer: 30 real.")
_embedded("diabetes", 442, "Diabetes (Efron et al. 2004) via sklearn.datasets.load_diabetes(scaled=False): 9 real "
                           "features and `sex` (2 categories, coded 1/2); regression target.", "regression",
          "no explicit licence (Efron et al. 2004 data shipped with scikit-learn, BSD-3-Clause)")
_embedded("digits", 1797, "Optical digits 8x8 via sklearn.datasets.load_digits: pixel intensities 0..16 as real "
                          "features; the 10 border pixels non-zero in fewer than 1% of the images (3 of them in none) are "
                          "dropped, leaving 54: in a test split or among the observed training entries they are "
                          "constant, so neither standardisation nor NRMSE is defined for them.", licence="CC BY 4.0 (UCI optdigits test set shipped with scikit-learn)")

for _spec in (*multimodal.SPECS, *polymnist.SPECS):
    register(_spec)
