"""Command line over :mod:`genlab.results.leaderboard` (the course leaderboard lives in genlab).

    python benchmarks/leaderboard.py                          # every model, the current GENLAB_PROFILE
    python benchmarks/leaderboard.py --profile full           # adds MNIST-5k and longer training
    python benchmarks/leaderboard.py --models "KDE (dequantised)" "VAE"   # re-run two rows, keep the rest

Writes ``benchmarks/results/leaderboard.json`` atomically, with provenance, merging the re-run rows
into what was there; a failing run leaves the file untouched.
"""
from __future__ import annotations

from genlab.results.leaderboard import main

if __name__ == "__main__":
    main()
