"""The demo's speech task: who is speaking, and why the model gets some speakers wrong.

``captum-rnn demo --task vowels`` runs :func:`run_vowels_demo`: an LSTM identifies the
speaker of Japanese Vowels recordings (real speech, 12 LPC cepstrum coefficients per
frame); its misclassified test utterances are explained by their nearest training
utterances, MMD-critic prototypes per speaker, criticisms, integrated gradients over
frames x coefficients, and mislabel detection. The work is
:func:`captum_rnn.demo._vowels_task.run_vowels_task`; this module writes the report and
``metrics.json``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from captum_rnn.demo._vowels_task import run_vowels_task
from captum_rnn.demo.report import Report

__all__ = ["run_vowels_demo"]

_CAPTIONS = {
    "ig_predicted": "integrated gradients toward the predicted speaker (frames x coefficients)",
    "ig_true": "integrated gradients toward the true speaker",
    "prototypes": "MMD-critic prototypes per speaker and criticisms",
}


def run_vowels_demo(
    out: Path,
    quick: bool = False,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, explain and report the speaker task; returns the metrics written.

    Args:
        out: output folder (created if missing).
        quick: fewer epochs and fewer explained errors.
        seed: seeds training and sampling.
        cache_dir: the download cache of the data.
        progress: print the training loss per epoch.

    Raises:
        captum_rnn.data.DataUnavailableError: when the data cannot be fetched (offline).
    """
    out = Path(out)
    result = run_vowels_task(out, quick=quick, seed=seed, cache_dir=cache_dir, progress=progress)
    metrics = {
        "task": "vowels",
        "quick": quick,
        "test_accuracy": result["test_accuracy"],
        "num_misclassified": result["num_misclassified"],
        "knn_fidelity": result["knn_fidelity"],
        "nearest_prototype_accuracy": result["prototypes"]["nearest_prototype_accuracy"],
        "mislabel_detection": result["mislabel_detection"]["found"],
        "seconds": result["seconds"],
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    _report(result).save(out / "index.html")
    return metrics


def _png_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _report(result: dict[str, Any]) -> Report:
    report = Report(
        "captum-rnn demo: who is speaking?",
        "An LSTM identifies which of nine speakers says the Japanese vowel /ae/ (Japanese "
        "Vowels: 12 LPC cepstrum coefficients per frame, 7 to 29 frames). Its mistakes are "
        "explained by the training utterances it treats as alike, by prototypes and "
        "criticisms of each speaker, and by integrated gradients over frames and "
        "coefficients.",
    )
    protos = result["prototypes"]
    agreement = result["neighbor_label_agreement"]
    report.add_heading("Metrics")
    report.add_metrics(
        {
            "test accuracy": result["test_accuracy"],
            "misclassified test utterances": result["num_misclassified"],
            "k-NN fidelity (neighbours' majority = prediction)": result["knn_fidelity"],
            "neighbours agreeing with the prediction, correct predictions": agreement["correct"],
            "neighbours agreeing with the prediction, errors": agreement["misclassified"],
            "nearest-prototype accuracy": protos["nearest_prototype_accuracy"],
            "random-prototype accuracy": protos["random_prototype_accuracy"],
            "majority baseline": protos["majority_baseline"],
            "seconds": result["seconds"],
        }
    )
    report.add_heading("Misclassified utterances and their nearest training utterances")
    rows = []
    for item in result["misclassified"]:
        rows.append(
            (
                item["test_index"],
                item["label"],
                item["prediction"],
                ", ".join(str(label) for label in item["neighbor_labels"]),
                item["agreement_with_prediction"],
            )
        )
    report.add_table(
        ["test utterance", "speaker", "predicted", "neighbours' speakers", "agree with prediction"],
        rows,
    )
    for name, path in sorted(result["figures"].items()):
        if name.startswith("neighbors_"):
            report.add_figure(_png_uri(path), f"nearest training utterances ({name})")
    for name in ("ig_predicted", "ig_true", "prototypes"):
        if name in result["figures"]:
            report.add_figure(_png_uri(result["figures"][name]), _CAPTIONS[name])
    detection = result["mislabel_detection"]
    report.add_heading("Finding flipped training labels")
    report.add_paragraph(
        f"{detection['flipped']} training labels flipped at random; each score ranks the "
        "training utterances, and the table gives the share of flips found after checking "
        f"10% and 20% of them (a random order finds {detection['random'].get('0.1')} and "
        f"{detection['random'].get('0.2')}).",
        note=True,
    )
    report.add_table(
        ["score", "found in top 10%", "found in top 20%"],
        [(m, r.get("0.1"), r.get("0.2")) for m, r in detection["found"].items()],
    )
    return report
