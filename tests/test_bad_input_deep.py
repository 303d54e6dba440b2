"""Bad calls of the deep models (VAE, autoencoders, priors), their layers and the plots fail at the door.

Every case must raise a ``ValueError`` / ``TypeError`` (or ``NotFittedError``, a ``ValueError``) whose
message names the argument. NumPy scalars must be accepted wherever a Python number is
(``test_numpy_scalars_are_accepted``).
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from badinput import BAD_SEEDS, BAD_SIZES, Case, assert_clear_error  # noqa: E402
from torch import nn  # noqa: E402

from genlab import plot  # noqa: E402
from genlab.autoencoder import (  # noqa: E402
    Autoencoder,
    ConvAutoencoder,
    DenoisingAutoencoder,
    article_exercise,
    denormalize_images,
    normalize_images,
)
from genlab.base import NotFittedError  # noqa: E402
from genlab.layers import ConvDecoder, ConvEncoder, eval_mode, make_activation, mlp  # noqa: E402
from genlab.priors import MixturePrior, StandardPrior, VampPrior, make_prior  # noqa: E402
from genlab.vae import CVAE, VAE, KLWarmup, discretized_logistic_log_prob, gaussian_kl, negative_elbo_exercise  # noqa: E402

COVERED = {
    "vae.gaussian_kl", "vae.discretized_logistic_log_prob", "vae.KLWarmup", "vae.VAE", "vae.VAE.loss",
    "vae.VAE.check_images", "vae.VAE.elbo", "vae.VAE.log_importance_bound", "vae.VAE.log_prob",
    "vae.VAE.score_samples", "vae.VAE.encode", "vae.VAE.decode", "vae.VAE.reconstruct", "vae.VAE.sample",
    "vae.VAE.interpolate", "vae.VAE.kl_per_dimension", "vae.VAE.active_units", "vae.CVAE", "vae.CVAE.sample",
    "vae.VAE.decoder_params", "vae.negative_elbo_exercise", "autoencoder.article_exercise",
    "autoencoder.normalize_images", "autoencoder.denormalize_images", "autoencoder.Autoencoder",
    "autoencoder.ConvAutoencoder", "autoencoder.DenoisingAutoencoder", "autoencoder.Autoencoder.encode",
    "autoencoder.Autoencoder.decode", "autoencoder.Autoencoder.forward", "autoencoder.Autoencoder.loss",
    "autoencoder.Autoencoder.reconstruct", "autoencoder.Autoencoder.reconstruction_error",
    "autoencoder.Autoencoder.sample", "autoencoder.DenoisingAutoencoder.corrupt",
    "autoencoder.DenoisingAutoencoder.loss",
    "priors.StandardPrior", "priors.MixturePrior", "priors.VampPrior", "priors.make_prior",
    "priors.StandardPrior.log_prob", "priors.StandardPrior.sample", "priors.MixturePrior.log_prob",
    "priors.MixturePrior.sample", "priors.VampPrior.log_prob", "priors.VampPrior.sample",
    "plot.image_grid", "plot.scatter_2d", "plot.density_2d", "plot.training_curves",
    "layers.eval_mode", "layers.make_activation", "layers.mlp", "layers.ConvEncoder", "layers.ConvEncoder.forward",
    "layers.ConvDecoder", "layers.ConvDecoder.forward",
}

# Small models, "trained" by one counted step where a call needs a trained model.
torch.manual_seed(0)
VAE_ = VAE(latent_dim=2, hidden=8)
VAE_.mark_updated()
CVAE_ = CVAE(latent_dim=2, hidden=8)
CVAE_.mark_updated()
BERNOULLI = VAE((1, 28, 28), latent_dim=2, hidden=8, likelihood="bernoulli")
AE = Autoencoder(image_size=8, hidden=(8,), latent_dim=3)
AE.mark_updated()
DAE = DenoisingAutoencoder(Autoencoder(image_size=8, hidden=(8,), latent_dim=3), level=0.3)
STANDARD, MIXTURE = StandardPrior(2), MixturePrior(2, 3)
VAMP = make_prior("vamp", 2, n_components=3, encoder=VAE_, image_shape=(1, 8, 8))
LEVELS = torch.randint(0, 17, (4, 1, 8, 8)).float()
SIGNED = torch.rand(4, 1, 8, 8) * 2 - 1
BAD_IMAGES = [
    ("nan", torch.full((2, 1, 8, 8), float("nan"))), ("shape", torch.zeros(2, 1, 7, 7)),
    ("3-D", torch.zeros(2, 8, 8)), ("empty", torch.zeros(0, 1, 8, 8)), ("string", "images"),
    ("object", np.array([["a"]])), ("complex", torch.zeros(2, 1, 8, 8, dtype=torch.complex64)),
]


def _sizes(target, call, argument):
    return [Case(target, lambda v=v: call(v), argument, repr(v)) for v in BAD_SIZES]


CASES = (
    # ------------------------------------------------------------------ vae: constructors and closed forms
    [Case("vae.VAE", lambda: VAE(image_shape=(1, 8.7, 8.7)), "image_shape", "8.7"),
     Case("vae.VAE", lambda: VAE(image_shape=(3, 8, 8)), "image_shape", "3 channels"),
     Case("vae.VAE", lambda: VAE(image_shape="1x8x8"), "image_shape", "string"),
     Case("vae.VAE", lambda: VAE(image_shape=(1, 8)), "image_shape", "length"),
     Case("vae.VAE", lambda: VAE(latent_dim="4"), "latent_dim", "string"),
     Case("vae.VAE", lambda: VAE(beta="1"), "beta", "string"),
     Case("vae.VAE", lambda: VAE(beta=-1.0), "beta"),
     Case("vae.VAE", lambda: VAE(free_bits=float("nan")), "free_bits"),
     Case("vae.VAE", lambda: VAE(k=0), "k"),
     Case("vae.VAE", lambda: VAE(input_dropout=1.0), "input_dropout"),
     Case("vae.VAE", lambda: VAE(decoder_dropout="0.1"), "decoder_dropout"),
     Case("vae.VAE", lambda: VAE(likelihood="gaussian"), "likelihood"),
     Case("vae.VAE", lambda: VAE(prior="flow"), "prior"),
     Case("vae.VAE", lambda: VAE(prior="mog", n_components=0), "n_components"),
     Case("vae.VAE", lambda: VAE(n_levels=1.5), "n_levels"),
     Case("vae.VAE", lambda: VAE(hidden=True), "hidden"),
     Case("vae.VAE", lambda: VAE(ar_channels=0, decoder="causal_conv"), "ar_channels"),
     Case("vae.CVAE", lambda: CVAE(n_classes=0), "n_classes"),
     Case("vae.CVAE", lambda: CVAE(prior="vamp"), "VampPrior"),
     Case("vae.KLWarmup", lambda: KLWarmup(steps=2.5), "steps"),
     Case("vae.KLWarmup", lambda: KLWarmup(steps=10, end=-1.0), "end"),
     Case("vae.KLWarmup", lambda: KLWarmup(steps=10, start="0"), "start"),
     Case("vae.gaussian_kl", lambda: gaussian_kl(torch.zeros(2), torch.zeros(3)), "logvar"),
     Case("vae.gaussian_kl", lambda: gaussian_kl([0.0], torch.zeros(1)), "mu"),
     Case("vae.discretized_logistic_log_prob",
          lambda: discretized_logistic_log_prob(torch.zeros(2), torch.zeros(2), torch.zeros(2), 1), "n_levels")]
    # ------------------------------------------------------------------ vae: images, labels, latents
    + [Case("vae.VAE.loss", lambda x=x: VAE_.loss(x), "images", label) for label, x in BAD_IMAGES]
    + [Case("vae.VAE.loss", lambda: VAE_.loss(LEVELS + 0.5), "images", "non-integer levels"),
       Case("vae.VAE.loss", lambda: VAE_.loss(LEVELS + 17), "images", "level 17+"),
       Case("vae.VAE.loss", lambda: VAE_.loss((LEVELS, LEVELS, LEVELS)), "batch", "3-tuple"),
       Case("vae.VAE.loss", lambda: BERNOULLI.loss(torch.full((2, 1, 28, 28), 2.0)), "images", "bernoulli range"),
       Case("vae.VAE.check_images", lambda: VAE_.check_images(torch.zeros(2, 63)), "images", "flat 63"),
       Case("vae.VAE.elbo", lambda: VAE_.elbo(LEVELS, batch_size=0), "batch_size"),
       Case("vae.VAE.elbo", lambda: VAE_.elbo(LEVELS, y=[1, 2, 3, 4]), "y", "labels for an unconditional VAE"),
       Case("vae.VAE.log_importance_bound", lambda: VAE_.log_importance_bound(LEVELS, k="5"), "k"),
       Case("vae.VAE.log_importance_bound", lambda: VAE_.log_importance_bound(LEVELS, sample_chunk=0),
            "sample_chunk"),
       Case("vae.VAE.log_prob", lambda: VAE_.log_prob(LEVELS, k=0), "k"),
       Case("vae.VAE.log_prob", lambda: VAE(latent_dim=2, hidden=8).log_prob(LEVELS), "log_prob", "untrained"),
       Case("vae.VAE.log_prob", lambda: VAE_.log_prob(torch.zeros(2, 1, 28, 28)), "images", "wrong size"),
       Case("vae.VAE.score_samples", lambda: VAE_.score_samples(LEVELS, k=-1), "k"),
       Case("vae.VAE.encode", lambda: VAE_.encode("x"), "images"),
       Case("vae.VAE.decode", lambda: VAE_.decode(torch.zeros(2, 3)), "z", "wrong width"),
       Case("vae.VAE.decode", lambda: VAE_.decode(torch.full((2, 2), float("nan"))), "z", "nan"),
       Case("vae.VAE.decode", lambda: VAE_.decode(torch.zeros(2)), "z", "1-D"),
       Case("vae.VAE.decode", lambda: VAE_.decode(torch.zeros(2, 2), sample="yes"), "sample"),
       Case("vae.VAE.decode", lambda: VAE_.decode(torch.zeros(2, 2), sample=True, random_state=-1), "random_state"),
       Case("vae.VAE.reconstruct", lambda: VAE_.reconstruct(torch.zeros(2, 1, 8)), "images"),
       Case("vae.VAE.sample", lambda: VAE(latent_dim=2, hidden=8).sample(2), "sample", "untrained"),
       Case("vae.VAE.sample", lambda: VAE_.sample(2, y=3), "y", "labels for an unconditional VAE"),
       Case("vae.CVAE.sample", lambda: CVAE_.sample(2), "class"),
       Case("vae.CVAE.sample", lambda: CVAE_.sample(2, y=10), "y", "label out of range"),
       Case("vae.CVAE.sample", lambda: CVAE_.sample(2, y=-1), "y", "negative label"),
       Case("vae.CVAE.sample", lambda: CVAE_.sample(2, y=[1, 2, 3]), "y", "3 labels for 2 samples"),
       Case("vae.CVAE.sample", lambda: CVAE_.sample(2, y=[0.5, 1.0]), "y", "non-integer labels"),
       Case("vae.VAE.loss", lambda: CVAE_.loss((LEVELS, torch.full((4,), 10))), "y", "CVAE label 10"),
       Case("vae.VAE.loss", lambda: CVAE_.loss(LEVELS), "labels y", "CVAE without labels"),
       Case("vae.VAE.interpolate", lambda: VAE_.interpolate(LEVELS[0], LEVELS[1], steps=1), "steps"),
       Case("vae.VAE.interpolate", lambda: VAE_.interpolate(LEVELS[0], torch.zeros(1, 7, 7), steps=3), "x_end"),
       Case("vae.VAE.interpolate", lambda: VAE_.interpolate("a", LEVELS[1]), "x_start"),
       Case("vae.VAE.interpolate", lambda: VAE_.interpolate([["a"] * 8] * 8, LEVELS[1]), "x_start", "strings"),
       Case("vae.VAE.interpolate", lambda: CVAE_.interpolate(LEVELS[0], LEVELS[1], y=[1, 2]), "y"),
       Case("vae.VAE.kl_per_dimension", lambda: VAE_.kl_per_dimension(torch.zeros(2, 2, 8, 8)), "images"),
       Case("vae.VAE.active_units", lambda: VAE_.active_units(LEVELS[:1]), "x", "one image"),
       Case("vae.VAE.active_units", lambda: VAE_.active_units(LEVELS, threshold="0.1"), "threshold"),
       Case("vae.VAE.decoder_params", lambda: VAE_.decoder_params(torch.zeros(2, 5)), "z"),
       Case("vae.VAE.decoder_params", lambda: VAE(latent_dim=2, hidden=8, decoder="made").decoder_params(
           torch.zeros(2, 2)), "decoder_params", "autoregressive"),
       Case("vae.negative_elbo_exercise", lambda: negative_elbo_exercise(..., CVAE_, LEVELS), "model"),
       Case("vae.negative_elbo_exercise", lambda: negative_elbo_exercise(..., VAE_, LEVELS, seed=-1), "seed"),
       Case("vae.negative_elbo_exercise", lambda: negative_elbo_exercise(..., VAE_, LEVELS + 0.5), "x"),
       Case("autoencoder.article_exercise", lambda: article_exercise(..., seed="0"), "seed")]
    + _sizes("vae.VAE.sample", lambda v: VAE_.sample(v), "n_samples")
    + [Case("vae.VAE.sample", lambda v=v: VAE_.sample(2, random_state=v), "random_state", repr(v)) for v in BAD_SEEDS]
    # ------------------------------------------------------------------ autoencoder
    + [Case("autoencoder.normalize_images", lambda x=x: normalize_images(x), "images", label) for label, x in BAD_IMAGES
       if label != "shape"]
    + [Case("autoencoder.normalize_images", lambda: normalize_images(torch.full((1, 1, 2, 2), 255.0)), "images",
            "range"),
       Case("autoencoder.denormalize_images", lambda: denormalize_images(torch.full((1, 1, 2, 2), 3.0)), "images"),
       Case("autoencoder.denormalize_images", lambda: denormalize_images("x"), "images"),
       Case("autoencoder.Autoencoder", lambda: Autoencoder(image_size=28.0), "image_size"),
       Case("autoencoder.Autoencoder", lambda: Autoencoder(latent_dim="12"), "latent_dim"),
       Case("autoencoder.Autoencoder", lambda: Autoencoder(hidden=(128, 0)), "hidden"),
       Case("autoencoder.Autoencoder", lambda: Autoencoder(hidden=128), "hidden", "int"),
       Case("autoencoder.Autoencoder", lambda: Autoencoder(hidden=(128.5,)), "hidden", "float"),
       Case("autoencoder.Autoencoder", lambda: Autoencoder(activation="swish"), "activation"),
       Case("autoencoder.ConvAutoencoder", lambda: ConvAutoencoder(image_size=16), "image_size"),
       Case("autoencoder.ConvAutoencoder", lambda: ConvAutoencoder(channels=0), "channels"),
       Case("autoencoder.DenoisingAutoencoder", lambda: DenoisingAutoencoder(nn.Linear(2, 2)), "base"),
       Case("autoencoder.DenoisingAutoencoder", lambda: DenoisingAutoencoder(AE, noise="salt"), "noise"),
       Case("autoencoder.DenoisingAutoencoder", lambda: DenoisingAutoencoder(AE, level="0.5"), "level"),
       Case("autoencoder.DenoisingAutoencoder", lambda: DenoisingAutoencoder(AE, level=float("inf")), "level"),
       Case("autoencoder.DenoisingAutoencoder", lambda: DenoisingAutoencoder(AE, "masking", 1.0), "level")]
    + [Case("autoencoder.Autoencoder.encode", lambda x=x: AE.encode(x), "images", label) for label, x in BAD_IMAGES]
    + [Case("autoencoder.Autoencoder.decode", lambda: AE.decode(torch.zeros(2, 5)), "z", "width"),
       Case("autoencoder.Autoencoder.decode", lambda: AE.decode([["a"] * 3]), "z", "strings"),
       Case("autoencoder.Autoencoder.decode", lambda: AE.decode(torch.full((2, 3), float("inf"))), "z", "inf"),
       Case("autoencoder.Autoencoder.forward", lambda: AE(torch.zeros(2, 1, 28, 28)), "images", "wrong size"),
       Case("autoencoder.Autoencoder.loss", lambda: AE.loss(SIGNED * 255), "images", "range"),
       Case("autoencoder.Autoencoder.loss", lambda: AE.loss(()), "batch", "empty tuple"),
       Case("autoencoder.Autoencoder.reconstruct", lambda: AE.reconstruct(SIGNED, batch_size=0), "batch_size"),
       Case("autoencoder.Autoencoder.reconstruct", lambda: AE.reconstruct(SIGNED, batch_size=np.float32(2)),
            "batch_size", "float32"),
       Case("autoencoder.Autoencoder.reconstruction_error", lambda: AE.reconstruction_error(SIGNED * 3), "images"),
       Case("autoencoder.Autoencoder.sample", lambda: Autoencoder(image_size=8).sample(2), "sample", "untrained"),
       Case("autoencoder.DenoisingAutoencoder.corrupt", lambda: DAE.corrupt(SIGNED, random_state="a"),
            "random_state"),
       Case("autoencoder.DenoisingAutoencoder.corrupt", lambda: DAE.corrupt(SIGNED * 3), "images"),
       Case("autoencoder.DenoisingAutoencoder.loss", lambda: DAE.loss(torch.zeros(2, 1, 28, 28)), "images")]
    + _sizes("autoencoder.Autoencoder.sample", lambda v: AE.sample(v), "n_samples")
    + [Case("autoencoder.Autoencoder.sample", lambda v=v: AE.sample(2, random_state=v), "random_state", repr(v))
       for v in BAD_SEEDS]
    # ------------------------------------------------------------------ priors
    + [Case("priors.make_prior", lambda: make_prior("flow", 2), "prior"),
       Case("priors.make_prior", lambda: make_prior("standard", 0), "latent_dim"),
       Case("priors.make_prior", lambda: make_prior("mog", 2, n_components=2.5), "n_components"),
       Case("priors.make_prior", lambda: make_prior("vamp", 2), "encoder"),
       Case("priors.StandardPrior", lambda: StandardPrior("2"), "latent_dim"),
       Case("priors.MixturePrior", lambda: MixturePrior(2, 0), "n_components"),
       Case("priors.VampPrior", lambda: VampPrior(nn.Linear(2, 2), 3, (1, 8, 8), 17), "owner"),
       Case("priors.VampPrior", lambda: VampPrior(VAE_, 3, (1, 8.5, 8), 17), "image_shape"),
       Case("priors.StandardPrior.log_prob", lambda: STANDARD.log_prob(torch.zeros(3, 5)), "z"),
       Case("priors.MixturePrior.log_prob", lambda: MIXTURE.log_prob("z"), "z"),
       Case("priors.VampPrior.log_prob", lambda: VAMP.log_prob(torch.zeros(3)), "z"),
       Case("priors.StandardPrior.sample", lambda: STANDARD.sample(2, random_state="a"), "random_state"),
       Case("priors.MixturePrior.sample", lambda: MIXTURE.sample(-2), "n_samples"),
       Case("priors.VampPrior.sample", lambda: VAMP.sample(2.0), "n_samples")]
    # ------------------------------------------------------------------ plot
    + [Case("plot.image_grid", lambda: plot.image_grid(torch.rand(2, 3, 8, 8)), "channels"),
       Case("plot.image_grid", lambda: plot.image_grid(torch.rand(8, 8)), "images", "2-D"),
       Case("plot.image_grid", lambda: plot.image_grid("x"), "images", "string"),
       Case("plot.image_grid", lambda: plot.image_grid(torch.full((2, 8, 8), float("nan"))), "images", "nan"),
       Case("plot.image_grid", lambda: plot.image_grid(torch.rand(2, 8, 8), nrow=0), "nrow"),
       Case("plot.image_grid", lambda: plot.image_grid(torch.rand(2, 8, 8), nrow="2"), "nrow", "string"),
       Case("plot.image_grid", lambda: plot.image_grid(torch.rand(2, 8, 8), labels=3), "labels"),
       Case("plot.scatter_2d", lambda: plot.scatter_2d(np.random.rand(5, 3)), "(n, 2)"),
       Case("plot.scatter_2d", lambda: plot.scatter_2d([["a", "b"]]), "points"),
       Case("plot.scatter_2d", lambda: plot.scatter_2d(np.random.rand(5, 2), alpha=2.0), "alpha"),
       Case("plot.density_2d", lambda: plot.density_2d("f"), "log_density"),
       Case("plot.density_2d", lambda: plot.density_2d(lambda g: g[:, 0], resolution=1), "resolution"),
       Case("plot.density_2d", lambda: plot.density_2d(lambda g: g[:, 0], xlim=(3, -3)), "xlim"),
       Case("plot.density_2d", lambda: plot.density_2d(lambda g: g[:, 0], ylim="ab"), "ylim"),
       Case("plot.density_2d", lambda: plot.density_2d(lambda g: g[:5, 0], resolution=5), "log_density"),
       Case("plot.training_curves", lambda: plot.training_curves({"train_loss": []}), "train_loss"),
       Case("plot.training_curves", lambda: plot.training_curves([1.0, 2.0]), "history")]
    # ------------------------------------------------------------------ layers (the pre-existing parts)
    + [Case("layers.eval_mode", lambda: eval_mode("model").__enter__(), "modules"),
       Case("layers.make_activation", lambda: make_activation("swishy"), "activation"),
       Case("layers.make_activation", lambda: make_activation(["relu"]), "activation", "list"),
       Case("layers.mlp", lambda: mlp([4]), "sizes"),
       Case("layers.mlp", lambda: mlp([4, 2.5]), "sizes[1]"),
       Case("layers.mlp", lambda: mlp([4, "2"]), "sizes[1]", "string"),
       Case("layers.mlp", lambda: mlp(4), "sizes", "int"),
       Case("layers.mlp", lambda: mlp([4, 2], activation="swishy"), "activation"),
       Case("layers.mlp", lambda: mlp([4, 2], dropout=1.0), "dropout"),
       Case("layers.mlp", lambda: mlp([4, 2], dropout="0.1"), "dropout", "string"),
       Case("layers.ConvEncoder", lambda: ConvEncoder(32, 4), "image_size"),
       Case("layers.ConvEncoder", lambda: ConvEncoder(8.0, 4), "image_size", "float"),
       Case("layers.ConvEncoder", lambda: ConvEncoder(8, 0), "out_features"),
       Case("layers.ConvEncoder.forward", lambda: ConvEncoder(8, 4)(torch.zeros(2, 1, 9, 8)), "images"),
       Case("layers.ConvEncoder.forward", lambda: ConvEncoder(8, 4)(np.zeros((2, 1, 8, 8))), "x"),
       Case("layers.ConvDecoder", lambda: ConvDecoder(0, 8), "in_features"),
       Case("layers.ConvDecoder", lambda: ConvDecoder(4, 8, out_channels="1"), "out_channels"),
       Case("layers.ConvDecoder.forward", lambda: ConvDecoder(4, 8)(torch.zeros(2, 5)), "z")]
)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case):
    try:
        assert_clear_error(case)
    finally:
        plt.close("all")


def test_untrained_models_refuse_the_same_way():
    for call in (lambda: VAE(latent_dim=2, hidden=8).sample(1), lambda: VAE(latent_dim=2, hidden=8).log_prob(LEVELS),
                 lambda: Autoencoder(image_size=8).sample(1), lambda: ConvAutoencoder(image_size=8).sample(1)):
        with pytest.raises(NotFittedError, match="needs a trained"):
            call()


def test_numpy_scalars_are_accepted():
    """np.int64 / np.float32 work wherever a Python number does (they were rejected before)."""
    i, f = np.int64, np.float32
    model = VAE(image_shape=(i(1), i(8), i(8)), latent_dim=i(2), hidden=i(8), n_layers=i(1), beta=f(0.5),
                free_bits=f(0.1), k=i(1), input_dropout=f(0.1), n_levels=i(17))
    model.mark_updated()
    assert model.sample(i(2), random_state=i(3)).shape == (2, 1, 8, 8)
    assert model.log_prob(LEVELS, k=i(3), batch_size=i(2)).shape == (4,)
    assert model.interpolate(LEVELS[0], LEVELS[1], steps=i(3)).shape == (3, 1, 8, 8)
    assert model.active_units(LEVELS, threshold=f(0.01)) >= 0
    assert CVAE_.sample(i(2), y=i(3)).shape == (2, 1, 8, 8)
    assert KLWarmup(steps=i(5), end=f(2.0)).steps == 5
    ae = Autoencoder(image_size=i(8), hidden=(i(8),), latent_dim=i(3))
    ae.mark_updated()
    assert ae.sample(i(2), random_state=i(0)).shape == (2, 1, 8, 8)
    assert ae.reconstruct(SIGNED, batch_size=i(2)).shape == SIGNED.shape
    assert ConvAutoencoder(image_size=i(8), latent_dim=i(2), channels=i(4)).encode(SIGNED).shape == (4, 2)
    assert DenoisingAutoencoder(ae, level=f(0.2)).level == pytest.approx(0.2)
    assert mlp([i(4), i(2)], dropout=f(0.1))[0].out_features == 2
    assert ConvDecoder(i(3), i(8), out_channels=i(2), channels=i(4))(torch.zeros(1, 3)).shape == (1, 2, 8, 8)
    assert make_prior("mog", i(2), n_components=i(3)).sample(i(2), random_state=i(0)).shape == (2, 2)
    plot.image_grid(torch.rand(4, 8, 8), nrow=i(2))
    plot.scatter_2d(np.random.rand(5, 2), s=f(3.0), alpha=f(0.5))
    plot.density_2d(lambda g: -(g ** 2).sum(1), resolution=i(5))
    plt.close("all")


def test_eval_mode_restores_and_checkpoints_keep_n_updates():
    model = VAE(latent_dim=2, hidden=8)
    model.train()
    model.encode(LEVELS)
    assert model.training
    model.eval()
    model.mark_updated()
    model.sample(2, random_state=0)
    assert not model.training
    # Older checkpoints stored the step counter under the same buffer name: they load unchanged.
    state = model.state_dict()
    assert "n_updates" in state and int(state["n_updates"]) == 1
    fresh = VAE(latent_dim=2, hidden=8)
    fresh.load_state_dict(state)
    assert fresh.fitted
