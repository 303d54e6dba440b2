"""genlab: the library behind the genlab course on generative modeling.

One module per idea: :mod:`genlab.device` (where code runs, seeds, run
profiles), :mod:`genlab.profiles` (sizes per chapter and profile),
:mod:`genlab.data` (offline datasets), :mod:`genlab.train` (the shared
trainer), :mod:`genlab.plot` (figures), :mod:`genlab.exercises` (checks), and
one module per model family.
"""
from .device import get_device, get_profile, seed_everything

__all__ = ["get_device", "get_profile", "seed_everything"]
__version__ = "0.1.0"
