"""Command line over :mod:`genlab.results.ledger` (the likelihood ledger lives in genlab).

    python benchmarks/likelihood.py              # every recipe of genlab.vae.DIGITS_RECIPES, 3 seeds, 3 workers
    python benchmarks/likelihood.py --seeds 0 --workers 1
    python benchmarks/likelihood.py --recipes causal_conv_vae --no-mnist   # re-run one recipe, keep the rest

Writes ``benchmarks/results/likelihood.json`` atomically, with provenance.
"""
from __future__ import annotations

from genlab.results.ledger import main

if __name__ == "__main__":
    main()
