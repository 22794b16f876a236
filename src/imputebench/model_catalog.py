"""What each model is, readable without importing any model (so without torch or Lightning).

``imputebench models`` lists these cards and the leaderboard marks with † the models trained on
complete data; both answer at once because neither loads the model classes. A card is the one
place a model's ``paper`` and ``trained_on_complete_data`` are written: registering the class
gives it them (:func:`~imputebench.models.registry.register_model`, which refuses a model without
a card), and a test checks each card's summary against its class's docstring, so adding a model
means one card here besides its file and import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelCard:
    """A model as ``imputebench models`` describes it."""

    summary: str
    paper: str
    #: trained on the complete training rows (the VSAE tables' "trained with fully-observed data" rows)
    trained_on_complete_data: bool = False


MODELS: dict[str, ModelCard] = {
    "ae": ModelCard("Autoencoder on zero-filled data without the mask; loss on observed entries.",
                    "Gong et al. 2021, VSAE baseline (papers/000 Table 1)"),
    "ae_logreg": ModelCard("An autoencoder of the images and a logistic regression from its code to the labels, on the paired "
                           "rows (MVAE's AE).",
                           "Wu & Goodman 2018, MVAE (papers/004) section 5.1: the AE baseline of Tables 8-9"),
    "cvae_data": ModelCard("CVAE with a prior network on the observed part; trained on complete data.",
                           "Sohn et al. 2015; VSAE baseline 'CVAE w/ data' (papers/000 Table 1)",
                           trained_on_complete_data=True),
    "cvae_mask": ModelCard("VAE whose encoder and decoder are both conditioned on the missingness mask.",
                           "Sohn et al. 2015; VSAE baseline 'CVAE w/ mask' (papers/000 Table 1)"),
    "gain": ModelCard("Generator and discriminator with the hint mechanism; data in [0, 1].",
                      "Yoon, Jordon & van der Schaar 2018, GAIN (ICML)"),
    "gain_vaeac": ModelCard("GAIN as the VAEAC paper's tables report it (appendix A.4).",
                            "Ivanov, Figurnov & Vetrov 2019, VAEAC (ICLR) appendix A.4: GAIN with one-hot categories"),
    "hivae": ModelCard("Heterogeneous-incomplete VAE: Gaussian-mixture prior, per-type likelihoods, ELBO on observed entries.",
                       "Nazabal et al. 2020, HI-VAE (Pattern Recognition)"),
    "mean": ModelCard("Mean (numeric) / mode (categorical; ties -> lowest code) of the observed training entries.",
                      "classical baseline (papers/000, papers/002 tables)"),
    "mice": ModelCard("Multivariate Imputation by Chained Equations (van Buuren & Groothuis-Oudshoorn 2011).",
                      "van Buuren & Groothuis-Oudshoorn 2011 (JSS)"),
    "misgan": ModelCard("Mask and data generators, an imputer, and a WGAN-GP critic for each; data in [0, 1].",
                        "Li, Jiang & Marlin 2019, MisGAN (ICLR)"),
    "missforest": ModelCard("MissForest (Stekhoven & Bühlmann 2012) through missingpy 0.2.0, which the VSAE paper used.",
                            "Stekhoven & Bühlmann 2012 (Bioinformatics)"),
    "miwae": ModelCard("Importance-weighted autoencoder on the observed entries; SNIS single and SIR multiple imputation.",
                       "Mattei & Frellsen 2019, MIWAE (ICML)"),
    "mopoe": ModelCard("Mixture of products of experts over the subsets of the observed modalities (generalized multimodal ELBO).",
                       "Sutter, Daunhawer & Vogt 2021, MoPoE-VAE (ICLR); the mrVAE paper's baseline (papers/003)"),
    "mrvae": ModelCard("Per-modality latents whose shared factors are selected per subset of modalities and aggregated (relational ELBO).",
                       "Sutter & Vogt, Multimodal Relational VAE (papers/003)"),
    "mvae": ModelCard("Product-of-experts VAE trained on the sub-sampled ELBO of eq. (5); MVAE-Q behind ``quotient``.",
                      "Wu & Goodman 2018, MVAE (papers/004); VSAE baseline (papers/000 Table 1)"),
    "supervised_logreg": ModelCard("Labels predicted from the other features by a logistic regression trained on the rows "
                                   "where both are observed (MVAE's LOGREG).",
                                   "Wu & Goodman 2018, MVAE (papers/004) section 5.1: the LOGREG baseline of Tables 8-9"),
    "supervised_nn": ModelCard("Labels predicted from the other features by an MLP trained on the rows where both are "
                               "observed (MVAE's NN).",
                               "Wu & Goodman 2018, MVAE (papers/004) section 5.1 and appendix H: the NN baseline of Tables 8-9"),
    "vae": ModelCard("Variational autoencoder on zero-filled data without the mask; ELBO on observed entries.",
                     "Kingma & Welling 2014; VSAE baseline (papers/000 Table 1)"),
    "vaeac": ModelCard("Variational autoencoder with arbitrary conditioning: prior, proposal and skip-connected "
                       "generative networks.", "Ivanov, Figurnov & Vetrov 2019, VAEAC (papers/002)"),
    "vae_logreg": ModelCard("A VAE of the images and a logistic regression from its posterior mean to the labels, on the "
                            "paired rows (MVAE's VAE).",
                            "Wu & Goodman 2018, MVAE (papers/004) section 5.1 and appendix H: the VAE baseline of Tables 8-9"),
    "vsae": ModelCard("Variational selective autoencoder: selective unimodal/multimodal proposals and a mask decoder.",
                      "Gong et al., Variational Selective Autoencoder (papers/000, papers/001)"),
    "vsae_zero_fill": ModelCard("VSAE with zeros for unobserved entries and one latent dimension per feature (our deviation, "
                                "against collapse).",
                                "Gong et al. (papers/000) with two choices of appendix B.2 changed: "
                                "benchmarks/results/vsae_ablation.md"),
}


def trained_on_complete_data(name: str) -> bool:
    """Whether model ``name`` trains on complete rows; False for a name with no card (a stored row of a model
    this version no longer has)."""
    card = MODELS.get(name)
    return card is not None and card.trained_on_complete_data
