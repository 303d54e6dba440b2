"""Bad calls of genlab.widgets fail at the door, naming the argument."""
import numpy as np
import pytest
import torch
from badinput import BAD_SEEDS, Case, assert_clear_error

from genlab import widgets

COVERED = {"widgets.slider_figure", "widgets.image_scrubber", "widgets.turing_test"}


def _draw(value, ax):
    ax.plot([value])


FRAMES = torch.rand(3, 2, 1, 4, 4)
REAL, FAKE = torch.rand(4, 1, 4, 4), torch.rand(4, 1, 4, 4)

CASES = [
    Case("widgets.slider_figure", lambda: widgets.slider_figure("draw", [1, 2]), "draw"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, []), "values", "empty"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, "abc"), "values", "string"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, 5), "values", "int"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], label=3), "label"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], static_values=[7]), "static_values"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], n_static=0), "n_static"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], n_static=2.5), "n_static"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], title=1), "title"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], panel_size=(0, 2)), "panel_size"),
    Case("widgets.slider_figure", lambda: widgets.slider_figure(_draw, [1, 2], interactive="yes"), "interactive"),
    Case("widgets.image_scrubber", lambda: widgets.image_scrubber(torch.rand(3, 4)), "frames", "2-D"),
    Case("widgets.image_scrubber", lambda: widgets.image_scrubber(np.full((2, 1, 1, 4, 4), np.nan)), "frames", "nan"),
    Case("widgets.image_scrubber", lambda: widgets.image_scrubber(FRAMES, steps=[1, 2]), "steps"),
    Case("widgets.image_scrubber", lambda: widgets.image_scrubber(FRAMES, ncols=0), "ncols"),
    Case("widgets.turing_test", lambda: widgets.turing_test(REAL, FAKE, n_each=5), "n_each", "too many"),
    Case("widgets.turing_test", lambda: widgets.turing_test(REAL, FAKE, n_each=0), "n_each"),
    Case("widgets.turing_test", lambda: widgets.turing_test(REAL, torch.rand(4, 1, 5, 5), n_each=2), "shape"),
    Case("widgets.turing_test", lambda: widgets.turing_test(REAL, FAKE, n_each=2, ncols=0), "ncols"),
    Case("widgets.turing_test", lambda: widgets.turing_test(REAL, FAKE, n_each=2, title=None), "title"),
] + [Case("widgets.turing_test", lambda s=s: widgets.turing_test(REAL, FAKE, n_each=2, random_state=s),
          "random_state", repr(s)) for s in BAD_SEEDS]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case):
    assert_clear_error(case)
