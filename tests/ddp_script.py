"""Train a tiny autoencoder with genlab's Trainer; run by tests/test_ddp.py.

``python tests/ddp_script.py OUT`` trains in one process on the global batch;
``torchrun --nproc-per-node 2 tests/ddp_script.py OUT`` runs the same script, unchanged, in two processes
(each on half the global batch). Rank 0 writes ``OUT`` (weights, loss history, the GAN refusal message).
"""
from __future__ import annotations

import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from genlab.autoencoder import Autoencoder
from genlab.data import load_digits
from genlab.device import seed_everything
from genlab.train import Trainer

GLOBAL_BATCH, N_IMAGES, EPOCHS, LR = 16, 64, 2, 0.5


class TwoOptimizerModel(nn.Module):
    """Stands for a GAN: it defines its own training step."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

    def configure_optimizers(self):
        return {"a": torch.optim.SGD(self.a.parameters(), lr=0.1), "b": torch.optim.SGD(self.b.parameters(), lr=0.1)}

    def training_step(self, batch, optimizers):
        return {"loss": optimizers.step("a", self.a(batch).pow(2).mean())}


def main(out: str) -> None:
    seed_everything(0)
    images = load_digits("train")[0][:N_IMAGES] / 8.0 - 1.0
    model = Autoencoder(image_size=8, hidden=(32,), latent_dim=4)
    trainer = Trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=LR), batch_size=GLOBAL_BATCH,
                      progress=False, checkpoint_path=out + ".ckpt", device="cpu")
    world, rank = trainer.dist.world_size, trainer.dist.rank
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if world == 1:
        # The same data order as the sharded run: DistributedSampler's seeded permutation, one replica.
        dataset = TensorDataset(images)
        data = DataLoader(dataset, batch_size=GLOBAL_BATCH,
                          sampler=DistributedSampler(dataset, num_replicas=1, rank=0, seed=trainer.seed))
    else:
        trainer.batch_size = GLOBAL_BATCH // world  # per process; global batch = per process x world size
        data = images
    history = trainer.fit(data, epochs=EPOCHS)
    refusal = ""
    try:
        Trainer(TwoOptimizerModel(), progress=False)
    except ValueError as err:
        refusal = str(err)
    if rank == 0:
        torch.save({"state": model.state_dict(), "initial": initial, "train_loss": history.train_loss,
                    "world_size": world, "n_updates": getattr(model, "n_updates", None), "refusal": refusal}, out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
