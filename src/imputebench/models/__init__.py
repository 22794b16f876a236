"""Imputation models: one file per model, all behind the :class:`Imputer` contract.

Importing this package imports every built-in model module, and each registers its class with
:func:`imputebench.models.registry.register_model` as it is defined; so the registry, which every
model module imports, never imports them back (no import cycle), and any lookup sees them all.
Adding a model = one file + its name below.
"""

from imputebench.models import (  # noqa: F401
    ae,
    classical,
    cvae,
    gain,
    hivae,
    latent_logreg,
    misgan,
    miwae,
    mopoe,
    mrvae,
    mvae,
    supervised,
    vae,
    vaeac,
    vsae,
)
