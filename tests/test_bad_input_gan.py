"""Bad input for genlab.gan and the Trainer's public methods: every case fails at the door, naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.gan import (
    GAN,
    CycleGAN,
    Discriminator,
    Generator,
    StyleGenerator,
    check_gradient_penalty,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    gradient_penalty_exercise,
    mode_coverage,
)
from genlab.layers import apply_spectral_norm
from genlab.train import Trainer
from tests.badinput import BAD_ARRAYS, BAD_SIZES, Case, assert_clear_error

COVERED = {
    "gan.Generator", "gan.Generator.forward", "gan.Discriminator", "gan.Discriminator.forward",
    "gan.StyleGenerator", "gan.StyleGenerator.forward", "gan.StyleGenerator.styles",
    "gan.discriminator_loss", "gan.generator_loss", "gan.gradient_penalty", "gan.mode_coverage",
    "gan.check_gradient_penalty",
    "gan.gradient_penalty_exercise",
    "gan.GAN", "gan.GAN.training_step", "gan.GAN.loss", "gan.GAN.losses", "gan.GAN.sample", "gan.GAN.generate",
    "gan.CycleGAN", "gan.CycleGAN.training_step", "gan.CycleGAN.loss", "gan.CycleGAN.translate",
    "layers.apply_spectral_norm",
    "train.Trainer", "train.Trainer.fit", "train.Trainer.evaluate", "train.Trainer.load", "train.Trainer.save",
}


def trained_gan(n_classes=None):
    gan = GAN(Generator(2, 2, hidden=(8,), n_classes=n_classes), Discriminator(2, hidden=(8,), n_classes=n_classes))
    gan.mark_updated()
    return gan


def trainer():
    return Trainer(trained_gan(), progress=False)


G, D = Generator(2, 2, hidden=(8,)), Discriminator(2, hidden=(8,))
CG, CD = Generator(2, 2, hidden=(8,), n_classes=3), Discriminator(2, hidden=(8,), n_classes=3)
IMG_D = Discriminator((1, 8, 8), channels=4)
LOGITS = torch.zeros(4)

CASES = [
    # networks
    *[Case("gan.Generator", lambda v=v: Generator(v, 2), "latent_dim", repr(v)) for v in BAD_SIZES],
    Case("gan.Generator", lambda: Generator(2, (1, 9, 9)), "output_shape", "9x9"),
    Case("gan.Generator", lambda: Generator(2, (3, 8)), "output_shape", "2-d"),
    Case("gan.Generator", lambda: Generator(2, 2, hidden=(8, 0)), "hidden", "0"),
    Case("gan.Generator", lambda: Generator(2, 2, n_classes=1), "n_classes", "1"),
    Case("gan.Generator", lambda: Generator(2, 2, output_activation="sigmoid"), "output_activation"),
    Case("gan.Generator.forward", lambda: G(torch.zeros(3, 5)), "z", "wrong latent"),
    Case("gan.Generator.forward", lambda: G(torch.zeros(3, 2), torch.tensor([0, 1, 2])), "y", "unconditional"),
    Case("gan.Generator.forward", lambda: CG(torch.zeros(3, 2)), "y", "missing"),
    Case("gan.Generator.forward", lambda: CG(torch.zeros(3, 2), torch.tensor([0, 1, 3])), "y", "out of range"),
    Case("gan.Generator.forward", lambda: CG(torch.zeros(3, 2), torch.tensor([0, 1])), "y", "too few"),
    Case("gan.Generator.forward", lambda: CG(torch.zeros(3, 2), torch.tensor([0, -1, 1])), "y", "negative"),
    Case("gan.Discriminator", lambda: Discriminator((1, 8, 9)), "input_shape"),
    Case("gan.Discriminator", lambda: Discriminator(2, hidden=()), "hidden", "empty"),
    Case("gan.Discriminator.forward", lambda: D(torch.zeros(3, 3)), "x", "wrong width"),
    Case("gan.Discriminator.forward", lambda: IMG_D(torch.zeros(3, 1, 28, 28)), "x", "wrong size"),
    Case("gan.Discriminator.forward", lambda: CD(torch.zeros(3, 2), [0, 1, 5]), "y", "out of range"),
    Case("gan.StyleGenerator", lambda: StyleGenerator(2, (2,)), "output_shape", "vectors"),
    Case("gan.StyleGenerator", lambda: StyleGenerator(2, (1, 8, 8), w_dim=0), "w_dim"),
    Case("gan.StyleGenerator.forward", lambda: StyleGenerator(2)(torch.zeros(2, 2), mix_z=torch.zeros(2, 2)),
         "mix_from", "missing"),
    Case("gan.StyleGenerator.forward", lambda: StyleGenerator(2)(torch.zeros(2, 2), mix_z=torch.zeros(2, 2),
                                                                 mix_from=4), "mix_from", "4"),
    Case("gan.StyleGenerator.forward", lambda: StyleGenerator(2)(torch.zeros(2, 2), mix_z=torch.zeros(3, 2),
                                                                 mix_from=1), "mix_z", "rows"),
    Case("gan.StyleGenerator.styles", lambda: StyleGenerator(2).styles(torch.zeros(2, 3)), "z"),
    # losses
    Case("gan.discriminator_loss", lambda: discriminator_loss(LOGITS, LOGITS, "bce"), "loss"),
    Case("gan.discriminator_loss", lambda: discriminator_loss(torch.zeros(4, 2), LOGITS), "real_logits"),
    Case("gan.discriminator_loss", lambda: discriminator_loss(LOGITS, [0.0, 1.0]), "fake_logits"),
    Case("gan.generator_loss", lambda: generator_loss(torch.zeros(0)), "fake_logits", "empty"),
    Case("gan.generator_loss", lambda: generator_loss(LOGITS, "kl"), "loss"),
    Case("gan.gradient_penalty", lambda: gradient_penalty(IMG_D, torch.zeros(4, 1, 8, 8), torch.zeros(3, 1, 8, 8)),
         "fake", "mismatched batch"),
    Case("gan.gradient_penalty", lambda: gradient_penalty(IMG_D, torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8),
                                                          eps=torch.zeros(4, 1)), "eps"),
    Case("gan.gradient_penalty", lambda: gradient_penalty(IMG_D, np.zeros((4, 2)), torch.zeros(4, 2)), "real"),
    Case("gan.gradient_penalty", lambda: gradient_penalty(print, torch.zeros(4, 2), torch.zeros(4, 2)), "critic"),
    *[Case("gan.mode_coverage", lambda v=v: mode_coverage(v, np.zeros((3, 2)), 0.1), "samples", str(i))
      for i, v in enumerate(BAD_ARRAYS)],
    Case("gan.mode_coverage", lambda: mode_coverage(np.zeros((5, 2)), np.zeros((3, 3)), 0.1), "centres", "dims"),
    Case("gan.mode_coverage", lambda: mode_coverage(np.zeros((5, 2)), np.zeros((3, 2)), 0.0), "std"),
    Case("gan.mode_coverage", lambda: mode_coverage(np.zeros((5, 2)), np.zeros((3, 2)), 0.1, n_sigma=-1), "n_sigma"),
    Case("gan.check_gradient_penalty", lambda: check_gradient_penalty(3.0), "answer"),
    Case("gan.gradient_penalty_exercise", lambda: gradient_penalty_exercise(3.0), "answer"),
    # the model
    Case("gan.GAN", lambda: GAN(G, IMG_D), "shape mismatch"),
    Case("gan.GAN", lambda: GAN(CG, D), "class mismatch"),
    Case("gan.GAN", lambda: GAN(torch.nn.Linear(2, 2), D), "generator"),
    Case("gan.GAN", lambda: GAN(G, D, loss="ls"), "loss"),
    Case("gan.GAN", lambda: GAN(G, D, gp_weight=-1), "gp_weight"),
    Case("gan.GAN", lambda: GAN(G, D, n_critic=0), "n_critic"),
    Case("gan.GAN", lambda: GAN(G, D, weight_clip=0), "weight_clip"),
    Case("gan.GAN", lambda: GAN(G, D, lr_g="a"), "lr_g"),
    Case("gan.GAN", lambda: GAN(G, D, betas_d=(0.5, 1.0)), "betas_d"),
    Case("gan.GAN", lambda: GAN(G, D, betas_g=0.5), "betas_g"),
    Case("gan.GAN.training_step", lambda: trained_gan().training_step(torch.zeros(4, 3), None), "x", "width"),
    Case("gan.GAN.training_step", lambda: trained_gan(3).training_step((torch.zeros(2, 2), torch.tensor([0, 3])),
                                                                       None), "y", "label out of range"),
    Case("gan.GAN.training_step", lambda: trained_gan(3).training_step(torch.zeros(2, 2), None), "y", "no labels"),
    Case("gan.GAN.loss", lambda: trained_gan().loss((torch.zeros(2, 2), 1, 2)), "batch"),
    Case("gan.GAN.losses", lambda: trained_gan().losses(torch.zeros(2, 1, 8, 8)), "x"),
    *[Case("gan.GAN.sample", lambda v=v: trained_gan().sample(v), "n_samples", repr(v)) for v in BAD_SIZES],
    Case("gan.GAN.sample", lambda: trained_gan().sample(2, random_state=-1), "random_state"),
    Case("gan.GAN.sample", lambda: trained_gan(3).sample(2, y=[0, 3]), "y", "label out of range"),
    Case("gan.GAN.sample", lambda: trained_gan().sample(2, y=[0, 1]), "y", "unconditional"),
    Case("gan.GAN.sample", lambda: GAN(G, D).sample(2), "sample", "untrained"),
    Case("gan.GAN.generate", lambda: trained_gan().generate(np.zeros((2, 3))), "z", "width"),
    Case("gan.GAN.generate", lambda: trained_gan().generate(np.full((2, 2), np.nan)), "z", "nan"),
    Case("gan.CycleGAN", lambda: CycleGAN(0), "dim"),
    Case("gan.CycleGAN", lambda: CycleGAN(2, cycle_weight=-1.0), "cycle_weight"),
    Case("gan.CycleGAN.training_step", lambda: CycleGAN(2).training_step(torch.zeros(3, 2), None), "pair"),
    Case("gan.CycleGAN.loss", lambda: CycleGAN(2).loss((torch.zeros(3, 2), torch.zeros(3, 3))), "b"),
    Case("gan.CycleGAN.translate", lambda: CycleGAN(2).translate(np.zeros((3, 2)), "ac"), "direction"),
    Case("gan.CycleGAN.translate", lambda: CycleGAN(2).translate(np.zeros((3, 3))), "x"),
    Case("layers.apply_spectral_norm", lambda: apply_spectral_norm("D"), "module"),
    # the Trainer's public methods
    Case("train.Trainer", lambda: Trainer(trained_gan(), lr=1e-3), "configure_optimizers", "lr with own optimizers"),
    Case("train.Trainer", lambda: Trainer(torch.nn.Linear(2, 2)), "loss"),
    Case("train.Trainer", lambda: Trainer("model"), "model"),
    Case("train.Trainer", lambda: Trainer(trained_gan(), grad_clip="a"), "grad_clip"),
    Case("train.Trainer", lambda: Trainer(trained_gan(), grad_clip=-1.0), "grad_clip"),
    Case("train.Trainer", lambda: Trainer(trained_gan(), batch_size=np.float64(2.0)), "batch_size"),
    Case("train.Trainer", lambda: Trainer(trained_gan(), ema_decay=1.5), "ema_decay"),
    Case("train.Trainer", lambda: Trainer(trained_gan(), seed="0"), "seed"),
    *[Case("train.Trainer.fit", lambda v=v: trainer().fit(torch.zeros(4, 2), epochs=v), "epochs", repr(v))
      for v in BAD_SIZES],
    *[Case("train.Trainer.fit", lambda v=v: trainer().fit(torch.zeros(4, 2), 1, torch.zeros(4, 2), patience=v),
           "patience", repr(v)) for v in (-1, 0, 0.5, "3")],
    Case("train.Trainer.fit", lambda: trainer().fit(torch.zeros(4, 2), 1, patience=2), "val_data"),
    Case("train.Trainer.fit", lambda: trainer().fit(torch.zeros(4, 2), 1, resume=True), "checkpoint_path"),
    Case("train.Trainer.fit", lambda: trainer().fit(torch.zeros(4, 2), 1, resume="yes"), "resume"),
    Case("train.Trainer.fit", lambda: trainer().fit(torch.full((4, 2), float("nan")), 1), "NaN"),
    Case("train.Trainer.fit", lambda: trainer().fit(torch.zeros(0, 2), 1), "empty"),
    Case("train.Trainer.fit", lambda: trainer().fit("data", 1), "train_data"),
    Case("train.Trainer.fit", lambda: trainer().fit(torch.zeros(4, 3), 1), "x", "shape mismatch"),
    Case("train.Trainer.evaluate", lambda: trainer().evaluate(torch.zeros(4, 2), model=torch.nn.Linear(2, 2)), "loss"),
    Case("train.Trainer.evaluate", lambda: trainer().evaluate("data"), "evaluation data (data)"),
    Case("train.Trainer.load", lambda: trainer().load("/nonexistent/gan.pt"), "checkpoint"),
    Case("train.Trainer.save", lambda: trainer().save(3), "path"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_fails_clearly(case):
    assert_clear_error(case)


def test_the_table_walks_every_covered_callable():
    assert {case.target for case in CASES} == COVERED
