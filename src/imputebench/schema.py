"""Feature schema: what each column of a table is, declared per dataset, never guessed.

A :class:`FeatureSchema` owns all column arithmetic between the *feature space*
(one column per feature; categorical features hold integer codes ``0..K-1``) and
the *encoded space* every deep model sees (real features standardised, one
column each; categorical features one-hot, ``K`` columns each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # torch is imported where a tensor is handled: declaring or listing a dataset needs none
    import torch

FeatureKind = Literal["real", "categorical", "positive", "count", "ordinal", "pixel"]
FEATURE_KINDS: tuple[str, ...] = ("real", "categorical", "positive", "count", "ordinal", "pixel")
#: Kinds that are one-hot encoded (``n_categories`` columns); every other kind takes one column.
ONE_HOT_KINDS: frozenset[str] = frozenset({"categorical", "ordinal"})
#: Kinds scored by NRMSE (numeric); the one-hot kinds are scored by PFC; pixels (intensities
#: in ``[0, intensity_max]``, never standardised) by the mean squared error of their modality.
NUMERIC_KINDS: frozenset[str] = frozenset({"real", "positive", "count"})


@dataclass(frozen=True)
class Feature:
    """One column of a table.

    ``categories`` are the labels of a categorical/ordinal feature, in code order
    (code ``k`` means ``categories[k]``); numeric features have none. A pixel's
    ``intensity_max`` is the largest value its format can hold (255 for 8-bit images):
    models see ``value / intensity_max`` in ``[0, 1]``.
    """

    name: str
    kind: FeatureKind = "real"
    categories: tuple[str, ...] = ()
    intensity_max: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature {self.name!r}: unknown kind {self.kind!r}; known: {', '.join(FEATURE_KINDS)}")
        if self.kind in ONE_HOT_KINDS and len(self.categories) < 2:
            raise ValueError(f"feature {self.name!r}: a {self.kind} feature needs at least 2 categories")
        if self.kind not in ONE_HOT_KINDS and self.categories:
            raise ValueError(f"feature {self.name!r}: a {self.kind} feature has no categories")
        if (self.kind == "pixel") != (self.intensity_max is not None):
            raise ValueError(f"feature {self.name!r}: intensity_max is set for pixels, and only for them")
        if self.intensity_max is not None and not self.intensity_max > 0:
            raise ValueError(f"feature {self.name!r}: intensity_max must be positive, got {self.intensity_max}")

    @property
    def n_categories(self) -> int:
        """Number of categories (1 for numeric features)."""
        return len(self.categories) if self.kind in ONE_HOT_KINDS else 1

    @property
    def width(self) -> int:
        """Columns this feature takes after encoding."""
        return self.n_categories

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def is_pixel(self) -> bool:
        return self.kind == "pixel"


@dataclass(frozen=True)
class FeatureSchema:
    """An ordered, immutable list of features plus optional modality groups.

    ``modalities`` maps a modality name to the indices of the features it groups
    (an image is one modality of many pixel features). Without groups every
    feature is its own modality. ``image_shapes`` gives the picture shape of each
    image modality (``(28, 28)``, or ``(32, 32, 3)`` with its pixels in height x width
    x channel order), for pictures and nothing else.
    """

    features: tuple[Feature, ...]
    modalities: tuple[tuple[str, tuple[int, ...]], ...] = field(default=())
    image_shapes: tuple[tuple[str, tuple[int, ...]], ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("a schema needs at least one feature")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate feature names: {dupes}")
        seen: set[int] = set()
        for group, members in self.modalities:
            bad = [j for j in members if not 0 <= j < len(self.features)]
            if bad or not members:
                raise ValueError(f"modality {group!r}: feature indices {bad or 'empty'} out of range")
            if seen & set(members):
                raise ValueError(f"modality {group!r} overlaps another modality")
            seen |= set(members)
        if self.modalities and len(seen) != len(self.features):
            raise ValueError("modality groups must cover every feature exactly once")
        groups = dict(self.modalities)
        for group, shape in self.image_shapes:
            members = groups.get(group)
            if members is None:
                raise ValueError(f"image shape for {group!r}, which is not a modality")
            if math.prod(shape) != len(members) or not all(self.features[j].is_pixel for j in members):
                raise ValueError(f"modality {group!r}: shape {shape} needs {math.prod(shape)} pixel features")

    # --- feature-space views -------------------------------------------------
    def __len__(self) -> int:
        return len(self.features)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def numeric_indices(self) -> tuple[int, ...]:
        """Feature indices scored by NRMSE (real, positive, count)."""
        return tuple(j for j, f in enumerate(self.features) if f.is_numeric)

    @cached_property
    def categorical_indices(self) -> tuple[int, ...]:
        """Feature indices scored by PFC (categorical, ordinal)."""
        return tuple(j for j, f in enumerate(self.features) if f.kind in ONE_HOT_KINDS)

    @cached_property
    def pixel_indices(self) -> tuple[int, ...]:
        """Pixel feature indices (scored by their modality's MSE)."""
        return tuple(j for j, f in enumerate(self.features) if f.is_pixel)

    def count(self, kind: str) -> int:
        return sum(f.kind == kind for f in self.features)

    # --- encoded-space arithmetic ----------------------------------------------
    @cached_property
    def widths(self) -> tuple[int, ...]:
        return tuple(f.width for f in self.features)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start column of each feature in the encoded space."""
        out, start = [], 0
        for w in self.widths:
            out.append(start)
            start += w
        return tuple(out)

    @cached_property
    def slices(self) -> tuple[slice, ...]:
        """``x_encoded[:, schema.slices[j]]`` are feature ``j``'s columns."""
        return tuple(slice(o, o + w) for o, w in zip(self.offsets, self.widths))

    @property
    def encoded_dim(self) -> int:
        return sum(self.widths)

    @cached_property
    def column_feature(self) -> tuple[int, ...]:
        """For each encoded column, the index of the feature it belongs to."""
        return tuple(j for j, w in enumerate(self.widths) for _ in range(w))

    def expand(self, feature_mask: torch.Tensor) -> torch.Tensor:
        """Feature-level mask ``(n, d)`` -> encoded-column mask ``(n, D)``."""
        import torch

        widths = torch.as_tensor(self.widths, device=feature_mask.device)
        return feature_mask.repeat_interleave(widths, dim=-1)

    # --- modalities -------------------------------------------------------------
    @cached_property
    def modality_groups(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Declared groups, or one singleton modality per feature."""
        if self.modalities:
            return self.modalities
        return tuple((f.name, (j,)) for j, f in enumerate(self.features))

    @cached_property
    def feature_modality(self) -> tuple[int, ...]:
        """For each feature, the index of its modality in :attr:`modality_groups`."""
        out = [0] * len(self.features)
        for m, (_, members) in enumerate(self.modality_groups):
            for j in members:
                out[j] = m
        return tuple(out)

    def summary(self) -> str:
        """E.g. ``"8 real, 1 categorical"``."""
        parts = [f"{self.count(k)} {k}" for k in FEATURE_KINDS if self.count(k)]
        return ", ".join(parts)

    # --- encoding between feature space and encoded space ---------------------------
    def one_hot(self, values: torch.Tensor) -> torch.Tensor:
        """Feature space ``(n, d)`` -> encoded space ``(n, D)``.

        Numeric features are copied; categorical codes become one-hot blocks.
        Non-finite codes (missing entries) become all-zero blocks.
        """
        import torch

        n = values.shape[0]
        out = values.new_zeros(n, self.encoded_dim)  # (n, D)
        for j, (feature, cols) in enumerate(zip(self.features, self.slices)):
            column = values[:, j]
            if feature.width == 1:
                out[:, cols.start] = column
                continue
            valid = torch.isfinite(column)
            codes = torch.where(valid, column, torch.zeros_like(column)).long()  # (n,)
            if valid.any() and (codes[valid].min() < 0 or codes[valid].max() >= feature.width):
                raise ValueError(f"feature {feature.name!r}: category code outside 0..{feature.width - 1}")
            block = torch.nn.functional.one_hot(codes, feature.width).to(values.dtype)  # (n, K)
            out[:, cols] = block * valid.unsqueeze(1)
        return out

    def collapse(self, encoded: torch.Tensor) -> torch.Tensor:
        """Encoded space ``(n, D)`` -> feature space ``(n, d)``: argmax of each one-hot block."""
        out = encoded.new_empty(encoded.shape[0], len(self.features))  # (n, d)
        for j, (feature, cols) in enumerate(zip(self.features, self.slices)):
            block = encoded[:, cols]
            out[:, j] = block[:, 0] if feature.width == 1 else block.argmax(dim=1).to(encoded.dtype)
        return out
