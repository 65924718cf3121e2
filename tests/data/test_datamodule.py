import pytest
import pytorch_lightning as pl
import torch

from captum_rnn.data import PadCollate, SequenceDataModule, SequenceDataset


def _dataset(n=100):
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 9, (n,), generator=g).tolist()
    return SequenceDataset(
        [torch.randint(2, 20, (k,), generator=g) for k in lengths], [i % 2 for i in range(n)]
    )


def _indices(dm):
    return [list(s.indices) for s in (dm.train_set, dm.val_set, dm.test_set)]


def test_is_a_lightning_datamodule_and_constructor_only_stores():
    dm = SequenceDataModule(_dataset(), batch_size=8)
    assert isinstance(dm, pl.LightningDataModule)
    assert dm.train_set is None and dm.val_set is None and dm.test_set is None


def test_split_sizes_and_disjointness():
    dm = SequenceDataModule(_dataset(100), val_fraction=0.2, test_fraction=0.1)
    dm.setup("fit")
    train, val, test = _indices(dm)
    assert (len(train), len(val), len(test)) == (70, 20, 10)
    assert sorted(train + val + test) == list(range(100))
    assert SequenceDataModule(_dataset(7), val_fraction=0.29, test_fraction=0).split_sizes() == (
        5,
        2,
        0,
    )


def test_split_is_deterministic_and_seed_dependent():
    ds = _dataset()
    a, b, c = (SequenceDataModule(ds, seed=s) for s in (3, 3, 4))
    for dm in (a, b, c):
        dm.setup()
    assert _indices(a) == _indices(b)
    assert _indices(a) != _indices(c)
    before = _indices(a)
    a.setup("test")  # a second setup keeps the split
    assert _indices(a) == before


def test_train_shuffle_is_seeded():
    ds = _dataset()

    def first_targets(seed):
        dm = SequenceDataModule(ds, batch_size=10, seed=seed)
        return [batch[2].tolist() for batch in dm.train_dataloader()]

    assert first_targets(1) == first_targets(1)
    dm = SequenceDataModule(ds, batch_size=10, seed=1)
    epochs = [[b[0].tolist() for b in dm.train_dataloader()] for _ in range(2)]
    assert epochs[0] == epochs[1]  # a fresh loader restarts the same order


def test_loaders_yield_inputs_lengths_targets():
    dm = SequenceDataModule(_dataset(50), batch_size=4, val_fraction=0.2, test_fraction=0.2)
    for loader in (
        dm.train_dataloader(),
        dm.val_dataloader(),
        dm.test_dataloader(),
        dm.predict_dataloader(),
    ):
        inputs, lengths, targets = next(iter(loader))
        assert inputs.dim() == 2 and inputs.dtype == torch.long
        assert lengths.shape == (inputs.shape[0],) and int(lengths.max()) == inputs.shape[1]
        assert targets.shape == (inputs.shape[0],)
    assert sum(len(b[2]) for b in dm.val_dataloader()) == 10
    predicted = torch.cat([b[2] for b in dm.predict_dataloader()])
    tested = torch.cat([b[2] for b in dm.test_dataloader()])
    assert torch.equal(predicted, tested)


def test_custom_collate():
    dm = SequenceDataModule(_dataset(20), batch_size=5, collate_fn=PadCollate(pad_to=12))
    inputs, _, _ = next(iter(dm.val_dataloader()))
    assert inputs.shape[1] == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "< 1"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_invalid_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SequenceDataModule(_dataset(10), **kwargs)


def test_too_small_dataset_for_split():
    dm = SequenceDataModule(_dataset(2), val_fraction=0.45, test_fraction=0.45)
    with pytest.raises(ValueError, match="no training items"):
        dm.setup()


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader`", "ignore:.*treespec")
def test_fit_consumes_the_batches():
    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(20, 2, padding_idx=0)

        def training_step(self, batch, batch_idx):
            inputs, lengths, targets = batch
            assert lengths.shape == targets.shape
            return torch.nn.functional.cross_entropy(self.emb(inputs), targets)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(Tiny(), datamodule=SequenceDataModule(_dataset(40), batch_size=8))
    assert trainer.global_step == 4
