"""Imputation models: one file per model, all behind the :class:`Imputer` contract."""
