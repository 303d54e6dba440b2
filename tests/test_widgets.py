"""genlab.widgets: the static fallback is always drawn; the widgets work when asked for."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from genlab import widgets  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_no_kernel_means_static_only():
    assert not widgets.widgets_available()  # pytest runs without an IPython kernel


def test_slider_figure_static_panels_spread_over_values():
    drawn = []

    def draw(value, ax):
        drawn.append(value)
        ax.plot([0, 1], [0, value])
        ax.set(xlabel="x", ylabel="y")

    result = widgets.slider_figure(draw, list(range(10)), label="iteration", n_static=4, interactive=False)
    assert result.widget is None
    assert drawn == [0, 3, 6, 9]  # first and last always included
    titles = [ax.get_title() for ax in result.figure.axes]
    assert titles == ["iteration = 0", "iteration = 3", "iteration = 6", "iteration = 9"]


def test_slider_figure_explicit_static_values_and_widget_redraws():
    seen = []
    result = widgets.slider_figure(lambda v, ax: seen.append(v), [0.1, 0.5, 1.0], label="bandwidth",
                                   static_values=[0.5], interactive=True)
    assert len(result.figure.axes) == 1 and seen[0] == 0.5
    slider = result.widget.children[0]
    slider.value = 1.0  # moving the slider redraws the live panel
    assert seen[-1] == 1.0


def test_image_scrubber_shapes():
    frames = torch.rand(20, 6, 1, 8, 8)
    result = widgets.image_scrubber(frames, steps=list(range(19, -1, -1)), label="t", n_static=3, interactive=False)
    assert [ax.get_title() for ax in result.figure.axes] == ["t = 19", "t = 9", "t = 0"]
    colour = widgets.image_scrubber(np.random.rand(2, 3, 3, 5, 5), interactive=False)
    assert len(colour.figure.axes) == 2


def test_turing_test_key_and_shuffle():
    real = torch.zeros(10, 1, 8, 8)
    fake = torch.ones(10, 1, 8, 8)
    test = widgets.turing_test(real, fake, n_each=6, ncols=4, random_state=0, interactive=False)
    assert test.images.shape == (12, 1, 8, 8) and test.is_real.sum() == 6
    # The key matches the images: real ones are the zeros.
    assert np.array_equal(test.images.reshape(12, -1).max(1) == 0, test.is_real)
    assert not np.array_equal(test.is_real, np.arange(12) < 6)  # shuffled
    again = widgets.turing_test(real, fake, n_each=6, random_state=0, interactive=False)
    assert np.array_equal(again.is_real, test.is_real)


def test_turing_test_widget_scores():
    test = widgets.turing_test(torch.zeros(4, 8, 8), torch.ones(4, 8, 8), n_each=2, interactive=True)
    grid, button, result = test.widget.children
    for toggle, real in zip(grid.children, test.is_real):
        toggle.value = "real" if real else "generated"
    button.click()
    assert "4 of 4" in result.value
