"""The README's block that trains a model with a user's own Lightning ``Trainer`` runs as written.

The block is read from README.md (after its ``<!-- test:trainer-block -->`` marker), never copied
here, so the README cannot drift from what works.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    """The fenced python block that follows ``<!-- marker -->`` in README.md."""
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```python\n(.*?)\n```", README.read_text(), re.S)
    assert match, f"README.md lacks the python block after <!-- {marker} -->"
    return match.group(1)


def test_the_readme_trainer_block_trains_logs_and_imputes(tmp_path, monkeypatch, mirror_dir):
    monkeypatch.chdir(tmp_path)  # the block writes its CSV logs under ./logs
    monkeypatch.setenv("IMPUTEBENCH_DATA_DIR", str(mirror_dir))  # as after `imputebench data fetch yeast`
    torch.set_num_threads(1)
    namespace: dict = {}
    exec(compile(readme_block("test:trainer-block"), "README.md", "exec"), namespace)  # noqa: S102 - our README
    dm, model, trainer, imputed = namespace["dm"], namespace["model"], namespace["trainer"], namespace["imputed"]
    test = dm.data.test
    assert imputed.shape == test.x.shape and torch.isfinite(imputed).all()
    assert torch.equal(imputed[test.observed], test.x[test.observed])  # observed entries untouched
    assert torch.equal(namespace["same"], imputed)  # trainer.predict gives model.impute's imputation
    assert namespace["values"].shape == (test.n_rows, len(dm.schema))
    assert trainer.current_epoch == 5
    logged = pd.read_csv(Path(trainer.logger.log_dir) / "metrics.csv")
    per_epoch = logged.groupby("epoch")[["train_loss", "val_iwae"]].max()
    assert list(per_epoch.index) == [0, 1, 2, 3, 4] and per_epoch.notna().all().all()  # the user's logger got them
    best = next(cb for cb in trainer.callbacks if type(cb).__name__ == "BestWeights")
    assert best.best_epoch == int(per_epoch["val_iwae"].idxmin())  # the best validation epoch was kept
    assert "lr-Adam" in logged.columns  # the user's callback ran too
