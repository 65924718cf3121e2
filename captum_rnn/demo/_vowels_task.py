"""Speaker errors on Japanese Vowels, explained by examples and by integrated gradients.

:func:`run_vowels_task` trains an LSTM to name the speaker (9 classes) of an utterance
(7 to 29 frames of 12 LPC cepstrum coefficients), then explains its mistakes:

* every misclassified test utterance with its nearest training utterances
  (:class:`~captum_rnn.attr.NearestExamples`: their labels, similarities and agreement
  with the prediction), and the neighbour-label agreement of right against wrong
  predictions;
* MMD-critic prototypes per speaker, the nearest-prototype classifier's accuracy against
  the model's (and against randomly chosen prototypes), and criticisms;
* integrated gradients over frames x coefficients for one misclassified utterance, for
  the predicted and for the true speaker;
* mislabel detection: 10% of the training speakers flipped, a fresh LSTM trained on them,
  the flips found in the top 10% and 20% by k-NN label disagreement, loss over
  checkpoints and TracInCPFast self-influence (a random ranking finds 10% and 20%).

It writes PNG figures and ``vowels_metrics.json`` into ``out`` and returns the metrics
with the figure paths. ``examples/speaker_errors.py`` and ``captum-rnn demo --task
vowels`` call it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["run_vowels_task"]

FEATURE_NAMES = [f"c{i + 1}" for i in range(12)]


def _standardised(train: Any, test: Any) -> tuple[Any, Any]:
    """Standardise every coefficient with the training frames' mean and spread."""
    from captum_rnn.data import SequenceDataset

    frames = torch.cat(train.series)
    mean, std = frames.mean(0), frames.std(0).clamp_min(1e-6)
    return (
        SequenceDataset([(s - mean) / std for s in train.series], train.labels),
        SequenceDataset([(s - mean) / std for s in test.series], test.labels),
    )


def _train(train: Any, epochs: int, seed: int, progress: bool) -> nn.Module:
    from captum_rnn.data import pad_collate
    from captum_rnn.models import RNNClassifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RNNClassifier(9, input_size=12, cell="lstm", hidden_size=48, pooling="mean")
        optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
        loader = DataLoader(
            train,
            batch_size=32,
            shuffle=True,
            collate_fn=pad_collate,
            generator=torch.Generator().manual_seed(seed),
        )
        model.train()
        for epoch in range(epochs):
            total = 0.0
            for x, lengths, y in loader:
                optimiser.zero_grad()
                loss = nn.functional.cross_entropy(model(x, lengths), y)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(y)
            if progress:
                print(f"epoch {epoch + 1}/{epochs}: training loss {total / len(train):.3f}")
    return model.eval()


def _predict(model: nn.Module, data: Any) -> torch.Tensor:
    from captum_rnn.data import pad_collate

    predictions = []
    with torch.no_grad():
        for x, lengths, _ in DataLoader(data, batch_size=256, collate_fn=pad_collate):
            predictions.append(model(x, lengths).argmax(dim=1))
    return torch.cat(predictions)


def _random_prototype_accuracy(
    nearest: Any, test: Any, k_per_class: int, seeds: int = 10
) -> tuple[float, float]:
    """Accuracy of nearest-prototype classifiers with random prototypes per class."""
    from captum_rnn.influence import nearest_prototype_predict

    held_out = nearest._encode_dataset(test)
    layer = nearest.layer_names[-1]
    queries = nearest._kernel_space(held_out.vectors[layer])
    space = nearest._kernel_space(nearest.store.vectors[layer])
    labels, truth = nearest.store.labels_tensor().long(), held_out.labels_tensor().long()
    accuracies = []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        picks = []
        for c in torch.unique(labels).tolist():
            members = torch.nonzero(labels == c)[:, 0]
            picks.append(members[torch.randperm(len(members), generator=g)[:k_per_class]])
        chosen = torch.cat(picks)
        predicted = nearest_prototype_predict(queries, space[chosen], labels[chosen], "euclidean")
        accuracies.append(float((predicted == truth).float().mean()))
    values = torch.tensor(accuracies)
    return float(values.mean()), float(values.std())


