"""Score explanations of a GRU against the true saliency of a state-switching process.

On monitoring data (vital signs, sensors) nobody knows which feature at which time
decided a prediction, so explanation methods cannot be checked there. This example
trains a GRU on synthetic series where that is known exactly: a hidden Markov chain
switches between states, in each state one feature drives the label, and the label is
the sign of the driver values summed over time (``captum_rnn.data.state_switching``).

Integrated gradients, saliency and feature ablation (through ``captum_rnn.explain``,
continuous input with variable lengths) are scored against the true
``(time, features)`` mask with the plausibility metrics of ``captum_rnn.metrics``
(every real time-step x feature cell is one candidate; padding is never ranked), next to
a random attribution. Then the data-set view aggregates the integrated gradients per
feature and time step.

    python examples/state_switching_ground_truth.py
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import captum_rnn
from captum_rnn.data import PadCollate, state_switching
from captum_rnn.metrics import auprc, dataset_attribution_summary, token_f1, token_iou
from captum_rnn.models import RNNClassifier

METHODS = ("integrated_gradients", "saliency", "feature_ablation")


def flatten_cells(values: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(batch, time, features)`` -> ``(batch, time * features)``: padding is at the end
    of time, so the real cells of a sequence are its first ``length * features``."""
    batch, steps, features = values.shape
    return values.reshape(batch, steps * features), lengths * features


def attribution_grid(explanations, steps: int, features: int) -> torch.Tensor:
    grid = torch.zeros(len(explanations), steps, features, dtype=torch.float64)
    for i, e in enumerate(explanations):
        grid[i, : len(e)] = torch.tensor(e.feature_scores, dtype=torch.float64)
    return grid


def score(grid: torch.Tensor, data) -> dict[str, float]:
    scores, cells = flatten_cells(grid, data.lengths)
    mask, _ = flatten_cells(data.masks, data.lengths)
    mean = lambda t: float(t[~torch.isnan(t)].mean())  # noqa: E731
    # Drivers push toward either class, so cells are ranked by |attribution|.
    return {
        "auprc": mean(auprc(scores, mask, lengths=cells, absolute=True)),
        "top-k F1": mean(token_f1(scores, mask, lengths=cells, absolute=True)),
        "top-k IoU": mean(token_iou(scores, mask, lengths=cells, absolute=True)),
        "mass on mask": float(
            (scores.abs() * mask).sum(1).div(scores.abs().sum(1).clamp_min(1e-12)).mean()
        ),
    }


def main() -> None:
    pl.seed_everything(0, verbose=False)
    features = 4
    train = state_switching(800, length=(12, 24), features=features, states=3, seed=0)
    test = state_switching(200, length=(12, 24), features=features, states=3, seed=1)
    loader = DataLoader(train.to_dataset(), batch_size=32, shuffle=True, collate_fn=PadCollate())
    model = RNNClassifier(2, input_size=features, cell="gru", hidden_size=32, lr=5e-3)
    trainer = pl.Trainer(
        max_epochs=12,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    model.eval()
    with torch.no_grad():
        predicted = model(test.series, test.lengths).argmax(-1)
    accuracy = float((predicted == test.labels).double().mean())
    chance_share = float(test.masks.sum() / (test.lengths.sum() * features))
    print(
        f"state switching: {len(train)} training / {len(test)} test sequences, "
        f"{features} features (3 hidden states, feature f3 a distractor), lengths 12-24"
    )
    print(f"GRU test accuracy: {accuracy:.3f}")
    print(f"salient share of real cells (AUPRC of a random ranking ~ this): {chance_share:.3f}\n")

    grids, seconds = {}, {}
    for method in METHODS:
        start = time.perf_counter()
        explanations = captum_rnn.explain(
            model,
            test.series,
            method=method,
            lengths=test.lengths,
            feature_names=test.feature_names,
        )
        seconds[method] = time.perf_counter() - start
        grids[method] = (
            attribution_grid(explanations, test.series.shape[1], features),
            explanations,
        )
    start = time.perf_counter()
    per_step = captum_rnn.explain(
        model, test.series, method="feature_ablation", lengths=test.lengths, features="step"
    )
    name = "feature_ablation, features='step'"
    seconds[name] = time.perf_counter() - start
    grids[name] = (attribution_grid(per_step, test.series.shape[1], features), per_step)
    generator = torch.Generator().manual_seed(0)
    random = torch.rand(test.series.shape, generator=generator, dtype=torch.float64)
    random = random * (
        torch.arange(test.series.shape[1])[None, :, None] < test.lengths[:, None, None]
    )
    rows = [(m, score(g, test), seconds[m]) for m, (g, _) in grids.items()]
    rows.append(("random", score(random, test), math.nan))

    columns = list(rows[0][1])
    print("| method | " + " | ".join(columns) + " | seconds |")
    print("|---|" + "---:|" * (len(columns) + 1))
    for name, values, secs in rows:
        cells = " | ".join(f"{values[c]:.3f}" for c in columns)
        print(f"| {name} | {cells} | {'' if math.isnan(secs) else f'{secs:.1f}'} |")
    print(
        "\nCells: every real (time step, feature) of a test sequence; ranked by |attribution|;"
        "\ntop-k uses k = number of salient cells; 'mass on mask' is the share of |attribution|"
        "\non the salient cells. On multivariate input captum_rnn's feature_ablation removes"
        "\none (time step, feature) cell at a time by default; with features='step' it removes"
        "\na whole time step and splits its effect evenly over the features, so it cannot"
        "\ntell the features of one step apart (its AUPRC is exactly the salient share)."
    )

    summary = dataset_attribution_summary(
        grids["integrated_gradients"][1], test.series, model=model, ratio_threshold=1.2
    )
    print("\nData-set view of the integrated gradients (per feature):\n")
    print(summary.to_markdown())


if __name__ == "__main__":
    main()
