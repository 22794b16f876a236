"""Wasserstein critics with a gradient penalty (WGAN-GP; Gulrajani et al., NeurIPS 2017), as
MisGAN trains its three critics (Li, Jiang & Marlin, ICLR 2019; the authors' ``CriticUpdater``)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """E[(||grad_xi D(xi)||_2 - 1)^2] at xi = eps * real + (1 - eps) * fake, eps ~ U(0, 1) per row
    (WGAN-GP eq. 3, without its weight lambda). ``real``, ``fake``: ``(b, n)``; returns a scalar,
    differentiable in the critic's parameters only (``real`` and ``fake`` are detached, as the
    authors' ``CriticUpdater`` detaches them). Works inside ``torch.no_grad()`` too."""
    eps = torch.rand(real.shape[0], 1, device=real.device, dtype=real.dtype)  # (b, 1)
    with torch.enable_grad():
        between = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_()  # (b, n)
        (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)  # (b, n)
    return (grad.norm(dim=1) - 1.0).pow(2).mean()


def critic_loss(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, penalty_weight: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The WGAN-GP critic's loss, mean D(fake) - mean D(real) + lambda * penalty, with the scores
    D(real) and D(fake) ``(b,)`` of the same forward pass, from which the generators' losses come.

    Gradients reach ``fake``'s producer through D(fake) unless it was made without gradients, as
    MisGAN's critic steps make it. (Scoring real and fake rows in one forward of ``2b`` rows
    measured no faster on one CPU thread; the penalty's interpolates in the same batch made the
    double backward three times as wide, 40% slower.)
    """
    real_score, fake_score = critic(real).squeeze(-1), critic(fake).squeeze(-1)  # (b,), (b,)
    loss = fake_score.mean() - real_score.mean() + penalty_weight * gradient_penalty(critic, real, fake)
    return loss, real_score, fake_score
