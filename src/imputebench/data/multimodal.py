"""The multimodal benchmarks: two images, or an image and its label, per row.

VSAE (papers/000 section 3.1; long version papers/001 appendices E.2 and E.3):

* ``mnist_mnist`` ("Synthetic1"): an MNIST digit d beside an MNIST digit 9 - d.
* ``mnist_svhn`` ("Synthetic2"): an MNIST digit beside an SVHN image of the same digit.
* ``mnist_label``, ``fashion_label``: an image and its class label, two modalities.
* ``digits_pairs``: the MNIST+MNIST pairing of scikit-learn's bundled 8x8 digits, so the
  multimodal path runs offline.

Pairs are formed inside each source split, each image used at most once (:mod:`.pairing`),
which gives the appendix's sizes exactly; the source's test images are the test rows
(``Dataset.source_test``). The pairing is part of the dataset, drawn once with a fixed seed:
a trial's seed changes the validation split and the masks, never the pairs.

Each image is one modality of uint8 pixel features (``intensity_max`` 255; 16 for the 8x8
digits); a label is one categorical feature, its own modality. Feature names are
``<modality>_<pixel index>``, pixels in row-major (height, width, channel) order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imputebench.data.dataset import Dataset
from imputebench.data.images import read_idx_pair, read_svhn
from imputebench.data.pairing import pair_by_class, pair_within
from imputebench.data.spec import SKLEARN, DatasetSpec, RemoteFile
from imputebench.schema import Feature, FeatureSchema

PAIRING_SEED = 20180528  # fixed: the pairs are part of the dataset, not of a trial
DIGITS = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_SHAPE, SVHN_SHAPE = (28, 28), (32, 32, 3)
MNIST_URL = "http://yann.lecun.com/exdb/mnist"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers"


def _idx_files(folder: str, base_url: str, checksums: dict[str, tuple[str, int]]) -> dict[str, RemoteFile]:
    return {name: RemoteFile(folder, name, f"{base_url}/{name}", sha, size) for name, (sha, size) in checksums.items()}


# sha256 and sizes: shared/datasets/MANIFEST.md (equal to tensorflow/datasets' url_checksums).
MNIST_FILES = _idx_files("mnist", MNIST_URL, {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
})
FASHION_FILES = _idx_files("fashion_mnist", FASHION_URL, {
    "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
})
# test: MANIFEST.md ("Missing or not canonical": not in the mirror). train: the MANIFEST does not
# record it; size and sha256 are tensorflow/datasets' url_checksums/svhn_cropped.txt, whose
# entry for the test file equals the MANIFEST's.
SVHN_FILES = _idx_files("svhn", SVHN_URL, {
    "train_32x32.mat": ("435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", 182040794),
    "test_32x32.mat": ("cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b", 64275384),
})


def image_features(modality: str, n_pixels: int, intensity_max: float = 255.0) -> tuple[Feature, ...]:
    return tuple(Feature(f"{modality}_{i:04d}", "pixel", intensity_max=intensity_max) for i in range(n_pixels))


def multimodal_dataset(
    name: str,
    parts: list[tuple[str, np.ndarray, tuple[int, ...] | tuple[str, ...]]],
    intensity_max: float = 255.0,
    source_test: np.ndarray | None = None,
) -> Dataset:
    """A dataset of modalities side by side: ``parts`` are ``(modality, values (n, w) uint8, shape)``
    for an image (``shape`` its picture shape) or ``(modality, codes (n,) , classes)`` for a label."""
    features: list[Feature] = []
    modalities, shapes, columns = [], [], []
    for modality, values, layout in parts:
        start = len(features)
        if values.ndim == 1:  # a label: one categorical feature
            features.append(Feature(modality, "categorical", tuple(layout)))
            columns.append(values.astype(np.uint8)[:, None])
        else:
            features.extend(image_features(modality, values.shape[1], intensity_max))
            shapes.append((modality, tuple(layout)))
            columns.append(values)
        modalities.append((modality, tuple(range(start, len(features)))))
    schema = FeatureSchema(tuple(features), tuple(modalities), tuple(shapes))
    return Dataset(name, np.concatenate(columns, axis=1), schema, source_test=source_test)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([PAIRING_SEED, *name.encode()]))


def _idx_split(root: Path, files: dict[str, RemoteFile], split: str) -> tuple[np.ndarray, np.ndarray]:
    return read_idx_pair(files[f"{split}-images-idx3-ubyte.gz"].local_path(root), files[f"{split}-labels-idx1-ubyte.gz"].local_path(root))


def _stacked(per_split: list[list[np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray]:
    """Concatenate each modality over (train, test) and give the test rows' indices."""
    n_train = len(per_split[0][0])
    stacked = [np.concatenate(columns) for columns in zip(*per_split)]
    return stacked, np.arange(n_train, len(stacked[0]))


