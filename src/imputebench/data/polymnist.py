"""PolyMNIST, vanilla and extended: five image modalities that share a digit (mrVAE, papers/003 section 5, Figure 2).

PolyMNIST (Sutter, Daunhawer & Vogt, "Generalized Multimodal ELBO", ICLR 2021) shows one MNIST digit
class in five modalities ``m0``..``m4``, each a different MNIST image of that class drawn over a 28x28
crop of the modality's own background picture. The mrVAE paper (Sutter & Vogt; section 5, appendix
E.3 Figure 2) evaluates on it and on an *extended* version with pairwise shared information: "we add
digit information to two corners of every modality. Every corner digit is shared between two
modalities only." It publishes neither the extended generator nor its exact layout; the one below is
this benchmark's.

**Vanilla**, as the authors' generator builds it (``mmnist/MMNISTDataset.py`` of
github.com/thomassutter/MoPoE), within each MNIST split: 60,000 tuples from the training images, then
10,000 from the test images (the test rows, ``Dataset.source_test``).

* Tuples. For each class c, one random order of its n_c images and five distinct random cyclic
  shifts s_0..s_4: tuple i of class c shows image ``order[(i + s_m) mod n_c]`` in modality m. As in
  the original, every image appears exactly once in every modality, so there are as many tuples as
  images; unlike the original's independent permutations, which now and then repeat an image inside
  a tuple, distinct shifts make the five images of a tuple always different. Tuples are shuffled.
* Pixels. Modality m is a 28x28 crop of background m at a uniformly random position (top-left pixel
  in 0..H-28 x 0..W-28; the original's ``randint`` leaves out the last row and column), with its
  colours inverted (v -> 255 - v in every channel) where the MNIST digit's intensity exceeds 128:
  the original's binarisation and inversion, here in exact uint8 arithmetic.

**Extended** (this benchmark's layout). The modalities sit on a ring: pair j = (m_j, m_{j+1 mod 5}),
j = 0..4, shares a corner digit whose class k_j is uniform on 0..9, independent of the main digit and
of the other pairs. Modality m shows pair (m - 1 mod 5)'s digit, shared with its left neighbour, in
its top-left 10x10 box (rows 0-9, columns 0-9), and pair m's digit, shared with its right
neighbour, in its top-right box (rows 0-9, columns 18-27): two corners per modality, each corner
digit in exactly two modalities. The two modalities of a pair show two different MNIST images of
class k_j (from the same split as the row), each reduced to 10x10: the central 20x20 box, where
MNIST centres its digits, max-pooled 2x2, ink where above 128. Corner ink inverts the crop like the
main digit's (a pixel inked by both is inverted once). Tuples and crops come from the same random
streams as the vanilla set's, so an extended image equals its vanilla one except at corner ink
inside the two boxes. :func:`corner_labels` gives k (column j: pair j); the target is the main digit.

**Backgrounds.** The authors' own five background pictures are not available offline, so these are
other backgrounds, and absolute numbers (coherence, FID, imputation errors) are not comparable with
the papers'. They are scikit-image's bundled sample images, shipped inside its wheel as lossless PNG
(decoded identically everywhere), sha256-checked each time they are read: m0 ``astronaut.png``
(Eileen Collins, NASA; public domain), m1 ``chelsea.png`` (Stefan van der Walt; CC0), m2
``coffee.png`` (Rachel Michetti; CC0), m3 ``ihc.png`` (immunohistochemistry, CMMI; "no known
copyright restrictions"), m4 ``motorcycle_left.png`` (Middlebury 2014 stereo benchmark, Scharstein
et al., down-sampled by scikit-image; no licence stated).

**Files.** The dataset is generated once, from the verified MNIST files and the fixed
:data:`SEED`, into ``<data_dir>/polymnist/`` (:mod:`.generated`: about 823 MB each, never into a
mirror), its sha256 recorded here and checked on every load. Each row holds five 28x28x3 uint8
images; feature names ``<modality>_<pixel index>``, pixels in row-major (height, width, channel)
order, ``intensity_max`` 255; the target is the main digit as text ``"0"``..``"9"``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from imputebench.data import generated
from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.generated import GeneratedFile
from imputebench.data.images import read_idx_pair
from imputebench.data.integrity import ModifiedDataError
from imputebench.data.multimodal import DIGITS, MNIST_FILES, MNIST_LICENCE, image_features
from imputebench.data.spec import DatasetSpec, Loader
from imputebench.schema import FeatureSchema

SEED = 20210503  # fixed: the tuples, crops and corner digits are part of the dataset, not of a trial
MODALITIES = tuple(f"m{m}" for m in range(5))
SIDE, CHANNELS = 28, 3
IMAGE_SHAPE = (SIDE, SIDE, CHANNELS)
INK = 128  # an MNIST pixel above it is the digit's (the original's binarisation)
CORNER = 10  # side of a corner digit
BLOCK = 4096  # rows rendered at a time
LEFT_BOX = (slice(0, CORNER), slice(0, CORNER))  # pair (m - 1, m): shared with the left neighbour
RIGHT_BOX = (slice(0, CORNER), slice(SIDE - CORNER, SIDE))  # pair (m, m + 1): shared with the right neighbour
SPLITS = (("train", "train"), ("t10k", "test"))  # (MNIST file prefix, random-stream name)
N_TRAIN, N_TEST = 60000, 10000  # MNIST's splits: one tuple per image

#: scikit-image's bundled sample PNGs, one per modality: sha256 (equal to scikit-image's own data registry).
BACKGROUNDS: dict[str, str] = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
}
BACKGROUND_LICENCE = (
    "backgrounds from scikit-image's sample images: astronaut (NASA, public domain), chelsea and coffee (CC0), "
    "ihc (CMMI, no known copyright restrictions), motorcycle_left (Middlebury 2014 stereo, no licence stated)"
)
#: The generated files (records: main digits (n,), corner classes (n, 5) when extended, pixels (n, 11760)).
FILES: dict[str, GeneratedFile] = {
    "polymnist": GeneratedFile(
        "polymnist", "polymnist_v1.npy", "5362249012ee276997132007f319e150763aca5445864414b56f2d630b4cc0e0"),
    "polymnist_extended": GeneratedFile(
        "polymnist", "polymnist_extended_v1.npy", "8550caa0b2260ee6944dee725553c5f7343f6e541ce09b63342147f10b03c8f6"),
}


@dataclass(frozen=True)
class Generated:
    """Rows of PolyMNIST and the MNIST images behind them (indices into the split's images)."""

    values: np.ndarray  # (n, 5 * 2352) uint8, modality m in columns m * 2352 .. (m + 1) * 2352
    digits: np.ndarray  # (n,) main digit
    sources: np.ndarray  # (n, 5) image shown in modality m
    origins: np.ndarray  # (n, 5, 2) top and left of modality m's crop of its background
    corners: np.ndarray | None = None  # (n, 5) class of pair j's corner digit (extended only)
    corner_sources: np.ndarray | None = None  # (n, 5, 2) pair j's image in modality j, and in modality j + 1


# --- backgrounds -----------------------------------------------------------------------------------------
def background_folder() -> Path:
    """The ``data`` folder of the installed scikit-image (found without importing it)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("PolyMNIST's backgrounds are scikit-image's sample images: `pip install scikit-image`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_backgrounds(folder: Path | None = None) -> list[np.ndarray]:
    """The five backgrounds ``(H, W, 3)`` uint8, each file's sha256 checked against :data:`BACKGROUNDS`."""
    from skimage.io import imread

    folder = background_folder() if folder is None else Path(folder)
    images = []
    for name, expected in BACKGROUNDS.items():
        path = folder / name
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise DatasetError(f"{path}: cannot read this PolyMNIST background ({err.strerror or err})") from None
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected:
            raise ModifiedDataError(f"{path}: sha256 {actual} differs from the recorded {expected}: not the PolyMNIST "
                                    "background scikit-image ships; reinstall scikit-image")
        image = imread(io.BytesIO(raw))
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != CHANNELS or min(image.shape[:2]) < SIDE:
            raise DatasetError(f"{path}: {image.dtype} {image.shape}, expected an RGB uint8 image of at least 28x28")
        images.append(image)
    return images


# --- construction --------------------------------------------------------------------------------------------
def _rng(split: str, purpose: str) -> np.random.Generator:
    """One random stream per split and purpose, so the extended set reuses the vanilla tuples and crops."""
    return np.random.default_rng(np.random.SeedSequence([SEED, *f"{split}/{purpose}".encode()]))


def draw_tuples(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(N, 5)`` image indices: per class one random order and five distinct cyclic shifts, rows shuffled."""
    blocks = []
    for c in range(len(DIGITS)):
        members = rng.permutation(np.flatnonzero(labels == c))  # (n_c,)
        if len(members) < len(MODALITIES):
            raise ValueError(f"class {c} has {len(members)} images; PolyMNIST needs {len(MODALITIES)} per class")
        shifts = rng.choice(len(members), len(MODALITIES), replace=False)  # (5,) distinct
        blocks.append(members[(np.arange(len(members))[:, None] + shifts) % len(members)])  # (n_c, 5)
    tuples = np.concatenate(blocks)  # (N, 5)
    return tuples[rng.permutation(len(tuples))]


def draw_corners(labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Classes ``(n, 5)`` of the pairs' corner digits, and their images ``(n, 5, 2)``: two different
    images of the class, the first shown in modality j, the second in modality j + 1 mod 5."""
    classes = rng.integers(0, len(DIGITS), (n, len(MODALITIES)))  # (n, 5)
    shown = np.empty((n, len(MODALITIES), 2), np.int64)
    for c in range(len(DIGITS)):
        members = np.flatnonzero(labels == c)  # (n_c,)
        where = classes == c  # (n, 5)
        first = rng.integers(0, len(members), int(where.sum()))  # (k,)
        second = (first + rng.integers(1, len(members), len(first))) % len(members)  # (k,) never first
        shown[where, 0], shown[where, 1] = members[first], members[second]
    return classes, shown


def small_digit(images: np.ndarray) -> np.ndarray:
    """``(k, 784)`` MNIST images -> ``(k, 10, 10)`` ink: the central 20x20 box, max-pooled 2x2, above 128."""
    box = images.reshape(-1, SIDE, SIDE)[:, 4:24, 4:24]  # (k, 20, 20)
    return box.reshape(-1, CORNER, 2, CORNER, 2).max(axis=(2, 4)) > INK  # (k, 10, 10)


def generate(images: np.ndarray, labels: np.ndarray, backgrounds: Sequence[np.ndarray], split: str,
             n_rows: int | None = None, extended: bool = False, out: np.ndarray | None = None) -> Generated:
    """The first ``n_rows`` (default all) PolyMNIST rows of one MNIST split (``images`` ``(N, 784)`` uint8,
    ``labels`` ``(N,)``; ``split`` names its random streams, ``"train"`` or ``"test"``), written into
    ``out`` ``(n, 11760)`` uint8 when given. Every draw is made for all N rows, so the first n rows are
    the same whatever ``n_rows``."""
    if len(backgrounds) != len(MODALITIES):
        raise ValueError(f"PolyMNIST needs {len(MODALITIES)} backgrounds, one per modality; got {len(backgrounds)}")
    tuples = draw_tuples(labels, _rng(split, "tuples"))  # (N, 5)
    n = len(tuples) if n_rows is None else n_rows
    crops = _rng(split, "crops")
    origins = np.stack([np.stack([crops.integers(0, b.shape[0] - SIDE + 1, len(tuples)),
                                  crops.integers(0, b.shape[1] - SIDE + 1, len(tuples))], axis=-1)
                        for b in backgrounds], axis=1)[:n]  # (n, 5, 2) top and left of each crop
    corners = corner_sources = None
    if extended:
        corners, corner_sources = (a[:n] for a in draw_corners(labels, len(tuples), _rng(split, "corners")))
    values = np.empty((n, len(MODALITIES) * SIDE * SIDE * CHANNELS), np.uint8) if out is None else out
    tiles = values.reshape(n, len(MODALITIES), *IMAGE_SHAPE)  # (n, 5, 28, 28, 3), a view
    windows = [np.lib.stride_tricks.sliding_window_view(b, (SIDE, SIDE), axis=(0, 1)) for b in backgrounds]
    small = small_digit(images) if extended else None  # (N, 10, 10) every image's corner-size ink, made once
    for start in range(0, n, BLOCK):  # blocks of rows: the temporaries stay small and are reused
        rows = slice(start, min(start + BLOCK, n))
        for m, window in enumerate(windows):
            crop = window[origins[rows, m, 0], origins[rows, m, 1]]  # (k, 3, 28, 28): the windows put channels first
            crop = crop.transpose(0, 2, 3, 1)  # (k, 28, 28, 3)
            ink = images[tuples[rows, m]].reshape(-1, SIDE, SIDE) > INK  # (k, 28, 28)
            if small is not None:
                ink[(slice(None), *LEFT_BOX)] |= small[corner_sources[rows, (m - 1) % len(MODALITIES), 1]]
                ink[(slice(None), *RIGHT_BOX)] |= small[corner_sources[rows, m, 0]]
            np.bitwise_xor(crop, np.multiply(ink, 255, dtype=np.uint8)[..., None], out=tiles[rows, m])  # 255 - v on ink
    return Generated(values, labels[tuples[:n, 0]].astype(np.uint8), tuples[:n], origins, corners, corner_sources)


# --- the registered datasets -------------------------------------------------------------------------------------
def build(root: Path, extended: bool) -> tuple[np.ndarray, ...]:
    """The records of a generated file, from the MNIST files under ``root``: digits, corner classes when
    ``extended``, pixels (training rows first)."""
    backgrounds = read_backgrounds()
    parts = [read_idx_pair(MNIST_FILES[f"{prefix}-images-idx3-ubyte.gz"].local_path(root),
                           MNIST_FILES[f"{prefix}-labels-idx1-ubyte.gz"].local_path(root)) for prefix, _ in SPLITS]
    values = np.empty((sum(len(labels) for _, labels in parts), len(MODALITIES) * SIDE * SIDE * CHANNELS), np.uint8)
    start, results = 0, []
    for (images, labels), (_, stream) in zip(parts, SPLITS):
        results.append(generate(images, labels, backgrounds, stream, extended=extended,
                                out=values[start:start + len(labels)]))
        start += len(labels)
    digits = np.concatenate([r.digits for r in results])  # (N,)
    if not extended:
        return digits, values
    return digits, np.concatenate([r.corners for r in results]).astype(np.uint8), values


@cache
def schema() -> FeatureSchema:
    """Five 28x28x3 image modalities ``m0``..``m4`` of 255-level pixels."""
    width = SIDE * SIDE * CHANNELS
    features = tuple(f for modality in MODALITIES for f in image_features(modality, width))
    groups = tuple((modality, tuple(range(m * width, (m + 1) * width))) for m, modality in enumerate(MODALITIES))
    return FeatureSchema(features, groups, tuple((modality, IMAGE_SHAPE) for modality in MODALITIES))


def polymnist_dataset(name: str, values: np.ndarray, digits: np.ndarray, n_test: int = 0) -> Dataset:
    """A PolyMNIST table: ``values`` ``(n, 11760)``, the main digit as target, the last ``n_test`` rows the test rows."""
    source_test = np.arange(len(values) - n_test, len(values)) if n_test else None
    return Dataset(name, values, schema(), np.asarray(DIGITS)[digits], "digit", source_test)


def _loader(name: str) -> Loader:
    extended = name == "polymnist_extended"

    def load(root: Path) -> Dataset:
        generated.ensure(FILES[name], root, lambda: build(root, extended), name)
        records = generated.read_verified(FILES[name], root)
        return polymnist_dataset(name, records[-1], records[0], n_test=N_TEST)

    return load


def corner_labels(data_dir: Path) -> np.ndarray:
    """``(70000, 5)`` uint8: column j the class of the corner digit pair j = (m_j, m_{j+1 mod 5}) shows, for the
    rows of ``polymnist_extended`` loaded from ``data_dir`` (generated there first if missing)."""
    file = FILES["polymnist_extended"]
    generated.ensure(file, data_dir, lambda: build(data_dir, True), "polymnist_extended")
    return generated.read_verified(file, data_dir, records=2)[1]


SOURCE = "MNIST (LeCun et al.) over scikit-image sample images; construction of PolyMNIST (Sutter et al. 2021)"
SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "polymnist", SOURCE, f"{MNIST_LICENCE}; {BACKGROUND_LICENCE}", tuple(MNIST_FILES.values()), _loader("polymnist"),
        "PolyMNIST (Sutter et al. 2021; mrVAE section 5): five 28x28x3 modalities, each a different MNIST image of "
        "the same digit over a crop of its own background, colours inverted on the digit; 60,000 + 10,000 rows "
        "from MNIST's train and test splits, the test rows MNIST's. Generated here: other backgrounds than the "
        "authors' (theirs are not available offline), so numbers are not comparable with the papers'.",
        rows=N_TRAIN + N_TEST,
    ),
    DatasetSpec(
        "polymnist_extended", SOURCE, f"{MNIST_LICENCE}; {BACKGROUND_LICENCE}", tuple(MNIST_FILES.values()),
        _loader("polymnist_extended"),
        "PolyMNIST extended (mrVAE section 5, Figure 2): PolyMNIST plus two 10x10 corner digits per modality, "
        "modalities on a ring, pair (j, j+1 mod 5) sharing one corner digit class (top-right of m_j, top-left "
        "of m_j+1) drawn independently of the main digit; the same rows and backgrounds as `polymnist`, so numbers "
        "are not comparable with the paper's either.",
        rows=N_TRAIN + N_TEST,
    ),
)
