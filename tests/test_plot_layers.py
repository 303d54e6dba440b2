import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from genlab import plot  # noqa: E402
from genlab.layers import ConvDecoder, ConvEncoder, mlp  # noqa: E402
from genlab.train import History  # noqa: E402


def test_image_grid_titles_and_shapes():
    ax = plot.image_grid(torch.rand(10, 1, 8, 8), nrow=5, title="digits", labels=list(range(10)))
    assert ax.get_title() == "digits"
    plt.close("all")
    with pytest.raises(ValueError, match="channels"):
        plot.image_grid(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="expects"):
        plot.image_grid(torch.rand(8, 8))


def test_scatter_and_density_are_labelled():
    ax = plot.scatter_2d(np.random.rand(20, 2), title="moons")
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "moons"
    ax = plot.density_2d(lambda g: -0.5 * (g ** 2).sum(1), title="gaussian", resolution=20)
    assert ax.get_title() == "gaussian"
    plt.close("all")
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot.scatter_2d(np.random.rand(20, 3))


def test_training_curves():
    history = History(train_loss=[3.0, 2.0], val_loss=[3.5, 2.5])
    ax = plot.training_curves(history)
    assert ax.get_xlabel() == "epoch" and len(ax.lines) == 2
    plt.close("all")
    with pytest.raises(ValueError, match="train_loss"):
        plot.training_curves({"train_loss": []})


@pytest.mark.parametrize("size", [8, 28])
def test_conv_blocks_round_trip_shapes(size):
    encoder, decoder = ConvEncoder(size, 6), ConvDecoder(6, size, out_channels=17)
    codes = encoder(torch.randn(3, 1, size, size))
    assert codes.shape == (3, 6)
    assert decoder(codes).shape == (3, 17, size, size)
    with pytest.raises(ValueError, match="expected images"):
        encoder(torch.randn(3, 1, size + 1, size))


def test_layer_bad_input():
    with pytest.raises(ValueError, match="8x8 or 28x28"):
        ConvEncoder(32, 4)
    with pytest.raises(ValueError, match="in_features"):
        ConvDecoder(0, 8)
    with pytest.raises(ValueError, match="two positive"):
        mlp([4])
    with pytest.raises(ValueError, match="unknown activation"):
        mlp([4, 2], activation="swishy")
    with pytest.raises(ValueError, match="dropout"):
        mlp([4, 2], dropout=1.0)
    net = mlp([4, 8, 2], final_activation="tanh", dropout=0.1)
    assert net(torch.randn(5, 4)).abs().max() <= 1
