"""Types of model-configuration fields, with their ranges: what every ``Config`` declares.

A model's ``Config`` dataclass annotates each field with one of these, so a value is checked
where it is declared (:func:`imputebench.models.config_check.resolve_config` validates a whole
configuration with pydantic before any trial runs): ``max_epochs: Count = 1000`` refuses
``"two"`` and ``0``; ``lr: PositiveFloat`` refuses ``-1``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

#: a number of things (epochs, units, samples, layers): an integer >= 1
Count = Annotated[int, Field(ge=1)]
#: an integer >= 0 (epochs of a warm-up or an annealing that may be absent)
NonNegativeInt = Annotated[int, Field(ge=0)]
#: a rate, a variance, a temperature: a finite float > 0
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: a weight of a loss term or a noise scale: a finite float >= 0
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: a probability: a float in [0, 1]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
#: how image pixels are modelled: cross-entropy or squared error
PixelLikelihood = Literal["bernoulli", "gaussian"]
