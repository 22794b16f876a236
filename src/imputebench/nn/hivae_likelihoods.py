"""Heterogeneous likelihood heads of HI-VAE (Nazabal et al., Pattern Recognition 2020, section 3).

Each feature ``d`` has its own likelihood p(x_d | gamma_d) whose parameters are
functions of ``[y_d, s]`` (the feature's slice of the shared ``y`` and the
mixture component ``s``): real (Gaussian), positive real (log-normal on
``log(1 + x)``), count (Poisson), categorical (softmax) and ordinal
(cumulative link); and for image sets, which the paper does not treat, a pixel
kind: a Bernoulli likelihood of the intensity in [0, 1] with its logit from
``[y_d, s]``, as the other models here score pixels. Where the paper leaves a detail open we follow the authors'
code (github.com/probabilistic-learning/HI-VAE, ``VAE_functions.py`` and
``loglik_models_missing_normalize.py``): one bias-free linear map per feature,
the mean/logits/rate from ``[y_d, s]`` and the variance/thresholds from ``s``
alone, N(0, 0.05^2) initial weights, a zero first logit for categories, and the
batch normalisation of numeric inputs on observed entries with de-normalised
likelihood parameters (paper eq. 11-12).

Features of one kind are handled together through gather index buffers (one
grouped matmul per kind); the only Python loop runs over the <= 6 kinds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imputebench.nn.elbo import gaussian_log_prob
from imputebench.nn.heads import bernoulli_log_prob
from imputebench.nn.layout import SchemaLayout, masked_log_softmax
from imputebench.schema import FeatureSchema

#: HI-VAE's likelihood kinds; positive/count need the raw (untransformed) values.
HIVAE_KINDS: tuple[str, ...] = ("real", "positive", "count", "categorical", "ordinal", "pixel")
NUMERIC = ("real", "positive", "count")
COLUMNS = (*NUMERIC, "pixel")  # kinds of one encoded column per feature
BLOCKS = ("categorical", "ordinal")
VAR_FLOOR = 1e-3  # authors' epsilon for (de-normalised) variances
INPUT_VAR_FLOOR = 1e-6  # authors' clip of the batch variance used to normalise the input
PROB_FLOOR = 1e-6  # authors' epsilon for ordinal probabilities and Poisson rates
_INIT_STD = 0.05  # authors' kernel_initializer for every dense layer


def lognormal_log_prob(x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log p(x) for log(1 + x) ~ N(mu, var), x >= 0 (authors' ``loglik_pos``). Elementwise."""
    log_x = torch.log1p(x)
    return gaussian_log_prob(log_x, mu, var.log()) - log_x


