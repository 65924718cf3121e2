"""A per-frame tagger on real speech: every frame of a Japanese Vowels utterance labelled
with the speaker, and every frame's label explained.

The data (Kudo et al. 1999; 12 LPC cepstrum coefficients per frame, 7 to 29 frames, 9
speakers) gives one speaker per utterance; a unidirectional GRU labels every frame with
the speaker it has heard so far, so output ``t`` can only use frames ``0..t``.
``explain(model, x, outputs="all")`` attributes each frame's label to the frames (and
coefficients) before it: one row per output frame, exact zeros after it. The figure is
the output-frame x input-frame heatmap of one test utterance.

    python examples/vowels_frame_tagger.py [--out docs/vowels_frame_tagger.png]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import captum_rnn
from captum_rnn.data import load_japanese_vowels


class FrameTagger(nn.Module):
    """A GRU that labels every frame: ``(batch, time, 12) -> (batch, time, 9)``."""

    def __init__(self, features: int = 12, hidden: int = 32, speakers: int = 9) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, speakers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(x)[0])


def _padded(series: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in series])
    return nn.utils.rnn.pad_sequence(series, batch_first=True), lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="vowels_frame_tagger.png")
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    torch.manual_seed(0)
    train, test = load_japanese_vowels("train"), load_japanese_vowels("test")
    frames = torch.cat(train.series)
    mean, std = frames.mean(0), frames.std(0)
    x_train, len_train = _padded([(s - mean) / std for s in train.series])
    x_test, len_test = _padded([(s - mean) / std for s in test.series])
    y_train, y_test = torch.as_tensor(train.labels), torch.as_tensor(test.labels)
    real = torch.arange(x_train.shape[1])[None, :] < len_train[:, None]
    model = FrameTagger()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-3)
    for _ in range(args.epochs):  # full batch: 270 utterances
        optimizer.zero_grad()
        logits = model(x_train, len_train)
        target = y_train[:, None].expand(-1, x_train.shape[1])
        F.cross_entropy(logits[real], target[real]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(x_test, len_test).argmax(-1)
    for frame in (0, 2, 4, 6):
        right = (predicted[:, frame] == y_test).float().mean()
        print(f"frame {frame}: speaker accuracy {right:.3f}")
    last = predicted[torch.arange(len(y_test)), len_test - 1]
    print(f"last frame: speaker accuracy {(last == y_test).float().mean():.3f}")

    i = 0
    n = int(len_test[i])
    names = [f"c{k + 1}" for k in range(12)]
    [e] = captum_rnn.explain(
        model,
        x_test[i : i + 1, :n],
        outputs="all",
        output="logits",  # per-frame class logits: the module holds no loss that says so
        feature_names=names,
        class_names=[f"speaker {c}" for c in train.class_names],
        n_steps=128,
    )
    rows = torch.tensor(e.scores)
    recent = [float(rows[t, max(0, t - 2) : t + 1].abs().sum() / rows[t].abs().sum())
              for t in range(n)]  # fmt: skip
    print(f"utterance {i} (speaker {train.class_names[int(y_test[i])]}, {n} frames): "
          f"max |delta| {max(abs(d) for d in e.delta):.2g}; share of |attribution| on the "
          f"3 latest frames per output frame: {[round(r, 2) for r in recent]}")  # fmt: skip
    fig = e.plot()
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
