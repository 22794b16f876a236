"""Pictures of image imputation and generation (VSAE papers/000 Figures 4 and 5, long version
papers/001 Figure 7), written as PNG files.

* :func:`imputation_grid` (Figure 4): one column per test row with one modality observed and
  another hidden; rows: the observed modality, the true hidden modality, the imputation.
* :func:`multiple_imputations` (Figure 7): one such test row: its observed modality, the truth,
  then ``k`` imputation draws.
* :func:`generation` (Figure 5): rows generated with nothing observed, every modality, and for
  models of the mask (VSAE) the mask generated with them.

An image modality is drawn in grey (or colour for height x width x 3 images) on the [0, 1] scale
the models see; a label modality as its class name. Figures are built with
:class:`matplotlib.figure.Figure` and the Agg canvas, so no display or global pyplot state is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from imputebench.data.table import Table
from imputebench.schema import FeatureSchema


@dataclass(frozen=True)
class ModalityView:
    """How to draw one modality from an encoded row: an image of ``shape`` or a label among ``classes``."""

    name: str
    columns: tuple[int, ...]  # encoded columns
    shape: tuple[int, ...] | None = None
    classes: tuple[str, ...] = ()

    def draw(self, ax, row: np.ndarray) -> None:
        """Draw this modality of an encoded ``row`` ``(D,)`` on ``ax``."""
        ax.set_xticks([])
        ax.set_yticks([])
        values = row[list(self.columns)]
        if self.shape is not None:
            ax.imshow(np.clip(values.reshape(self.shape), 0.0, 1.0), cmap="gray" if len(self.shape) == 2 else None,
                      vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.text(0.5, 0.5, self.classes[int(values.argmax())], ha="center", va="center", fontsize=9)


def modality_views(schema: FeatureSchema) -> list[ModalityView]:
    """One view per modality of an image dataset, in schema order."""
    shapes = dict(schema.image_shapes)
    views = []
    for name, members in schema.modality_groups:
        columns = tuple(c for j in members for c in range(schema.offsets[j], schema.offsets[j] + schema.widths[j]))
        if name in shapes:
            views.append(ModalityView(name, columns, shape=shapes[name]))
        elif len(members) == 1 and schema.features[members[0]].categories:
            views.append(ModalityView(name, columns, classes=schema.features[members[0]].categories))
        else:
            raise ValueError(f"modality {name!r} is neither an image nor a label: nothing to draw")
    return views


def one_hidden_rows(table: Table, n: int) -> list[tuple[int, int, int]]:
    """The first ``n`` rows of ``table`` with an observed and a hidden modality:
    ``(row, observed modality, hidden modality)``, the first of each."""
    observed = table.modality_observed if hasattr(table, "modality_observed") else table.observed_features
    seen = observed.cpu().numpy()  # (n, M)
    rows = np.flatnonzero(seen.any(1) & ~seen.all(1))[:n]
    return [(int(r), int(seen[r].argmax()), int((~seen[r]).argmax())) for r in rows]


def _figure(n_rows: int, n_cols: int, cell: float = 1.1) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(cell * n_cols, cell * n_rows), dpi=100)
    FigureCanvasAgg(figure)
    axes = np.asarray(figure.subplots(n_rows, n_cols, squeeze=False))
    return figure, axes


def imputation_grid(model, table: Table, truth: Table, schema: FeatureSchema, n: int = 8) -> Figure:
    """Figure 4: observed modality, true hidden modality and its imputation for ``n`` test rows."""
    picks = one_hidden_rows(table, n)
    if not picks:
        raise ValueError("no test row has both an observed and a hidden modality")
    index = torch.tensor([r for r, _, _ in picks], device=table.device)
    imputed = model.impute(table.subset(index)).cpu().numpy()  # (n, D)
    true = truth.rows(index)[0].cpu().numpy()  # (n, D)
    views = modality_views(schema)
    figure, axes = _figure(3, len(picks))
    for col, (_, seen, hidden) in enumerate(picks):
        views[seen].draw(axes[0, col], true[col])
        views[hidden].draw(axes[1, col], true[col])
        views[hidden].draw(axes[2, col], imputed[col])
    for ax, label in zip(axes[:, 0], ("observed", "truth", "imputed")):
        ax.set_ylabel(label, fontsize=8)
    return figure


def multiple_imputations(model, table: Table, truth: Table, schema: FeatureSchema, k: int = 8) -> Figure:
    """Figure 7: one test row's observed modality, the truth of its hidden modality, and ``k`` draws of it."""
    picks = one_hidden_rows(table, 1)
    if not picks:
        raise ValueError("no test row has both an observed and a hidden modality")
    row, seen, hidden = picks[0]
    index = torch.tensor([row], device=table.device)
    draws = model.impute_multiple(table.subset(index), k)[:, 0].cpu().numpy()  # (k, D)
    true = truth.rows(index)[0][0].cpu().numpy()  # (D,)
    views = modality_views(schema)
    figure, axes = _figure(1, k + 2)
    views[seen].draw(axes[0, 0], true)
    axes[0, 0].set_title("observed", fontsize=8)
    views[hidden].draw(axes[0, 1], true)
    axes[0, 1].set_title("truth", fontsize=8)
    for j in range(k):
        views[hidden].draw(axes[0, j + 2], draws[j])
    axes[0, 2].set_title(f"{k} draws", fontsize=8, loc="left")
    return figure


def generation(model, schema: FeatureSchema, n: int = 8) -> Figure:
    """Figure 5: ``n`` rows generated with nothing observed (each modality a row) and, for a model
    of the mask, the generated mask under each column."""
    torch.manual_seed(model.seed + 3)
    data, mask = model.generate(n)
    data = data.cpu().numpy()  # (n, D)
    views = modality_views(schema)
    figure, axes = _figure(len(views), n)
    for m, view in enumerate(views):
        for col in range(n):
            view.draw(axes[m, col], data[col])
        axes[m, 0].set_ylabel(view.name, fontsize=8)
    if mask is not None:
        for col, observed in enumerate(mask.cpu().numpy()):
            text = " ".join("o" if seen else "x" for seen in observed)
            axes[-1, col].set_xlabel(f"mask {text}", fontsize=7)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", bbox_inches="tight")
    return path
