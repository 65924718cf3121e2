"""Speaker recognition on Japanese Vowels with a GRU, explained over time and features.

Continuous input: each utterance is 7 to 29 frames of 12 LPC cepstrum coefficients.
Integrated gradients gives one attribution per frame and coefficient.

    python examples/vowels_time_feature_attributions.py
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import captum_rnn
from captum_rnn.data import PadCollate, load_japanese_vowels
from captum_rnn.models import RNNClassifier


def main() -> None:
    pl.seed_everything(0)
    train, test = load_japanese_vowels("train"), load_japanese_vowels("test")
    # Standardise with training statistics.
    frames = torch.cat(train.series)
    mean, std = frames.mean(0), frames.std(0)
    for data in (train, test):
        data.series = [(s - mean) / std for s in data.series]
    collate = PadCollate()
    train_loader = DataLoader(train.to_dataset(), batch_size=32, shuffle=True, collate_fn=collate)
    test_loader = DataLoader(test.to_dataset(), batch_size=64, collate_fn=collate)
    model = RNNClassifier(9, input_size=12, cell="gru", hidden_size=32, pooling="mean", lr=3e-3)
    trainer = pl.Trainer(max_epochs=30, logger=False, enable_checkpointing=False)
    trainer.fit(model, train_loader)
    print(trainer.test(model, test_loader, verbose=False))

    inputs, lengths, labels = collate([test.to_dataset()[i] for i in range(4)])
    names = [f"c{i + 1}" for i in range(12)]
    speakers = [f"speaker {c}" for c in train.class_names]
    explanations = captum_rnn.explain(
        model,
        inputs,
        lengths=lengths,
        labels=labels.tolist(),
        feature_names=names,
        class_names=speakers,
    )
    for e in explanations:
        print(e.title())
    explanations[0].plot().savefig("vowels_ig.png", dpi=110)


if __name__ == "__main__":
    main()
