"""Subsets of M modalities as boolean membership rows: the index set of mrVAE's latent subspaces.

Sutter & Vogt, "Multimodal Relational VAE", section 2: every nonempty A ⊆ {1, ..., M} names a latent
subspace S_A holding the factors shared by the modalities in A, and every modality j contributes to
the 2^(M-1) subspaces {S_A | A ∋ j} (Definitions 1 and 2). A collection of subsets is a bool matrix
``(S, M)``, row A, column j True iff j ∈ A; modalities are 0-based here.

Order (:func:`nonempty_subsets`): by size, then lexicographically by the sorted modality indices,
i.e. the order in which ``itertools.combinations(range(M), r)`` yields them for r = 1, ..., M. For
M = 3: {0}, {1}, {2}, {0,1}, {0,2}, {1,2}, {0,1,2} (the paper's n_1, n_2, n_3, n_12, n_13, n_23, n_123,
which appendix D lists in the reverse order). Every helper keeps the order of the rows it is given.

These are set-up functions, run once per model to build index buffers; :func:`subset_indices_containing`
and :func:`containing_index` read tensor values (``nonzero``) and so synchronise with a GPU.
"""

from __future__ import annotations

import torch


def nonempty_subsets(n_modalities: int, device: torch.device | str | None = None) -> torch.Tensor:
    """All 2^M - 1 nonempty subsets of M modalities, ``(2^M - 1, M)`` bool, by size then lexicographically.

    Built from the binary codes 1, ..., 2^M - 1 (bit j: modality j). Among subsets of one size,
    lexicographic order of the sorted index tuples is descending order of the code read with
    modality 0 as the most significant bit: at the first index where two tuples differ, the smaller
    tuple holds a modality the other lacks, and both agree on every lower modality.
    """
    if n_modalities < 1:
        raise ValueError(f"need at least one modality, got {n_modalities}")
    bits = torch.arange(n_modalities, device=device)  # (M,) bit position j of modality j
    codes = torch.arange(1, 2**n_modalities, device=device)  # (S,) every nonempty subset once
    members = ((codes.unsqueeze(-1) >> bits) & 1).bool()  # (S, M)
    msb_first = (members.long() << (n_modalities - 1 - bits)).sum(-1)  # (S,) code with modality 0 as the top bit
    key = members.sum(-1) * 2**n_modalities + (2**n_modalities - 1 - msb_first)  # (S,) size, then lexicographic
    return members[key.argsort()]  # (S, M)


def subset_indices_containing(subsets: torch.Tensor, modality: int) -> torch.Tensor:
    """Row indices of the ``subsets`` ``(S, M)`` that contain ``modality``, in row order, ``(S_j,)`` long."""
    return subsets[:, modality].nonzero().squeeze(-1)  # (S_j,)


def containing_index(subsets: torch.Tensor) -> torch.Tensor:
    """For every modality j, the row indices of the subsets containing j, in row order: ``(M, C)`` long.

    Row j indexes the subspaces {S_A | A ∋ j} of Definitions 1-2 (e.g. to gather modality j's
    weights over its subspaces). Needs every modality to lie in the same number C of subsets, as in
    the full collection of :func:`nonempty_subsets` (C = 2^(M-1)).
    """
    per_modality = subsets.sum(0)  # (M,) how many subsets contain each modality
    if not bool((per_modality == per_modality[0]).all()):
        raise ValueError(f"modalities lie in different numbers of subsets: {per_modality.tolist()}")
    pairs = subsets.T.nonzero()  # (M * C, 2) (modality, subset), sorted by modality then subset
    return pairs[:, 1].view(subsets.shape[1], -1)  # (M, C)


def available_subsets(available: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
    """Which subsets are fully available in each row: ``(..., S)`` bool.

    ``available`` ``(..., M)`` bool marks the modalities a row has; a subset A is available iff
    every j ∈ A is (so the subspace S_A can be inferred from the row, appendix E.1).
    """
    return (available.unsqueeze(-2) | ~subsets).all(-1)  # (..., S) from (..., S, M)


def subspace_capacity(latent_dims: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
    """|S_A| = min_{j ∈ A} D_j, the largest possible size of each subspace (section 2): ``(..., S)``.

    ``latent_dims`` ``(..., M)`` integer D_j, the size of modality j's latent z_j.
    """
    unused = torch.iinfo(torch.long).max
    dims = torch.where(subsets, latent_dims.long().unsqueeze(-2), unused)  # (..., S, M) D_j for j ∈ A
    return dims.amin(-1)  # (..., S)
