"""The one place that decides how big each chapter's run is.

Every chapter reads its sizes from here::

    from genlab.profiles import settings
    cfg = settings("07_autoencoders")
    cfg.epochs

``GENLAB_PROFILE=quick`` (default) keeps every notebook within about three
minutes on a 2-core CPU; ``GENLAB_PROFILE=full`` is the longer, GPU-sized run.
Notebooks never hard-code both sizes: they read the current one from here.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from .device import get_profile

# One entry per chapter: {"quick": {...}, "full": {...}}; both must have the same keys.
CHAPTERS: dict[str, dict[str, dict[str, Any]]] = {
    # --- 01_fundamentals ---
    "01_fundamentals": {
        # Training-set sizes are points per class (the smallest class of the digits train split has 98).
        "quick": {"n_repeats": 20, "sizes_per_class": [2, 5, 10, 25, 50, 98]},
        "full": {"n_repeats": 100, "sizes_per_class": [2, 3, 5, 10, 25, 50, 75, 98]},
    },
    # --- 02_distributions ---
    "02_distributions": {
        "quick": {"n_bootstrap": 200},
        "full": {"n_bootstrap": 2000},
    },
    # --- 03_gaussian_mixtures ---
    "03_gaussian_mixtures": {
        "quick": {"n_toy": 600, "bic_max_k": 8, "digits_ks": [1, 5, 10, 20, 30], "digits_alphas": [0.1, 0.5, 1.0],
                  "digits_n_init": 1, "max_iter": 200},
        "full": {"n_toy": 3000, "bic_max_k": 10, "digits_ks": [1, 5, 10, 15, 20, 30, 40, 60],
                 "digits_alphas": [0.05, 0.1, 0.25, 0.5, 1.0], "digits_n_init": 5, "max_iter": 500},
    },
    # --- 04_hidden_markov_models ---
    "04_hidden_markov_models": {
        "quick": {"n_restarts": 3, "n_iter": 100, "max_states": 3, "n_synthetic": 20, "synthetic_length": 150},
        "full": {"n_restarts": 10, "n_iter": 500, "max_states": 5, "n_synthetic": 100, "synthetic_length": 500},
    },
    # --- 05_nonparametric ---
    "05_nonparametric": {
        "quick": {"n_1d": 300, "n_2d": 1000, "n_bandwidths": 25, "cv_folds": 5,
                  "curse_dims": [1, 2, 4, 8, 16, 32], "curse_n_train": 2000, "curse_n_test": 1000,
                  "curse_bandwidths": 10, "curse_cv": 3,
                  "digits_bandwidths": 12, "dp_n_samples": 600, "dp_truncation": 15, "n_stick_draws": 2000},
        "full": {"n_1d": 1000, "n_2d": 5000, "n_bandwidths": 40, "cv_folds": 5,
                 "curse_dims": [1, 2, 4, 8, 16, 32, 64], "curse_n_train": 20000, "curse_n_test": 5000,
                 "curse_bandwidths": 20, "curse_cv": 5,
                 "digits_bandwidths": 30, "dp_n_samples": 3000, "dp_truncation": 30, "n_stick_draws": 20000},
    },
    # --- 06_deep_generative_models ---
    "06_deep_generative_models": {
        # A tiny autoencoder on the 8x8 digits; the early-stopping model is oversized on purpose.
        "quick": {"hidden": [64, 32], "latent_dim": 4, "lr": 1e-3, "epochs": 20, "resume_split": 10,
                  "es_hidden": [256, 128], "es_latent_dim": 16, "es_lr": 3e-3, "es_max_epochs": 150, "patience": 8},
        "full": {"hidden": [64, 32], "latent_dim": 4, "lr": 1e-3, "epochs": 60, "resume_split": 30,
                 "es_hidden": [256, 128], "es_latent_dim": 16, "es_lr": 3e-3, "es_max_epochs": 400, "patience": 15},
    },
    # --- 07_autoencoders ---
    # The article's Fashion-MNIST runs in the full profile when its files are present (else MNIST-5k).
    "07_autoencoders": {
        "quick": {"dataset": "mnist5k", "fashion_root": "data/fashion-mnist", "epochs": 15, "conv_epochs": 6,
                  "conv_channels": 16, "dae_epochs": 10, "mask_fraction": 0.5, "gaussian_std": 1.0,
                  "n_latent_draws": 1000},
        "full": {"dataset": "fashion_mnist", "fashion_root": "data/fashion-mnist", "epochs": 30,
                 "conv_epochs": 20, "conv_channels": 32, "dae_epochs": 30, "mask_fraction": 0.5,
                 "gaussian_std": 1.0, "n_latent_draws": 5000},
    },
    # --- 08_gans ---
    # 2-D toys: the ring (8 modes) and the 3x3 grid (9 modes); images: digits 8x8 (quick), MNIST-5k (full).
    "08_gans": {
        "quick": {"n_toy": 2048, "toy_epochs": 100, "toy_eval_every": 10, "toy_lr": 3e-3, "dataset": "digits",
                  "latent_dim": 16, "channels": 32, "image_lr": 2e-3, "image_epochs": 150, "wgan_epochs": 40,
                  "cgan_epochs": 50, "style_epochs": 30, "cycle_epochs": 30, "clip_epochs": 50},
        "full": {"n_toy": 4096, "toy_epochs": 300, "toy_eval_every": 20, "toy_lr": 3e-3, "dataset": "mnist5k",
                 "latent_dim": 32, "channels": 64, "image_lr": 1e-3, "image_epochs": 300, "wgan_epochs": 300,
                 "cgan_epochs": 200, "style_epochs": 150, "cycle_epochs": 100, "clip_epochs": 150},
    },
    # --- 09_vaes ---
    "09_vaes": {
        # Quick: at most about 150 CPU-seconds; the IWAE (k = 5 per step) trains in the full profile only.
        "quick": {"epochs": 300, "patience": 20, "train_iwae": False, "iwae_epochs": 150, "ar_channels": 32,
                  "ar_epochs": 100, "small_epochs": 60, "cvae_epochs": 40, "cvae_free_bits": 1.0, "k_eval": 1000,
                  "k_eval_ar": 200,
                  "betas": [0.25, 1.0, 4.0, 16.0]},
        "full": {"epochs": 400, "patience": 20, "train_iwae": True, "iwae_epochs": 400, "ar_channels": 64,
                 "ar_epochs": 400, "small_epochs": 100, "cvae_epochs": 100, "cvae_free_bits": 1.0, "k_eval": 5000,
                 "k_eval_ar": 5000,
                 "betas": [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]},
    },
    # --- 10_normalizing_flows ---
    "10_normalizing_flows": {
        "quick": {"n_toy": 1500, "toy_epochs": 25, "flow_epochs": 12, "flow_hidden": 32, "flow_steps": 2,
                  "dequant_epochs": 4, "ar_epochs": 12, "ar_channels": 32, "vae_epochs": 20, "bound_samples": 4},
        "full": {"n_toy": 8000, "toy_epochs": 150, "flow_epochs": 150, "flow_hidden": 64, "flow_steps": 4,
                 "dequant_epochs": 40, "ar_epochs": 150, "ar_channels": 64, "vae_epochs": 200, "bound_samples": 10},
    },
    # --- 11_diffusion ---
    # quick: 8x8 digits with a small U-Net; full: 28x28 MNIST-5k with a larger one and 1000 steps.
    "11_diffusion": {
        "quick": {"toy_n": 2000, "toy_steps": 100, "toy_epochs": 150, "dataset": "digits", "n_steps": 200,
                  "base_channels": 16, "channel_mults": [1, 2], "attention_levels": [], "dropout": 0.1,
                  "epochs": 120, "lr": 3e-3,
                  "batch_size": 128, "ema_decay": 0.995, "ddim_steps": [10, 20, 50], "ddim_etas": [0.0, 0.5, 1.0],
                  "guidance_scales": [0.0, 1.0, 2.0, 4.0],
                  "nll_timesteps": 20, "n_nll": 447},
        "full": {"toy_n": 5000, "toy_steps": 200, "toy_epochs": 300, "dataset": "mnist", "n_steps": 1000,
                 "base_channels": 32, "channel_mults": [1, 2, 2], "attention_levels": [2], "dropout": 0.1,
                 "epochs": 200, "lr": 2e-3,
                 "batch_size": 128, "ema_decay": 0.999, "ddim_steps": [10, 20, 50, 100], "ddim_etas": [0.0, 0.5, 1.0],
                 "guidance_scales": [0.0, 1.0, 2.0, 4.0], "nll_timesteps": 50, "n_nll": 1000},
    },
    # --- 12_use_cases ---
    "12_use_cases": {
        # Four small use cases: digit completion with a VAE, a synthetic breast-cancer table, a character
        # model of standard-library docstrings, and amino-acid strings from a hand-built profile HMM.
        "quick": {"vae_epochs": 40, "inpaint_steps": 20, "tab_vae_epochs": 150, "n_bootstrap": 200,
                  "ngram_orders": [1, 2, 3, 4, 5], "ngram_k": 0.1, "hmm_states": 32, "hmm_chars": 50000,
                  "hmm_iter": 20, "char_epochs": 3, "char_window": 64, "char_batch": 16, "char_channels": 64,
                  "n_match": 30, "protein_length": 40, "n_proteins": 1000, "protein_epochs": 15},
        "full": {"vae_epochs": 150, "inpaint_steps": 20, "tab_vae_epochs": 500, "n_bootstrap": 1000,
                 "ngram_orders": [1, 2, 3, 4, 5, 6], "ngram_k": 0.1, "hmm_states": 64, "hmm_chars": 200000,
                 "hmm_iter": 50, "char_epochs": 20, "char_window": 128, "char_batch": 32, "char_channels": 128,
                 "n_match": 30, "protein_length": 40, "n_proteins": 5000, "protein_epochs": 40},
    },
    # --- 13_training_tips ---
    # One controlled experiment per tip: digits 8x8 (flattened) autoencoders, a VAE, 2-D GANs and a 2-D flow.
    "13_training_tips": {
        "quick": {"norm_epochs": 30, "init_depth": 5, "init_epochs": 15, "sweep_batch_sizes": [16, 64, 256],
                  "sweep_lrs": [2.5e-4, 1e-3, 4e-3, 1.6e-2], "sweep_epochs": 8, "finder_steps": 100,
                  "clip_lr": 0.1, "clip_epochs": 4, "n_toy": 1024, "gan_hidden": 64, "gan_epochs": 150,
                  "ema_decay": 0.99, "flow_epochs": 20, "diffusion_epochs": 60, "resume_epochs": 6, "vae_hidden": 512,
                  "vae_max_epochs": 60, "patience": 8, "collapse_betas": [1.0, 4.0], "collapse_epochs": 20,
                  "collapse_warmup": 12},
        "full": {"norm_epochs": 100, "init_depth": 8, "init_epochs": 50, "sweep_batch_sizes": [16, 32, 64, 128, 256],
                 "sweep_lrs": [1.25e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2], "sweep_epochs": 30,
                 "finder_steps": 300, "clip_lr": 0.1, "clip_epochs": 20, "n_toy": 4096, "gan_hidden": 128,
                 "gan_epochs": 300, "ema_decay": 0.99, "flow_epochs": 100, "diffusion_epochs": 200,
                 "resume_epochs": 20, "vae_hidden": 512,
                 "vae_max_epochs": 200, "patience": 15, "collapse_betas": [1.0, 2.0, 4.0, 8.0], "collapse_epochs": 60,
                 "collapse_warmup": 20},
    },
    # --- 14_evaluation ---
    "14_evaluation": {
        "quick": {"leaderboard_datasets": ["digits"], "vae_epochs": 100, "ae_epochs": 30, "iw_samples": 500,
                  "kid_subsets": 50, "noise_levels": [0.0, 1.0, 2.0, 4.0], "blur_sigmas": [0.0, 0.6, 1.2],
                  "n_toy": 1000, "n_turing": 16},
        "full": {"leaderboard_datasets": ["digits", "mnist"], "vae_epochs": 300, "ae_epochs": 100,
                 "iw_samples": 1000, "kid_subsets": 100, "noise_levels": [0.0, 0.5, 1.0, 2.0, 4.0, 8.0],
                 "blur_sigmas": [0.0, 0.4, 0.8, 1.2, 1.6], "n_toy": 4000, "n_turing": 36},
    },
    # --- 15_advanced_techniques ---
    # 8x8 digits throughout; one conditional diffusion model serves both guidance sweeps, one style GAN both
    # style mixing and the latent attributions; the conditional GANs with and without attention are the same run.
    "15_advanced_techniques": {
        "quick": {"n_eval": 500, "cvae_epochs": 40, "gan_epochs": 40, "gan_channels": 32, "gan_lr": 2e-3,
                  "diffusion_epochs": 80, "diffusion_hidden": 192, "diffusion_steps": 200, "sample_steps": 25,
                  "classifier_epochs": 40, "guidance_scales": [0.0, 1.0, 2.0, 4.0],
                  "classifier_scales": [0.0, 1.0, 3.0, 10.0], "style_epochs": 60, "stage_epochs": 6,
                  "source_epochs": 60, "n_few": 50, "finetune_steps": 60, "finetune_lr": 3e-4},
        "full": {"n_eval": 2000, "cvae_epochs": 100, "gan_epochs": 150, "gan_channels": 64, "gan_lr": 1e-3,
                 "diffusion_epochs": 300, "diffusion_hidden": 256, "diffusion_steps": 500, "sample_steps": 50,
                 "classifier_epochs": 100, "guidance_scales": [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0],
                 "classifier_scales": [0.0, 0.5, 1.0, 3.0, 10.0, 30.0], "style_epochs": 200, "stage_epochs": 30,
                 "source_epochs": 200, "n_few": 50, "finetune_steps": 60, "finetune_lr": 3e-4},
    },
    # --- 16_ethics ---
    # Detection ladder of Gaussian mixtures (covariance, K), a skewed training set, membership attacks, a watermark.
    "16_ethics": {
        "quick": {"ladder": [["diag", 1], ["full", 1], ["full", 10], ["full", 30]], "reg_covar": 0.1,
                  "minority_keep": 0.25, "bias_components": 10, "n_bias_samples": 2000, "n_bootstrap": 200,
                  "gmm_sizes": [100, 250, 500], "gmm_components": 5, "n_nonmembers": 200,
                  "vae_members": 200, "vae_epochs": [5, 25, 100, 200], "vae_lr": 3e-3, "n_copy_samples": 500,
                  "wm_strength": 4.0, "wm_fpr": 0.01, "wm_noise": [0.5, 1.0, 2.0, 3.0],
                  "wm_blur": [0.3, 0.5, 0.8, 1.0], "wm_n_keys": 200},
        # the ladder stops at K=30: beyond it FID no longer improves on 1,000 training digits
        "full": {"ladder": [["diag", 1], ["full", 1], ["full", 5], ["full", 10], ["full", 20], ["full", 30]],
                 "reg_covar": 0.1,
                 "minority_keep": 0.25, "bias_components": 10, "n_bias_samples": 10000, "n_bootstrap": 1000,
                 "gmm_sizes": [100, 175, 250, 375, 500], "gmm_components": 5, "n_nonmembers": 200,
                 "vae_members": 200, "vae_epochs": [5, 25, 50, 100, 200, 400], "vae_lr": 3e-3,
                 "n_copy_samples": 2000,
                 "wm_strength": 4.0, "wm_fpr": 0.01, "wm_noise": [0.5, 1.0, 2.0, 3.0, 4.0],
                 "wm_blur": [0.3, 0.5, 0.8, 1.0, 1.5], "wm_n_keys": 1000},
    },
    # --- 17_next_steps ---
    "17_next_steps": {
        # A memorisation audit on the 8x8 digits: a near-copying KDE, a smoother KDE and a mixture.
        "quick": {"n_samples": 300, "copy_bandwidth": 0.5, "smooth_bandwidth": 2.0, "gmm_components": 10,
                  "n_truncation": 20000},
        "full": {"n_samples": 1000, "copy_bandwidth": 0.5, "smooth_bandwidth": 2.0, "gmm_components": 20,
                 "n_truncation": 200000},
    },
}


def settings(chapter: str, profile: str | None = None) -> SimpleNamespace:
    """Return the sizes of ``chapter`` for ``profile`` (default: the current one).

    Raises:
        KeyError: if the chapter has no entry here (the message lists those that do).
        ValueError: if the profile is unknown.
    """
    profile = get_profile() if profile is None else profile
    if profile not in ("quick", "full"):
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    if chapter not in CHAPTERS:
        raise KeyError(f"no sizes for chapter {chapter!r}; known chapters: {sorted(CHAPTERS)}")
    values = dict(CHAPTERS[chapter][profile])
    values["profile"] = profile
    return SimpleNamespace(**values)
