"""Make missingpy 0.2.0's ``MissForest`` run on current scikit-learn and numpy.

missingpy 0.2.0 (2020, unmaintained) was written for scikit-learn 0.22 and numpy 1.x;
on current releases ``import missingpy`` fails and ``MissForest`` cannot run. This
module undoes, one line per breakage, the library changes it trips over, and hands
back missingpy's own :class:`MissForest` through :func:`load_missforest`. Import
missingpy only through this module.

Side effects, kept as small as possible:

* Everything that can be patched inside missingpy's own modules is patched there
  (``check_array``, ``np``, the forest classes, ``print`` in ``missingpy.missforest``
  and friends); scikit-learn and numpy themselves are left untouched.
* The one unavoidable global change is a ``sys.modules["sklearn.neighbors.base"]``
  entry, needed while ``missingpy/knnimpute.py`` runs its imports. It exists only
  for the duration of that import and is removed afterwards (missingpy keeps the
  names it imported; nothing else can see the alias).

missingpy's ``KNNImputer`` is *not* supported: it imports, but its distance code
still passes ``check_array(warn_on_dtype=...)`` (removed in scikit-learn 0.23) and
is left broken; scikit-learn's own :class:`sklearn.impute.KNNImputer` replaces it.

Patching is lazy (first call of :func:`load_missforest`) and idempotent.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn.utils
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

__all__ = ["load_missforest"]

_LOG = logging.getLogger("missingpy")
_LOCK = threading.Lock()
_PATCHED = False


def load_missforest() -> type:
    """missingpy's ``MissForest`` class, after making missingpy importable and runnable.

    After the first call, ``import missingpy`` also works. ``MissForest`` then
    additionally accepts a ``(regressor, classifier)`` pair for ``max_features``,
    like it already does for ``criterion``.
    """
    global _PATCHED
    with _LOCK:
        if not _PATCHED:
            _import_missingpy()
            _patch_modules()
            _PATCHED = True
    return sys.modules["missingpy"].MissForest


# --- importing ------------------------------------------------------------------------


def _import_missingpy() -> None:
    """``import missingpy`` with a temporary ``sklearn.neighbors.base`` module."""
    if "missingpy" in sys.modules:
        return
    alias_needed = importlib.util.find_spec("sklearn.neighbors.base") is None
    if alias_needed:
        # scikit-learn 0.24 removed sklearn.neighbors.base (renamed to the private _base);
        # missingpy/knnimpute.py imports _check_weights and _get_weights from it.
        sys.modules["sklearn.neighbors.base"] = _neighbors_base_shim()
    try:
        importlib.import_module("missingpy")
    finally:
        if alias_needed:
            del sys.modules["sklearn.neighbors.base"]  # the only global change, undone at once


def _neighbors_base_shim() -> types.ModuleType:
    """A stand-in for the removed ``sklearn.neighbors.base`` holding what missingpy imports."""
    from sklearn.neighbors import _base

    shim = types.ModuleType("sklearn.neighbors.base", "missingpy compatibility shim")
    shim._get_weights = _base._get_weights
    # scikit-learn 1.2 removed _check_weights (weights are validated by parameter
    # constraints now); this is its old body, used only by missingpy's KNNImputer.fit.
    shim._check_weights = _check_weights
    return shim


def _check_weights(weights: Any) -> Any:
    if weights in (None, "uniform", "distance") or callable(weights):
        return weights
    raise ValueError("weights not recognized: should be 'uniform', 'distance', or a callable function")


# --- patching missingpy's module attributes ---------------------------------------------------


def _patch_modules() -> None:
    """Replace, inside missingpy's modules only, the names that no longer work."""
    missforest = sys.modules["missingpy.missforest"]
    if "force_all_finite" not in inspect.signature(sklearn.utils.check_array).parameters:
        # scikit-learn 1.6 renamed check_array(force_all_finite=) to ensure_all_finite= and
        # 1.8 removed the old name; missingpy imported check_array by name in these modules.
        for name in ("missingpy.missforest", "missingpy.knnimpute", "missingpy.pairwise_external", "missingpy.utils"):
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "check_array"):
                module.check_array = _forward_force_all_finite(module.check_array)
    if not hasattr(np, "in1d"):
        # numpy 2.4 removed np.in1d (deprecated in 2.0 for np.isin); MissForest calls
        # np.in1d on 1-d arrays, where np.isin is identical. Only missforest's `np` changes.
        missforest.np = _numpy_with_in1d()
    # scikit-learn 1.2 removed criterion="mse" and 1.3 removed max_features="auto", both
    # MissForest defaults; the factories translate them (and split a max_features pair).
    missforest.RandomForestRegressor = _forest_factory(RandomForestRegressor, role=0)
    missforest.RandomForestClassifier = _forest_factory(RandomForestClassifier, role=1)
    # Not a library change: MissForest prints "Iteration: k" unconditionally (ignoring
    # verbose); send it to the "missingpy" logger at DEBUG level instead of stdout.
    missforest.print = _log_print


def _forward_force_all_finite(check_array: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``check_array`` so the old ``force_all_finite=`` keyword reaches ``ensure_all_finite=``."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if "force_all_finite" in kwargs:
            kwargs["ensure_all_finite"] = kwargs.pop("force_all_finite")
        return check_array(*args, **kwargs)

    wrapped.__wrapped__ = check_array  # type: ignore[attr-defined]
    return wrapped


class _NumpyProxy(types.ModuleType):
    """numpy, seen through missingpy.missforest's ``np`` name, plus the removed ``in1d``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


def _numpy_with_in1d() -> types.ModuleType:
    proxy = _NumpyProxy("numpy", "numpy with in1d = isin, for missingpy only")
    proxy.in1d = np.isin
    return proxy


def _forest_factory(forest: type, role: int) -> Callable[..., Any]:
    """Build ``forest`` with removed parameter values translated to their current meaning.

    ``role`` is 0 for the regressor and 1 for the classifier, indexing a
    ``(regressor, classifier)`` pair of ``max_features``.
    """

    def build(**params: Any) -> Any:
        max_features = params.get("max_features")
        if isinstance(max_features, (tuple, list)):
            max_features = max_features[role]
        if max_features == "auto":  # the old "auto": all features for regressors, sqrt(p) for classifiers
            max_features = 1.0 if role == 0 else "sqrt"
        params["max_features"] = max_features
        if params.get("criterion") == "mse":  # renamed "squared_error" in scikit-learn 1.0
            params["criterion"] = "squared_error"
        return forest(**params)

    build.__name__ = forest.__name__
    return build


def _log_print(*args: Any, **_: Any) -> None:
    _LOG.debug(" ".join(str(a) for a in args))
