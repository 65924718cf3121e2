"""Why does the speaker model get these utterances wrong? Ask the training data.

An LSTM names the speaker (9 classes) of a Japanese Vowels utterance: 7 to 29 frames of
12 LPC cepstrum coefficients (continuous input with lengths). Each misclassified test
utterance is shown with its nearest training utterances in the model's representation
(their speakers, similarities and agreement with the prediction); MMD-critic picks
prototypes per speaker (nearest-prototype accuracy against the model's) and criticisms;
integrated gradients over frames x coefficients explains one mistake; and with 10% of
the training speakers flipped, k-NN disagreement, loss over checkpoints and TracIn
self-influence are scored on how many flips they find.

The work is done by ``captum_rnn.demo._vowels_task.run_vowels_task`` (``captum-rnn demo
--task vowels`` uses it too); this script prints what it found.

    python examples/speaker_errors.py [--out speaker-errors] [--quick] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from captum_rnn.demo._vowels_task import run_vowels_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("speaker-errors"))
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="print the training loss")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny model: one thread is fastest on shared cores

    m = run_vowels_task(args.out, quick=args.quick, seed=args.seed, progress=args.progress)
    print(
        f"Japanese Vowels: {m['train_size']} training / {m['test_size']} test utterances, "
        f"LSTM trained {m['epochs']} epochs"
    )
    print(f"test accuracy {m['test_accuracy']:.3f} ({m['num_misclassified']} misclassified)")

    print("\nmisclassified test utterances and their 5 nearest training utterances:")
    for e in m["misclassified"]:
        neighbours = ", ".join(
            f"{label.split()[-1]}:{score:.2f}"
            for label, score in zip(e["neighbor_labels"], e["neighbor_scores"], strict=True)
        )
        print(
            f"  #{e['test_index']:<3} {e['label']} predicted {e['prediction']}: neighbours "
            f"[{neighbours}] agree with the prediction {e['agreement_with_prediction']:.0%}, "
            f"with the truth {e['neighbors_with_true_label']:.0%}"
        )
    agreement = m["neighbor_label_agreement"]
    if agreement["misclassified"] is not None:
        print(
            f"neighbour labels agree with the prediction: {agreement['correct']:.2f} for correct "
            f"predictions, {agreement['misclassified']:.2f} for errors"
        )
    print(f"k-NN fidelity (neighbours' majority = model's prediction): {m['knn_fidelity']:.3f}")

    p = m["prototypes"]
    print(
        f"\nMMD-critic prototypes, {p['per_class']} per speaker: nearest-prototype accuracy "
        f"{p['nearest_prototype_accuracy']:.3f} vs the model's {p['model_accuracy']:.3f} "
        f"(agree on {p['agreement_with_model']:.0%}); random prototypes "
        f"{p['random_prototype_accuracy']:.3f} +- {p['random_prototype_accuracy_std']:.3f}; "
        f"majority baseline {p['majority_baseline']:.3f}"
    )
    c = m["criticisms"]
    print(
        "criticisms (training utterances the prototypes represent worst): "
        + ", ".join(f"#{i} ({s})" for i, s in zip(c["indices"], c["labels"], strict=True))
    )

    ig = m["integrated_gradients"]
    if ig:
        print(f"\nintegrated gradients for test utterance #{ig['test_index']}:")
        for name in ("predicted", "true"):
            r = ig[name]
            print(
                f"  towards the {name} speaker ({r['target']}): most attributed frame "
                f"{r['top_frame']}, coefficient {r['top_coefficient']}, delta {r['delta']:.3g}"
            )
    print("\n" + m["mislabel_detection"]["summary"])
    print("\nfigures:")
    for name, path in m["figures"].items():
        print(f"  {name}: {path}")
    print(f"({m['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
