"""Chapter 06's exact-resume check, looped: a straight run vs an interrupted and resumed run, N times.

Each run first allocates a different amount of memory, so the run's tensors land at other addresses
(MKL's results can depend on alignment unless MKL_CBWR is set; genlab.device sets it before torch loads).

    python benchmarks/resume_check.py 20     # prints each run's largest weight difference; exits 1 on a mismatch
"""
import os
import sys
import tempfile
from pathlib import Path

import torch

import genlab
from genlab.autoencoder import Autoencoder, normalize_images
from genlab.data import load_digits
from genlab.profiles import settings
from genlab.train import Trainer

cfg = settings("06_deep_generative_models", "quick")
device = torch.device("cpu")
x_train = normalize_images(load_digits("train")[0] / 16)
x_val = normalize_images(load_digits("val")[0] / 16)
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
print("MKL_CBWR", os.environ.get("MKL_CBWR"), "threads", torch.get_num_threads(), flush=True)
failures = 0
for run in range(runs):
    folder = Path(tempfile.mkdtemp())
    # allocate a random-size buffer so that the run's tensors land at other addresses (alignment)
    junk = [torch.empty(int(torch.randint(1, 5000, (1,)))) for _ in range(run % 7)]
    genlab.seed_everything(0)
    model = Autoencoder(image_size=8, hidden=tuple(cfg.hidden), latent_dim=cfg.latent_dim)
    history = Trainer(model, lr=cfg.lr, batch_size=64, device=device, seed=0, progress=False,
                      checkpoint_path=folder / "straight.pt").fit(x_train, epochs=cfg.epochs, val_data=x_val)
    genlab.seed_everything(0)
    Trainer(Autoencoder(image_size=8, hidden=tuple(cfg.hidden), latent_dim=cfg.latent_dim), lr=cfg.lr, batch_size=64,
            device=device, seed=0, checkpoint_path=folder / "resumed.pt", progress=False).fit(
        x_train, epochs=cfg.resume_split, val_data=x_val)
    genlab.seed_everything(123)
    resumed_model = Autoencoder(image_size=8, hidden=tuple(cfg.hidden), latent_dim=cfg.latent_dim)
    resumed_history = Trainer(resumed_model, lr=cfg.lr, batch_size=64, device=device, seed=0,
                              checkpoint_path=folder / "resumed.pt", progress=False).fit(
        x_train, epochs=cfg.epochs, val_data=x_val, resume=True)
    largest = max(float((v - resumed_model.state_dict()[k]).abs().max()) for k, v in model.state_dict().items())
    same = largest == 0.0 and resumed_history.val_loss == history.val_loss
    failures += not same
    print(f"run {run:2d}: largest {largest:.3e}, val losses identical {resumed_history.val_loss == history.val_loss}",
          flush=True)
print(f"{runs - failures}/{runs} runs reproduced exactly")
sys.exit(1 if failures else 0)
