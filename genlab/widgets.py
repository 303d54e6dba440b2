"""Interactive figures that teach, each with a static fallback.

In JupyterLab a slider (or buttons) lets the learner move through EM iterations, bandwidths or diffusion
steps. The published book and nbval have no live kernel behind a widget, so every helper here *also*
draws a static matplotlib figure: small multiples at a few representative values. That figure is what the
book shows; the widget is the bonus for whoever runs the notebook.

* :func:`slider_figure`: the general tool: ``draw(value, ax)`` for each value of a parameter.
* :func:`image_scrubber`: scrub through a sequence of image batches (diffusion steps, training epochs).
* :func:`turing_test`: a visual Turing test: real and generated images shuffled, the learner guesses.

Interactivity is on when ipywidgets is installed and an IPython kernel is running (``interactive=None``),
and can be forced off with ``interactive=False`` (tests, scripts) or ``GENLAB_WIDGETS=0``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch

from .validation import check_bool, check_int, check_random_state

# The helpers; their result records (InteractiveFigure, TuringTest) and widgets_available() take no input.
__all__ = ["slider_figure", "image_scrubber", "turing_test"]


class InteractiveFigure(NamedTuple):
    """What a helper made: the static ``figure`` (always) and the ``widget`` (None without a kernel)."""

    figure: plt.Figure
    widget: Any


class TuringTest(NamedTuple):
    """A visual Turing test: the shuffled ``images``, which of them are real, the static figure, the widget."""

    images: np.ndarray
    is_real: np.ndarray
    figure: plt.Figure
    widget: Any


def widgets_available() -> bool:
    """True when ipywidgets can be shown: the package is installed and an IPython kernel is running."""
    if os.environ.get("GENLAB_WIDGETS", "1") == "0":
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show_now(figure: plt.Figure) -> None:
    """Display ``figure`` at this point of the output, and only it (a later ``plt.show`` will not repeat it)."""
    from IPython.display import display

    display(figure)
    plt.close(figure)


def _check_interactive(interactive: Any) -> bool:
    return widgets_available() if interactive is None else check_bool(interactive, "interactive")


def _check_values(values: Any, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, range, torch.Tensor)):
        raise TypeError(f"{name} must be a sequence of values (a list, a range or an array), got {values!r}")
    values = list(values.tolist() if isinstance(values, (np.ndarray, torch.Tensor)) else values)
    if not values:
        raise ValueError(f"{name} is empty: give at least one value")
    return values


def _spread(values: list, count: int) -> list:
    """``count`` values spread evenly over ``values``, always including the first and the last."""
    if len(values) <= count:
        return list(values)
    positions = np.linspace(0, len(values) - 1, count).round().astype(int)
    return [values[i] for i in dict.fromkeys(positions.tolist())]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def slider_figure(draw: Callable[[Any, plt.Axes], Any], values: Sequence, *, label: str = "value",
                  static_values: Sequence | None = None, n_static: int = 4, title: str | None = None,
                  panel_size: tuple[float, float] = (3.2, 2.8), interactive: bool | None = None) -> InteractiveFigure:
    """Draw ``draw(value, ax)`` for several values: a static row of panels, plus a slider when live.

    Args:
        draw: draws one panel for one value on the axes it is given (titles are added here).
        values: the values the slider moves through (EM iterations, bandwidths, steps, ...).
        label: the parameter's name, shown on the slider and in each panel's title.
        static_values: the values drawn in the static figure (default: ``n_static`` spread over ``values``,
            first and last included). Each must be one of ``values``.
        n_static: how many panels the static figure has when ``static_values`` is not given.
        title: the static figure's overall title.
        panel_size: (width, height) of one panel in inches.
        interactive: show the slider (None: when ipywidgets and a kernel are available).

    Returns:
        :class:`InteractiveFigure` with the static figure and the widget (or None). With the widget, the static
        figure is displayed (and closed) before it, so the notebook's output holds both; without it, the figure
        is left open for the caller to show or save.
    """
    if not callable(draw):
        raise TypeError(f"draw must be a function draw(value, ax), got {draw!r}")
    values = _check_values(values, "values")
    if not isinstance(label, str) or not label:
        raise TypeError(f"label must be a non-empty string, got {label!r}")
    n_static = check_int(n_static, "n_static", minimum=1, maximum=12)
    if static_values is None:
        static_values = _spread(values, n_static)
    else:
        static_values = _check_values(static_values, "static_values")
        missing = [v for v in static_values if v not in values]
        if missing:
            raise ValueError(f"static_values must be among values; not found: {missing[:3]}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {title!r}")
    if (not isinstance(panel_size, (tuple, list)) or len(panel_size) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in panel_size)):
        raise ValueError(f"panel_size must be (width, height) in inches, both > 0, got {panel_size!r}")
    interactive = _check_interactive(interactive)

    ncols = len(static_values)
    figure, axes = plt.subplots(1, ncols, figsize=(panel_size[0] * ncols, panel_size[1]), squeeze=False)
    for ax, value in zip(axes[0], static_values):
        draw(value, ax)
        ax.set_title(f"{label} = {_format(value)}" + (f"\n{ax.get_title()}" if ax.get_title() else ""), fontsize=10)
    if title:
        figure.suptitle(title)
    figure.tight_layout()

    widget = None
    if interactive:
        import ipywidgets
        from IPython.display import display

        _show_now(figure)
        slider = ipywidgets.SelectionSlider(options=[(_format(v), v) for v in values], value=values[0],
                                            description=label, continuous_update=False,
                                            layout=ipywidgets.Layout(width="60%"))
        output = ipywidgets.Output()

        def redraw(value: Any) -> None:
            with output:
                output.clear_output(wait=True)
                fig, ax = plt.subplots(figsize=(panel_size[0] * 1.6, panel_size[1] * 1.6))
                draw(value, ax)
                ax.set_title(f"{label} = {_format(value)}" + (f"\n{ax.get_title()}" if ax.get_title() else ""))
                _show_now(fig)

        slider.observe(lambda change: redraw(change["new"]), names="value")
        widget = ipywidgets.VBox([slider, output])
        redraw(values[0])
        display(widget)
    return InteractiveFigure(figure, widget)


def _as_image_batches(frames: Any, name: str) -> np.ndarray:
    array = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames, dtype=float)
    if array.ndim == 4:  # (T, n, H, W): one channel
        array = array[:, :, None]
    if array.ndim != 5 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise ValueError(f"{name} must have shape (steps, n, C, H, W) or (steps, n, H, W) with C in (1, 3), "
                         f"got {tuple(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _tile(images: np.ndarray, ncols: int) -> np.ndarray:
    """(n, C, H, W) -> one (rows*H, cols*W[, 3]) image with a 1-pixel gap."""
    n, channels, height, width = images.shape
    rows = math.ceil(n / ncols)
    canvas = np.full((rows * (height + 1) + 1, ncols * (width + 1) + 1, channels), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[1 + r * (height + 1):1 + r * (height + 1) + height, 1 + c * (width + 1):1 + c * (width + 1) + width] = \
            image.transpose(1, 2, 0)
    return canvas[..., 0] if channels == 1 else canvas


def _show_tile(ax: plt.Axes, tile: np.ndarray, vmin: float, vmax: float) -> None:
    if tile.ndim == 2:
        ax.imshow(np.ma.masked_invalid(tile), cmap="gray_r", vmin=vmin, vmax=vmax)
    else:
        ax.imshow(np.nan_to_num(np.clip((tile - vmin) / (vmax - vmin or 1.0), 0, 1), nan=1.0))
    ax.set_xticks([])
    ax.set_yticks([])


def image_scrubber(frames: Any, steps: Sequence | None = None, *, label: str = "step", n_static: int = 5,
                   ncols: int = 4, title: str | None = None, interactive: bool | None = None) -> InteractiveFigure:
    """Scrub through batches of images, one batch per step (diffusion's reverse process, training epochs).

    Args:
        frames: ``(steps, n, C, H, W)`` or ``(steps, n, H, W)`` images (array or tensor).
        steps: the label of each frame (default ``0, 1, ...``), e.g. the diffusion time ``t``.
        label, n_static, title, interactive: as in :func:`slider_figure`.
        ncols: images per row inside one panel.
    """
    frames = _as_image_batches(frames, "frames")
    steps = list(range(len(frames))) if steps is None else _check_values(steps, "steps")
    if len(steps) != len(frames):
        raise ValueError(f"steps has {len(steps)} labels for {len(frames)} frames")
    ncols = check_int(ncols, "ncols", minimum=1)
    vmin, vmax = float(frames.min()), float(frames.max())
    index = {step: i for i, step in enumerate(steps)}

    def draw(step: Any, ax: plt.Axes) -> None:
        _show_tile(ax, _tile(frames[index[step]], min(ncols, frames.shape[1])), vmin, vmax)

    return slider_figure(draw, steps, label=label, n_static=n_static, title=title, interactive=interactive)


def turing_test(real: Any, fake: Any, *, n_each: int = 8, ncols: int = 8, random_state: Any = 0,
                title: str = "Real or generated?", interactive: bool | None = None) -> TuringTest:
    """A visual Turing test: ``n_each`` real and ``n_each`` generated images, shuffled and numbered.

    The static figure shows the numbered grid without the answer (the book can print the key in a hidden
    cell); with a kernel, a row of real/generated toggles and a "score me" button tell the learner how many
    they got right. ``is_real`` is the key.

    Args:
        real, fake: images ``(n, C, H, W)`` or ``(n, H, W)``, at least ``n_each`` of each.
        n_each: how many of each to show.
        ncols: images per row.
        random_state: the shuffle's seed (int, ``torch.Generator`` or None).
    """
    n_each = check_int(n_each, "n_each", minimum=1, maximum=50)
    ncols = check_int(ncols, "ncols", minimum=1)
    real_images = _as_image_batches(real[None] if isinstance(real, torch.Tensor) else np.asarray(real)[None], "real")[0]
    fake_images = _as_image_batches(fake[None] if isinstance(fake, torch.Tensor) else np.asarray(fake)[None], "fake")[0]
    for name, images in (("real", real_images), ("fake", fake_images)):
        if len(images) < n_each:
            raise ValueError(f"{name} has {len(images)} images; n_each={n_each} needs at least that many")
    if real_images.shape[1:] != fake_images.shape[1:]:
        raise ValueError(f"real and fake images must have the same shape, got {real_images.shape[1:]} "
                         f"and {fake_images.shape[1:]}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {title!r}")
    interactive = _check_interactive(interactive)
    generator = check_random_state(random_state)
    order = torch.randperm(2 * n_each, generator=generator).numpy()
    images = np.concatenate([real_images[:n_each], fake_images[:n_each]])[order]
    is_real = (order < n_each)

    rows = math.ceil(len(images) / ncols)
    figure, axes = plt.subplots(rows, ncols, figsize=(1.2 * ncols, 1.35 * rows), squeeze=False)
    vmin, vmax = float(images.min()), float(images.max())
    for i, ax in enumerate(axes.ravel()):
        if i < len(images):
            _show_tile(ax, _tile(images[i:i + 1], 1), vmin, vmax)
            ax.set_title(str(i + 1), fontsize=9)
        else:
            ax.axis("off")
    figure.suptitle(title)
    figure.tight_layout()

    widget = None
    if interactive:
        import ipywidgets
        from IPython.display import display

        _show_now(figure)
        toggles = [ipywidgets.ToggleButtons(options=["real", "generated"], value=None, description=str(i + 1),
                                            style={"button_width": "80px"}) for i in range(len(images))]
        button = ipywidgets.Button(description="score me")
        result = ipywidgets.HTML()

        def score(_: Any) -> None:
            answered = [(t.value == "real") == bool(r) for t, r in zip(toggles, is_real) if t.value is not None]
            result.value = (f"<b>{sum(answered)} of {len(answered)}</b> right"
                            + ("" if len(answered) == len(toggles) else f" ({len(toggles) - len(answered)} unanswered)")
                            + "; chance is half.")

        button.on_click(score)
        widget = ipywidgets.VBox([ipywidgets.GridBox(toggles, layout=ipywidgets.Layout(
            grid_template_columns="repeat(2, 1fr)")), button, result])
        display(widget)
    return TuringTest(images, is_real, figure, widget)