def run_vowels_task(
    out: Path | str,
    quick: bool = False,
    seed: int = 0,
    cache_dir: Path | str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train a speaker-identification LSTM on Japanese Vowels and explain its errors.

    Args:
        out: folder for the figures and ``vowels_metrics.json`` (created if missing).
        quick: fewer training epochs (10 instead of 20) and fewer explained errors.
        seed: seeds the initialisation, the training order and the prototype sampling.
        cache_dir: the download cache of the data (default ``~/.cache/captum_rnn``).
        progress: print the training loss per epoch.

    Returns:
        A JSON-serialisable dict: ``test_accuracy``; ``misclassified`` (per misclassified
        test utterance: its label, prediction, nearest training utterances with labels,
        similarities and agreement); ``neighbor_label_agreement`` (mean over correct and
        misclassified predictions); ``knn_fidelity``; ``prototypes`` (indices, labels,
        nearest-prototype, model, random-prototype and majority accuracies);
        ``criticisms``; ``integrated_gradients`` (the explained utterance, convergence
        deltas); ``mislabel_detection`` (share of flips found per score and checked
        fraction, as strings ``"0.1"``/``"0.2"``, against ``random``); ``figures`` (name -> path of each PNG); ``seconds``.

    Raises:
        captum_rnn.data.DataUnavailableError: the data cannot be fetched (offline).

    Example:
        >>> metrics = run_vowels_task(Path("out"), quick=True)  # doctest: +SKIP
        >>> metrics["test_accuracy"], metrics["figures"]["neighbors_0"]  # doctest: +SKIP
    """
    from captum_rnn._explain import explain
    from captum_rnn.attr import NearestExamples
    from captum_rnn.data import load_japanese_vowels
    from captum_rnn.metrics import knn_fidelity, neighbor_label_agreement
    from captum_rnn.viz import (
        plot_neighbors,
        plot_prototypes_and_criticisms,
        plot_time_feature_attributions,
    )

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    raw_train = load_japanese_vowels("train", cache_dir=cache_dir)
    raw_test = load_japanese_vowels("test", cache_dir=cache_dir)
    speakers = [f"speaker {c}" for c in raw_train.class_names]
    train, test = _standardised(raw_train, raw_test)
    epochs = 10 if quick else 20
    model = _train(train, epochs, seed, progress)

    truth = test.targets.long()
    predictions = _predict(model, test)
    accuracy = float((predictions == truth).float().mean())
    wrong = torch.nonzero(predictions != truth)[:, 0]

    # -------------------------------------------------------------- nearest training utterances
    top_k = 5
    nearest = NearestExamples(model, train, metric="cosine")
    from captum_rnn.data import pad_collate

    x, lengths, _ = pad_collate([test[i] for i in range(len(test))])
    neighbors = nearest.neighbors(x, top_k=top_k, additional_forward_args=(lengths,))
    agreement = neighbor_label_agreement(neighbors)
    correct = predictions == truth
    fidelity = knn_fidelity(neighbors)
    misclassified = []
    for i in wrong.tolist():
        misclassified.append(
            {
                "test_index": i,
                "label": speakers[int(truth[i])],
                "prediction": speakers[int(predictions[i])],
                "neighbor_indices": neighbors.indices[i].tolist(),
                "neighbor_labels": [speakers[int(c)] for c in neighbors.labels[i]],
                "neighbor_scores": [round(float(s), 4) for s in neighbors.scores[i]],
                "agreement_with_prediction": float(agreement[i]),
                "neighbors_with_true_label": float(
                    (neighbors.labels[i] == truth[i]).float().mean()
                ),
            }
        )

    figures: dict[str, str] = {}
    shown = wrong[: (2 if quick else 3)].tolist()
    for rank, i in enumerate(shown):
        idx = neighbors.indices[i].tolist()
        fig = plot_neighbors(
            test.sequences[i].numpy(),
            [train.sequences[j].numpy() for j in idx],
            labels=neighbors.labels[i].tolist(),
            scores=neighbors.scores[i].tolist(),
            query_prediction=int(predictions[i]),
            query_label=int(truth[i]),
            indices=idx,
            class_names=speakers,
            score_name="cosine similarity",
            title=f"test utterance {i}: nearest training utterances",
        )
        path = out / f"vowels_neighbors_{rank}.png"
        fig.savefig(path, dpi=100)
        figures[f"neighbors_{rank}"] = str(path)

    # -------------------------------------------------------------- prototypes and criticisms
    k_per_class = 3
    evaluation = nearest.prototype_accuracy(test, k_per_class=k_per_class)
    protos = nearest.prototypes(k_per_class)
    critics = nearest.criticisms(6)
    random_mean, random_std = _random_prototype_accuracy(nearest, test, k_per_class)
    train_labels = train.targets.long()
    fig = plot_prototypes_and_criticisms(
        [train.sequences[j].numpy() for j in protos.tolist()],
        train_labels[protos].tolist(),
        [train.sequences[j].numpy() for j in critics.tolist()],
        train_labels[critics].tolist(),
        class_names=speakers,
        prototype_indices=protos.tolist(),
        criticism_indices=critics.tolist(),
    )
    path = out / "vowels_prototypes.png"
    fig.savefig(path, dpi=90)
    figures["prototypes"] = str(path)

    # -------------------------------------------------------------- integrated gradients
    ig: dict[str, Any] = {}
    if len(wrong):
        i = int(wrong[0])
        inputs, lens, _ = pad_collate([test[i]])
        for name, target in (("predicted", int(predictions[i])), ("true", int(truth[i]))):
            (explanation,) = explain(
                model,
                inputs,
                target=target,
                lengths=lens,
                labels=[int(truth[i])],
                feature_names=FEATURE_NAMES,
                class_names=speakers,
                n_steps=100,
            )
            fig = plot_time_feature_attributions(
                explanation.feature_scores,
                FEATURE_NAMES,
                title=(
                    f"test utterance {i} ({speakers[int(truth[i])]}, predicted "
                    f"{speakers[int(predictions[i])]}): IG towards {speakers[target]}"
                ),
            )
            path = out / f"vowels_ig_{name}.png"
            fig.savefig(path, dpi=100)
            figures[f"ig_{name}"] = str(path)
            scores = torch.tensor(explanation.feature_scores)
            ig[name] = {
                "target": speakers[target],
                "delta": explanation.delta,
                "top_frame": int(scores.abs().sum(1).argmax()),
                "top_coefficient": FEATURE_NAMES[int(scores.abs().sum(0).argmax())],
            }
        ig["test_index"] = i

    # -------------------------------------------------------------- mislabel detection
    from captum_rnn.metrics import mislabel_detection
    from captum_rnn.models import RNNClassifier

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = RNNClassifier(9, input_size=12, cell="lstm", hidden_size=48, pooling="mean")
    detection = mislabel_detection(
        fresh, train, share=0.1, epochs=epochs, lr=5e-3, batch_size=32, seed=seed
    )

    metrics: dict[str, Any] = {
        "train_size": len(train),
        "test_size": len(test),
        "epochs": epochs,
        "test_accuracy": accuracy,
        "num_misclassified": len(wrong),
        "misclassified": misclassified,
        "neighbor_label_agreement": {
            "correct": float(agreement[correct].mean()) if bool(correct.any()) else None,
            "misclassified": float(agreement[~correct].mean()) if len(wrong) else None,
        },
        "knn_fidelity": fidelity,
        "prototypes": {
            "per_class": k_per_class,
            "indices": protos.tolist(),
            "labels": [speakers[int(c)] for c in train_labels[protos]],
            "nearest_prototype_accuracy": evaluation.prototype_accuracy,
            "model_accuracy": evaluation.model_accuracy,
            "agreement_with_model": evaluation.agreement,
            "random_prototype_accuracy": random_mean,
            "random_prototype_accuracy_std": random_std,
            "majority_baseline": evaluation.majority_baseline,
        },
        "criticisms": {
            "indices": critics.tolist(),
            "labels": [speakers[int(c)] for c in train_labels[critics]],
        },
        "integrated_gradients": ig,
        "mislabel_detection": {
            "flipped": detection.num_flipped,
            "checkpoints": detection.num_checkpoints,
            "found": {m: {str(f): v for f, v in r.items()} for m, r in detection.found.items()},
            "random": {str(f): v for f, v in detection.random.items()},
            "summary": detection.summary(),
        },
        "figures": figures,
    }
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    (out / "vowels_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
