"""Bimodal rows built by pairing images by class, each image used at most once.

VSAE long version, appendix E.2: MNIST+MNIST pairs the digits (0, 9), (1, 8), (2, 7), (3, 6),
(4, 5); MNIST+SVHN pairs an MNIST digit with an SVHN image of the same digit, and "all original
data points are only used once". Pairing inside each source split, with every image used at most
once, gives exactly the paper's sizes: MNIST's training images make 29,071 MNIST+MNIST pairs
(23,257 + 5,814 training and validation rows) and its test images 4,832 (the test rows); with
SVHN, 56,068 (44,854 + 11,214) and 10,000.
"""

from __future__ import annotations

import numpy as np


def pair_by_class(
    labels_a: np.ndarray, labels_b: np.ndarray, partner: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(rows_a, rows_b)``, ``(p,)`` each, of two different image sets: each pair holds an
    image of class ``c`` from ``a`` and one of class ``partner[c]`` from ``b``.

    Per class ``c``, ``min(#a of c, #b of partner[c])`` pairs of images drawn at random; no
    image is in two pairs (``partner`` must then be one-to-one). Pairs come in random order.
    """
    partner = np.asarray(partner)
    if len(np.unique(partner)) != len(partner):
        raise ValueError(f"partner classes {partner.tolist()} are not one-to-one: an image would be used twice")
    rows_a, rows_b = [], []
    for c, p in enumerate(partner):
        mine, theirs = rng.permutation(np.flatnonzero(labels_a == c)), rng.permutation(np.flatnonzero(labels_b == p))
        n = min(len(mine), len(theirs))
        rows_a.append(mine[:n])
        rows_b.append(theirs[:n])
    return _shuffled(np.concatenate(rows_a), np.concatenate(rows_b), rng)


def pair_within(labels: np.ndarray, partner: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(rows_a, rows_b)``, ``(p,)`` each, pairing images of one set with each other: each pair
    holds an image of class ``c`` and one of class ``partner[c]``, no image in two pairs.

    ``partner`` must swap classes in twos (``partner[partner[c]] == c != partner[c]``). Each class
    pair ``{c, partner[c]}`` gives ``min(n_c, n_partner[c])`` pairs, and each pair is oriented at
    random, so both modalities hold every class about equally often. Pairs come in random order.
    """
    partner = np.asarray(partner)
    classes = np.arange(len(partner))
    if (partner[partner] != classes).any() or (partner == classes).any():
        raise ValueError(f"partner classes {partner.tolist()} must swap classes in twos (c -> p -> c, p != c)")
    first, second = [], []
    for c in classes[classes < partner]:
        mine = rng.permutation(np.flatnonzero(labels == c))
        theirs = rng.permutation(np.flatnonzero(labels == partner[c]))
        n = min(len(mine), len(theirs))
        first.append(mine[:n])
        second.append(theirs[:n])
    a, b = np.concatenate(first), np.concatenate(second)
    flip = rng.random(len(a)) < 0.5  # (p,) which pairs show the partner class first
    return _shuffled(np.where(flip, b, a), np.where(flip, a, b), rng)


def _shuffled(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(a))
    return a[order], b[order]
