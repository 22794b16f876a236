"""Evaluation protocols: how rows are split and which rows are scored.

* ``vsae`` — VSAE paper (Gong et al.), section 3.1: train/test 4:1, 20% of the
  training split held out for validation, masks fixed across training and test.
* ``vaeac`` — VAEAC paper (Ivanov et al., ICLR 2019), appendix A.2: train/test
  3:1, the same missing ratio in both, 25% of the training split for validation.
* ``transductive`` — no test split: a model is trained on the incomplete rows and
  scored on their own hidden entries (how the VAEAC authors' public code evaluates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imputebench.errors import UnknownNameError


@dataclass(frozen=True)
class Protocol:
    name: str
    test_fraction: float  # share of all rows in the test split (0: transductive)
    val_fraction: float  # share of the training split used for validation
    citation: str

    @property
    def transductive(self) -> bool:
        return self.test_fraction == 0


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("vsae", 0.2, 0.2, "VSAE (Gong et al.) section 3.1: train/test 4:1, 20% of train for validation"),
        Protocol("vaeac", 0.25, 0.25, "VAEAC (Ivanov et al. 2019) appendix A.2: train/test 3:1, 25% of train for validation"),
        Protocol("transductive", 0.0, 0.0, "train on the incomplete rows, score their own hidden entries"),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownNameError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None


@dataclass(frozen=True)
class Splits:
    """Row indices of each split; ``test`` equals ``train`` under the transductive protocol."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_rows(n_rows: int, protocol: Protocol, seed: int, source_test: np.ndarray | None = None) -> Splits:
    """Shuffle rows with ``seed`` and cut them by the protocol's fractions.

    ``source_test``: the rows of a dataset's own test split (MNIST's test images). Every
    protocol but the transductive one tests on exactly those rows and holds out its
    validation fraction of the others, as the VSAE long version's appendix E.2 sizes show.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    order = rng.permutation(n_rows)
    if protocol.transductive:
        return Splits(order, order[:0], order)
    if source_test is not None:
        in_test = np.zeros(n_rows, dtype=bool)
        in_test[source_test] = True
        n_test, test, train_all = len(source_test), np.asarray(source_test), order[~in_test[order]]
    else:
        n_test = int(round(n_rows * protocol.test_fraction))
        test, train_all = order[:n_test], order[n_test:]
    n_val = int(round(len(train_all) * protocol.val_fraction))
    if min(n_test, len(train_all) - n_val) < 2:
        raise ValueError(f"{n_rows} rows are too few to split under the {protocol.name!r} protocol")
    return Splits(train_all[n_val:], train_all[:n_val], test)