def poisson_log_prob(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """log Poisson(x; rate) = x log rate - rate - log x!. Elementwise."""
    return torch.xlogy(x, rate) - rate - torch.lgamma(x + 1.0)


def ordinal_log_probs(threshold_params: torch.Tensor, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Cumulative-link category log-probabilities (paper section 3.2, ordinal data).

    ``threshold_params`` ``(..., K_max - 1)``: thresholds theta_k are their cumulative sums
    after softplus (ordered by construction); ``h`` ``(...)``: the location h(y_d, s);
    ``valid`` ``(K_max,)`` bool marks this feature's K categories (a prefix). With
    P(x <= k) = sigmoid(theta_k - h) for k < K - 1 and P(x <= K - 1) = 1, returns
    log P(x = k) ``(..., K_max)``, clipped below at PROB_FLOOR (authors), 0 on padding.
    """
    theta = F.softplus(threshold_params).clamp_min(PROB_FLOOR).cumsum(-1)  # (..., K_max - 1)
    exists = valid[..., 1:]  # threshold k exists iff category k + 1 does, i.e. k < K - 1
    cdf = torch.sigmoid(theta - h.unsqueeze(-1)).masked_fill(~exists, 1.0)  # P(x <= k)
    upper = torch.cat([cdf, torch.ones_like(cdf[..., :1])], -1)  # (..., K_max) P(x <= k)
    lower = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)  # (..., K_max) P(x <= k - 1)
    probs = (upper - lower).clamp_min(PROB_FLOOR)
    return probs.log().masked_fill(~valid, 0.0)


class GroupedMap(nn.Module):
    """``G`` bias-free linear maps at once: ``(b, G, in) -> (b, G, out)`` (authors: ``use_bias=False``)."""

    def __init__(self, groups: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(groups, in_dim, out_dim) * _INIT_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bgi,gio->bgo", x, self.weight)


def _masked_moments(t: torch.Tensor, m: torch.Tensor, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance ``(G,)`` of ``t`` ``(b, G)`` over the entries where ``m``; (0, 1)
    for a feature with fewer than two observed entries in the batch."""
    w = m.to(t.dtype)
    n = w.sum(0)
    mean = (t * w).sum(0) / n.clamp_min(1.0)
    var = ((t - mean).pow(2) * w).sum(0) / n.clamp_min(1.0)
    enough = n >= 2
    return torch.where(enough, mean, 0.0), torch.where(enough, var.clamp_min(floor), 1.0)


class HeterogeneousLikelihood(nn.Module):
    """Per-kind HI-VAE heads over a schema, with the per-type input normalisation.

    ``kinds`` gives each feature's likelihood (one of :data:`HIVAE_KINDS`). Positive
    and count likelihoods work on raw values, recovered from the standardised
    encoded column with ``affine = (mean, std)`` ``(d,)`` (the transform's statistics);
    without it those kinds must be passed as ``real``.

    ``normalise`` gives the encoder input and the batch statistics; ``params(y, s)``
    the per-kind parameters; ``log_prob`` per-feature log-likelihoods ``(b, d)``;
    ``impute`` the mean (numeric) / mode (one-hot) in the encoded space ``(b, D)``.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        kinds: tuple[str, ...],
        y_dim: int,
        s_dim: int,
        affine: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if len(kinds) != len(schema) or not set(kinds) <= set(HIVAE_KINDS):
            raise ValueError(f"one HI-VAE kind per feature expected, got {kinds}")
        if affine is None and {"positive", "count"} & set(kinds):
            raise ValueError("positive/count likelihoods need the transform's (mean, std) to recover raw values")
        self.layout = SchemaLayout(schema)
        self.encoded_dim, self.n_features, self.s_dim = schema.encoded_dim, len(schema), s_dim
        self.kinds = tuple(k for k in HIVAE_KINDS if k in kinds)
        if affine is not None:
            self.register_buffer("raw_mean", torch.as_tensor(affine[0], dtype=torch.float32), persistent=False)
            self.register_buffer("raw_std", torch.as_tensor(affine[1], dtype=torch.float32), persistent=False)
        ys = y_dim + s_dim
        self.heads = nn.ModuleDict()
        for kind in self.kinds:
            features = [j for j, k in enumerate(kinds) if k == kind]
            self.register_buffer(f"{kind}_features", torch.tensor(features), persistent=False)
            g = len(features)
            if kind in COLUMNS:
                self.register_buffer(f"{kind}_cols", torch.tensor([schema.offsets[j] for j in features]), persistent=False)
            else:
                index, valid = SchemaLayout._padded(schema, features)  # (G, K_max)
                self.register_buffer(f"{kind}_index", index, persistent=False)
                self.register_buffer(f"{kind}_valid", valid, persistent=False)
            width = getattr(self, f"{kind}_index").shape[1] if kind in BLOCKS else 1
            if kind in ("real", "positive"):
                self.heads[kind] = nn.ModuleList([GroupedMap(g, ys, 1), GroupedMap(g, s_dim, 1)])  # mean, variance
            elif kind in ("count", "pixel"):
                self.heads[kind] = nn.ModuleList([GroupedMap(g, ys, 1)])  # rate / logit
            elif kind == "categorical":
                self.heads[kind] = nn.ModuleList([GroupedMap(g, ys, width - 1)])  # logits 1..K-1 (logit 0 is 0)
            else:
                self.heads[kind] = nn.ModuleList([GroupedMap(g, s_dim, width - 1), GroupedMap(g, ys, 1)])  # thresholds, h

    # --- data in each kind's own space ------------------------------------------------------
    def _values(self, kind: str, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``(b, G)`` observed values of a numeric kind: standardised (real) or raw (positive, count),
        zero where hidden."""
        v = x[:, getattr(self, f"{kind}_cols")]  # (b, G)
        if kind == "real":
            return v
        features = getattr(self, f"{kind}_features")
        raw = (v * self.raw_std[features] + self.raw_mean[features]).clamp_min(0.0)
        raw = raw.round() if kind == "count" else raw
        return raw * m

    def _to_encoded(self, kind: str, raw: torch.Tensor) -> torch.Tensor:
        if kind == "real":
            return raw
        features = getattr(self, f"{kind}_features")
        return (raw - self.raw_mean[features]) / self.raw_std[features]

    def normalise(self, x: torch.Tensor, feature_mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Encoder input ``(b, D)`` and batch statistics (paper section 4.2, authors' ``batch_normalization``).

        Numeric inputs (log(1 + x) for positive and count) are standardised with the mean and
        variance of the batch's observed entries, hidden entries 0; one-hot blocks pass unchanged.
        """
        if x.shape[-1] != self.encoded_dim:
            raise ValueError(f"expected {self.encoded_dim} encoded columns, got {x.shape[-1]}")
        out, stats = x, {}
        for kind in (k for k in self.kinds if k in NUMERIC):
            m = feature_mask[:, getattr(self, f"{kind}_features")]  # (b, G)
            v = self._values(kind, x, m)
            t = v if kind == "real" else torch.log1p(v)
            mean, var = _masked_moments(t, m, INPUT_VAR_FLOOR)  # (G,)
            stats[kind] = (mean, var)
            normalised = (t - mean) / var.sqrt() * m
            out = out.index_copy(-1, getattr(self, f"{kind}_cols"), normalised)
        return out, stats

    # --- parameters ----------------------------------------------------------------------------
    def params(self, y: torch.Tensor, s: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Raw head outputs per kind from ``y`` ``(b, d, y_dim)`` and ``s`` ``(b, s_dim)``."""
        out = {}
        for kind in self.kinds:
            features = getattr(self, f"{kind}_features")
            s_g = s.unsqueeze(1).expand(-1, features.numel(), -1)  # (b, G, s_dim)
            ys = torch.cat([y[:, features], s_g], -1)  # (b, G, y_dim + s_dim)
            heads = self.heads[kind]
            if kind in ("real", "positive"):
                out[kind] = [heads[0](ys).squeeze(-1), heads[1](s_g).squeeze(-1)]  # mean (b, G), variance (b, G)
            elif kind in ("count", "pixel"):
                out[kind] = [heads[0](ys).squeeze(-1)]  # rate / logit (b, G)
            elif kind == "categorical":
                out[kind] = [heads[0](ys)]  # logits 1..K-1 (b, G, K_max - 1)
            else:
                out[kind] = [heads[0](s_g), heads[1](ys).squeeze(-1)]  # thresholds (b, G, K_max - 1), h (b, G)
        return out

    def _gaussian(self, kind: str, raw: list[torch.Tensor], stats: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """De-normalised mean and variance ``(b, G)`` (authors' ``loglik_real`` / ``loglik_pos``)."""
        mean, var = stats[kind]
        var = var.clamp_min(VAR_FLOOR)
        upper = 1.0 if kind == "positive" else 1e20
        return var.sqrt() * raw[0] + mean, var * F.softplus(raw[1]).clamp(VAR_FLOOR, upper)

    def _block_log_probs(self, kind: str, raw: list[torch.Tensor]) -> torch.Tensor:
        valid = getattr(self, f"{kind}_valid")  # (G, K_max)
        if kind == "ordinal":
            return ordinal_log_probs(raw[0], raw[1], valid)
        logits = torch.cat([torch.zeros_like(raw[0][..., :1]), raw[0]], -1)  # (b, G, K_max)
        return masked_log_softmax(logits, valid)

    # --- log-likelihood and imputation ---------------------------------------------------------
    def log_prob(self, params: dict, x: torch.Tensor, feature_mask: torch.Tensor, stats: dict) -> torch.Tensor:
        """Per-feature log p(x_d | y_d, s) ``(b, d)`` of the zero-filled encoded ``x`` (finite at hidden entries)."""
        out = x.new_zeros(x.shape[0], self.n_features)
        for kind in self.kinds:
            features = getattr(self, f"{kind}_features")
            if kind == "pixel":
                log_p = bernoulli_log_prob(params[kind][0], x[:, self.pixel_cols])  # (b, G)
            elif kind in NUMERIC:
                v = self._values(kind, x, feature_mask[:, features])  # (b, G)
                if kind == "count":
                    log_p = poisson_log_prob(v, F.softplus(params[kind][0]).clamp_min(PROB_FLOOR))
                else:
                    mu, var = self._gaussian(kind, params[kind], stats)
                    log_p = gaussian_log_prob(v, mu, var.log()) if kind == "real" else lognormal_log_prob(v, mu, var)
            else:
                target = x[:, getattr(self, f"{kind}_index")] * getattr(self, f"{kind}_valid")  # (b, G, K_max)
                log_p = (target * self._block_log_probs(kind, params[kind])).sum(-1)
            out = out.index_copy(-1, features, log_p)
        return out

    def impute(self, params: dict, stats: dict) -> torch.Tensor:
        """Mean of each numeric likelihood, one-hot mode of each block, in the encoded space ``(b, D)``."""
        first = next(iter(params.values()))[0]
        b = first.shape[0]
        out = first.new_zeros(b, self.encoded_dim)
        for kind in self.kinds:
            if kind == "pixel":
                out = out.index_copy(-1, self.pixel_cols, torch.sigmoid(params[kind][0]))  # expected intensity
            elif kind in NUMERIC:
                if kind == "count":
                    mean = F.softplus(params[kind][0]).clamp_min(PROB_FLOOR)  # E[x] = rate
                else:
                    mu, var = self._gaussian(kind, params[kind], stats)
                    mean = mu if kind == "real" else (torch.exp(mu + 0.5 * var) - 1.0).clamp_min(0.0)
                out = out.index_copy(-1, getattr(self, f"{kind}_cols"), self._to_encoded(kind, mean))
            else:
                valid = getattr(self, f"{kind}_valid")
                scores = self._block_log_probs(kind, params[kind]).masked_fill(~valid, float("-inf"))
                one_hot = SchemaLayout.one_hot_argmax(scores)  # (b, G, K_max)
                index = getattr(self, f"{kind}_index").expand(b, -1, -1)
                out = out.scatter(-1, index[:, valid], one_hot[:, valid])
        return out

