"""VAE: the variational autoencoder baseline of the VSAE paper (papers/000 Table 1; papers/001 appendix D).

Kingma & Welling (2014) with a standard normal prior. Like the AE it sees the
zero-filled table without the mask; the ELBO's reconstruction term covers the
observed entries only (papers/001 appendix A for the ELBO):
``L = E_q[sum_{i observed} log p(x_i | z)] - KL(q(z | x~) || N(0, I))``.
"""

from __future__ import annotations

import torch

from imputebench.models.ae import AEConfig
from imputebench.models.base import ImputerModule
from imputebench.models.registry import register_model
from imputebench.nn.elbo import clamp_logvar, gaussian_kl, masked_log_lik, reparameterize
from imputebench.nn.heads import TabularLikelihood
from imputebench.nn.mlp import mlp
from imputebench.schema import FeatureSchema


@register_model("vae")
class VAE(ImputerModule):
    """Variational autoencoder on zero-filled data without the mask; ELBO on observed entries."""

    Config = AEConfig

    def build(self, schema: FeatureSchema) -> None:
        cfg = self.cfg
        self.likelihood = TabularLikelihood(schema, variance=cfg.gaussian_variance, pixel_likelihood=cfg.pixel_likelihood)
        hidden = [cfg.hidden_width] * cfg.hidden_layers
        self.latent_dim = cfg.latent_per_feature * self.layout.n_modalities
        self.encoder = mlp(schema.encoded_dim + self.condition_dim(schema), hidden, 2 * self.latent_dim)
        self.decoder = mlp(self.latent_dim + self.condition_dim(schema), hidden, self.likelihood.param_dim)

    def condition_dim(self, schema: FeatureSchema) -> int:
        """Width of the condition concatenated to encoder and decoder inputs (none for the VAE)."""
        return 0

    def condition(self, observed: torch.Tensor) -> torch.Tensor:
        """``(b, c)`` condition for a batch; empty for the VAE."""
        return observed.new_zeros(observed.shape[0], 0, dtype=torch.float32)

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(torch.cat([x, c], -1)).chunk(2, -1)  # (b, k) each
        return mu, clamp_logvar(logvar)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, c], -1))  # (b, P)

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x * observed  # the filled input: a hidden value never reaches a network
        c = self.condition(observed)
        mu, logvar = self.encode(x, c)
        params = self.decode(reparameterize(mu, logvar), c)
        rec = masked_log_lik(self.likelihood.log_prob(params, x), self.layout.feature_mask(observed))  # (b,)
        kl = gaussian_kl(mu, logvar).sum(-1)  # (b,)
        return {"loss": (kl - rec).mean(), "rec": -rec.mean(), "kl": kl.mean()}

    def impute_batch(self, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        c = self.condition(observed)
        mu, logvar = self.encode(x * observed, c)
        return self.likelihood.mode(self.decode(reparameterize(mu, logvar), c))

    @torch.no_grad()
    def generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` rows from the prior, z ~ N(0, I): encoded data ``(n, D)`` (decoder mode), no mask.

        Conditional variants generate with every feature marked observed.
        """
        self.eval()
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, device=device)
        c = self.condition(torch.ones(n, self.schema.encoded_dim, dtype=torch.bool, device=device))
        return self.likelihood.mode(self.decode(z, c)), None