def load_mnist_mnist(root: Path) -> Dataset:
    rng, per_split = _rng("mnist_mnist"), []
    partner = 9 - np.arange(10)
    for split in ("train", "t10k"):
        images, labels = _idx_split(root, MNIST_FILES, split)
        a, b = pair_within(labels, partner, rng)
        per_split.append([images[a], images[b]])
    (first, second), test = _stacked(per_split)
    return multimodal_dataset(
        "mnist_mnist", [("mnist_a", first, MNIST_SHAPE), ("mnist_b", second, MNIST_SHAPE)], source_test=test
    )


def load_mnist_svhn(root: Path) -> Dataset:
    rng, per_split = _rng("mnist_svhn"), []
    for mnist_split, svhn_file in (("train", "train_32x32.mat"), ("t10k", "test_32x32.mat")):
        mnist, mnist_labels = _idx_split(root, MNIST_FILES, mnist_split)
        svhn, svhn_labels = read_svhn(SVHN_FILES[svhn_file].local_path(root))
        a, b = pair_by_class(mnist_labels, svhn_labels, np.arange(10), rng)
        per_split.append([mnist[a], svhn[b]])
    (first, second), test = _stacked(per_split)
    return multimodal_dataset("mnist_svhn", [("mnist", first, MNIST_SHAPE), ("svhn", second, SVHN_SHAPE)], source_test=test)


def _image_label(name: str, files: dict[str, RemoteFile], classes: tuple[str, ...]):
    def load(root: Path) -> Dataset:
        per_split = [list(_idx_split(root, files, split)) for split in ("train", "t10k")]
        (images, labels), test = _stacked(per_split)
        return multimodal_dataset(name, [("image", images, MNIST_SHAPE), ("label", labels, classes)], source_test=test)

    return load


def load_digits_pairs(root: Path | None = None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.data.astype(np.uint8), np.asarray(bunch.target)  # (1797, 64) in 0..16
    a, b = pair_within(labels, 9 - np.arange(10), _rng("digits_pairs"))
    return multimodal_dataset("digits_pairs", [("digit_a", images[a], (8, 8)), ("digit_b", images[b], (8, 8))], 16.0)


MNIST_LICENCE = "CC BY-SA 3.0 (as usually cited for MNIST; LeCun & Cortes)"
#: The image sets, registered by :mod:`imputebench.data.sources` (the registry imports them, not the reverse).
SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "mnist_mnist", "MNIST (LeCun et al.)", MNIST_LICENCE, tuple(MNIST_FILES.values()), load_mnist_mnist,
        "MNIST+MNIST (VSAE 'Synthetic1', long version E.2): digit d beside digit 9 - d, two 28x28 images; each image in "
        "at most one pair, paired within MNIST's train and test splits: 29,071 + 4,832 rows, the test rows MNIST's.",
        rows=33903,
    ),
    DatasetSpec(
        "mnist_svhn", "MNIST (LeCun et al.) and SVHN (Netzer et al. 2011)", f"{MNIST_LICENCE}; SVHN: non-commercial use only",
        tuple(MNIST_FILES.values()) + tuple(SVHN_FILES.values()), load_mnist_svhn,
        "MNIST+SVHN (VSAE 'Synthetic2', long version E.2): an MNIST digit beside a 32x32x3 SVHN image of the same digit; "
        "each image in at most one pair, paired within the train and test splits: 56,068 + 10,000 rows.",
        rows=66068,
    ),
    DatasetSpec(
        "mnist_label", "MNIST (LeCun et al.)", MNIST_LICENCE, tuple(MNIST_FILES.values()),
        _image_label("mnist_label", MNIST_FILES, DIGITS),
        "MNIST image + label (VSAE long version E.3): a 28x28 image and its digit as two modalities; MNIST's test split "
        "is the test rows.",
        rows=70000,
    ),
    DatasetSpec(
        "fashion_label", "Fashion-MNIST (Xiao et al. 2017)", "MIT (Zalando Research)", tuple(FASHION_FILES.values()),
        _image_label("fashion_label", FASHION_FILES, FASHION_CLASSES),
        "Fashion-MNIST image + label (VSAE long version E.3): a 28x28 image and its class as two modalities; the source's "
        "test split is the test rows.",
        rows=70000,
    ),
    DatasetSpec(
        "digits_pairs", SKLEARN, "CC BY 4.0 (UCI optdigits test set shipped with scikit-learn)", (),
        load_digits_pairs,
        "The MNIST+MNIST pairing (digit d beside 9 - d, each image at most once) of scikit-learn's 8x8 digits "
        "(intensities 0..16): offline, in the embedded default.",
        rows=891,
    ),
)
