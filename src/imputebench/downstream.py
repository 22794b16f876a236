"""Post-imputation prediction: how well a model trained on imputed data predicts the target.

VAEAC (Ivanov, Figurnov & Vetrov, ICLR 2019), section 5.1 and Table 2: "We also learn linear or logistic
regression and report the regression or classification performance after applying imputations of different
methods": R² for a continuous target, accuracy for a categorical one, higher is better. Appendix A.2: the
regressor or classifier is applied to the imputed test objects, and "the imputed values of y are not fed to
the classifier or regressor".

What is done here, for a dataset with a prediction target and no image modality:

1. the imputer fills the training part of the split (its training and validation rows, the paper's "train
   set" of the 3:1 split) and the test rows; observed entries are kept as they are;
2. a linear regression (continuous target) or a multinomial logistic regression (categorical target;
   scikit-learn's defaults: L2 with C = 1, lbfgs) is fitted on the imputed training part, in the encoded
   space the imputer works in (numeric features standardised by the observed training entries, categories
   one-hot), with the true targets of those rows;
3. it predicts the imputed test rows, scored by R² (``downstream_r2``) or accuracy (``downstream_accuracy``)
   against the true test targets.

Deviations from the paper, both because the imputer contract (:class:`~imputebench.models.imputer.Imputer`)
returns one pooled imputation: the paper trains on ``n = 10`` sampled imputations of each object and combines
the ``n`` predictions of a test object (mean or mode); here the regressor sees each model's pooled
imputation (the mean of its draws, the most frequent category). For a linear regression the mean of the
predictions equals the prediction of the mean imputation, so only the training side differs there. And the
paper's VAEAC learns the target as an extra feature (appendix B.2); here no imputer ever sees the target, so
every model imputes the same features and the comparison stays paired.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from torchmetrics.functional import r2_score
from torchmetrics.functional.classification import multiclass_accuracy

from imputebench.data.dataset import Dataset
from imputebench.metric_directions import DOWNSTREAM_METRICS


def task_of(dataset: Dataset) -> str:
    """``"regression"`` for a numeric target, ``"classification"`` for class labels.

    Raises ``ValueError`` naming the dataset when it has no target or has images (nothing to predict from
    in a linear model of pixels and a label modality)."""
    if dataset.target is None:
        raise ValueError(f"dataset {dataset.name!r} has no prediction target: the downstream metric needs one")
    if dataset.schema.modalities:
        raise ValueError(f"dataset {dataset.name!r} has modalities (images): the downstream metric is for tables")
    return "regression" if np.issubdtype(np.asarray(dataset.target).dtype, np.number) else "classification"


def downstream_score(dataset: Dataset, fit_rows: np.ndarray, imputed_fit: torch.Tensor, test_rows: np.ndarray,
                     imputed_test: torch.Tensor) -> dict[str, float]:
    """Fit on ``imputed_fit`` ``(n_fit, D)`` (the encoded imputation of ``dataset``'s rows ``fit_rows``), score on
    ``imputed_test`` ``(n_test, D)`` (rows ``test_rows``): ``{"downstream_r2": ...}`` or ``{"downstream_accuracy": ...}``.
    """
    task = task_of(dataset)
    x_fit = imputed_fit.detach().to("cpu", torch.float64).numpy()  # (n_fit, D)
    x_test = imputed_test.detach().to("cpu", torch.float64).numpy()  # (n_test, D)
    y_fit, y_test = np.asarray(dataset.target)[fit_rows], np.asarray(dataset.target)[test_rows]
    if task == "regression":
        predicted = LinearRegression().fit(x_fit, y_fit.astype(np.float64)).predict(x_test)  # (n_test,)
        r2 = r2_score(torch.from_numpy(predicted), torch.from_numpy(y_test.astype(np.float64)))
        return {DOWNSTREAM_METRICS[task]: float(r2)}
    classes = np.unique(y_fit)
    if len(classes) < 2:
        raise ValueError(f"dataset {dataset.name!r}: the training rows hold one class ({classes[0]!r}); "
                         "nothing to classify")
    predicted = LogisticRegression(max_iter=5000).fit(x_fit, y_fit).predict(x_test)  # (n_test,) labels
    labels = np.unique(np.concatenate([classes, y_test]))  # sorted; test classes unseen in training count as errors
    accuracy = multiclass_accuracy(torch.from_numpy(np.searchsorted(labels, predicted)),
                                   torch.from_numpy(np.searchsorted(labels, y_test)), num_classes=len(labels), average="micro")
    return {DOWNSTREAM_METRICS[task]: float(accuracy)}
