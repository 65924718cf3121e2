"""The demo: train a model, explain it every way the package can, write one report.

``captum-rnn demo --out DIR`` runs :func:`run_demo`. The default task trains a
bidirectional attention LSTM on human-rated movie snippets and writes into ``DIR``:

* ``index.html``: the report (accuracy; every explained review shaded by integrated
  gradients, attention and LIME side by side, with its local rule (an anchor), its
  nearest training reviews and its figure; the explainer benchmark and its
  recommendation; agreement with the human valence lexicon; the parameter-randomisation
  sanity checks; the data-set view of shortcuts; every token escaped; opens with nothing
  else);
* ``explanation_<i>.png``: one figure per explained review;
* ``explanations.json``: the explanations (``captum_rnn.Explanations.load`` reads it);
* ``metrics.json``: accuracy, IG's convergence delta, sizes and timings.

``--task tomita`` (:mod:`captum_rnn.demo._tomita`) and ``--task vowels``
(:mod:`captum_rnn.demo._vowels`) write the same kind of report for a regular language
with its extracted automaton, and for speaker recognition on speech.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from captum_rnn._counterfactuals import counterfactuals
from captum_rnn._explain import explain
from captum_rnn.attr import NearestExamples, RuleExtraction
from captum_rnn.data import (
    DataUnavailableError,
    SequenceDataModule,
    Vocabulary,
    load_sentiment_snippets,
    load_valence_lexicon,
)
from captum_rnn.demo.report import Report
from captum_rnn.explanation import Explanations
from captum_rnn.metrics import dataset_attribution_summary, model_randomization_test
from captum_rnn.metrics._benchmark import BenchmarkResult, benchmark
from captum_rnn.models import RNNClassifier
from captum_rnn.viz import figure_to_data_uri

__all__ = ["TASKS", "DemoConfig", "run_demo"]

#: The demo's tasks: ``captum-rnn demo --task NAME``.
TASKS = ("sentiment", "tomita", "vowels")


@dataclass
class DemoConfig:
    """Settings of the demo run.

    Attributes:
        out: output folder.
        quick: a smaller, faster run (a subset of the data, fewer epochs).
        epochs: training epochs (default 5, quick 2).
        max_snippets: use at most this many snippets (default all, quick 3000).
        num_explained: held-out reviews to explain.
        seed: seeds the split, the initialisation and the training order.
        cache_dir: where the data archive is cached.
        progress: show Lightning's progress bar.
        task: ``"sentiment"`` (movie reviews), ``"tomita"`` (a regular language and
            its extracted automaton) or ``"vowels"`` (speaker recognition on speech).
        grammar: the Tomita language of the ``"tomita"`` task, 1 to 7.
    """

    out: Path = Path("captum-rnn-demo")
    quick: bool = False
    epochs: int | None = None
    max_snippets: int | None = None
    num_explained: int = 6
    seed: int = 0
    cache_dir: Path | None = None
    progress: bool = True
    task: str = "sentiment"
    grammar: int = 4

    def resolved(self) -> DemoConfig:
        epochs = self.epochs if self.epochs is not None else (2 if self.quick else 5)
        limit = (
            self.max_snippets if self.max_snippets is not None else (3000 if self.quick else None)
        )
        return DemoConfig(
            Path(self.out),
            self.quick,
            epochs,
            limit,
            self.num_explained,
            self.seed,
            self.cache_dir,
            self.progress,
            self.task,
            self.grammar,
        )


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Train, test and explain; write the report. Returns the metrics written.

    Raises:
        captum_rnn.data.DataUnavailableError: when the data cannot be fetched (offline).
    """
    config = config.resolved()
    if config.task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {config.task!r}")
    if config.task == "tomita":
        from captum_rnn.demo._tomita import run_tomita_demo

        return run_tomita_demo(
            config.out, config.grammar, config.quick, config.seed, config.progress
        )
    if config.task == "vowels":
        from captum_rnn.demo._vowels import run_vowels_demo

        return run_vowels_demo(
            config.out, config.quick, config.seed, config.cache_dir, config.progress
        )
    started = time.perf_counter()
    pl.seed_everything(config.seed, verbose=False)
    snippets = load_sentiment_snippets("movies", cache_dir=config.cache_dir)
    texts, labels = snippets.texts, snippets.labels
    if config.max_snippets is not None and config.max_snippets < len(texts):
        order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(config.seed))
        keep = order[: config.max_snippets].tolist()
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    vocab = Vocabulary.build(texts, min_freq=2)
    dataset, texts = _encode(texts, labels, vocab)
    datamodule = SequenceDataModule(dataset, batch_size=64, seed=config.seed)

    model = RNNClassifier(
        2,
        vocab_size=len(vocab),
        embedding_dim=64,
        hidden_size=64,
        bidirectional=True,
        attention="additive",
        dropout=0.3,
        lr=3e-3,
    )
    trainer = pl.Trainer(
        max_epochs=config.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        default_root_dir=config.out,
    )
    trainer.fit(model, datamodule)
    trained = time.perf_counter()
    [test_metrics] = trainer.test(model, datamodule, verbose=False)
    model.eval()  # Lightning leaves it in train mode; the black-box explainers need eval

    test_set = datamodule.test_set
    picked = list(range(min(config.num_explained, len(test_set))))
    sequences = [test_set[i][0] for i in picked]
    true_labels = [int(test_set[i][1]) for i in picked]
    ids = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
    explanations = explain(
        model, ids, vocab=vocab, labels=true_labels, class_names=["negative", "positive"]
    )
    explained = time.perf_counter()

    config.out.mkdir(parents=True, exist_ok=True)
    figures = []
    for i, explanation in enumerate(explanations):
        fig = explanation.plot()
        fig.savefig(config.out / f"explanation_{i}.png", dpi=110, bbox_inches="tight")
        figures.append(figure_to_data_uri(fig))
    explanations.save(config.out / "explanations.json")
    deltas = [abs(e.delta) for e in explanations]
    metrics = {
        "test_accuracy": float(test_metrics["test_acc"]),
        "test_loss": float(test_metrics["test_loss"]),
        "mean_abs_convergence_delta": sum(deltas) / len(deltas),
        "max_abs_convergence_delta": max(deltas),
        "mean_ig_steps": sum(e.n_steps for e in explanations) / len(explanations),
        "num_snippets": len(dataset),
        "num_dropped_neutral": snippets.num_dropped,
        "vocabulary_size": len(vocab),
        "epochs": config.epochs,
        "quick": config.quick,
        "train_seconds": round(trained - started, 2),
        "explain_seconds": round(explained - trained, 2),
    }
    quality = _explanation_quality(model, test_set, vocab, ids, config)
    quality.update(_rules_and_neighbours(model, datamodule, vocab, ids, texts))
    quality["texts"] = [texts[test_set.indices[i]] for i in picked]
    metrics["recommended_method"] = quality["benchmark"].recommendation
    metrics["neighbour_label_agreement"] = quality["neighbour_agreement"]
    flips = quality["counterfactuals"]
    metrics["counterfactuals_flipped"] = sum(cf.flipped for cf in flips) / len(flips)
    metrics["counterfactual_edits"] = [cf.size if cf.flipped else None for cf in flips]
    metrics["flagged_tokens"] = [row["token"] for row in quality["dataset_view"].flagged]
    metrics["quality_seconds"] = round(time.perf_counter() - explained, 2)
    (config.out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (config.out / "index.html").write_text(
        _report(metrics, explanations, figures, quality), encoding="utf-8"
    )
    return metrics


#: Methods compared in the report; LIME and IG bounded to keep the demo quick.
_DEMO_METHODS = [
    "integrated_gradients",
    "saliency",
    "input_x_gradient",
    "attention_weights",
    "lime",
]
_DEMO_METHOD_KWARGS = {"lime": {"n_samples": 64}, "integrated_gradients": {"max_steps": 100}}


def _explanation_quality(
    model: RNNClassifier, test_set: Any, vocab: Vocabulary, ids: torch.Tensor, config: DemoConfig
) -> dict[str, Any]:
    """Side-by-side methods for the explained reviews, the benchmark (with agreement
    with the human valence lexicon when it can be loaded) and the randomisation checks."""
    names = ["negative", "positive"]
    side_by_side = {
        method: explain(model, ids, method=method, vocab=vocab, class_names=names, **kwargs)
        for method, kwargs in (("attention_weights", {}), ("lime", _DEMO_METHOD_KWARGS["lime"]))
    }
    count = min(16 if config.quick else 64, len(test_set))
    reviews = torch.nn.utils.rnn.pad_sequence(
        [test_set[i][0] for i in range(count)], batch_first=True
    )
    try:
        lexicon = load_valence_lexicon(cache_dir=config.cache_dir)
    except DataUnavailableError:
        lexicon = None
    result = benchmark(
        model,
        reviews,
        methods=_DEMO_METHODS,
        lexicon=lexicon,
        vocab=vocab,
        method_kwargs=_DEMO_METHOD_KWARGS,
        progress=config.progress,
        seed=config.seed,
    )
    # Rank similarity needs no converged integral: a fixed, small step count keeps the
    # layer-by-layer check (one explanation per randomised layer) quick.
    sanity = [
        model_randomization_test(model, reviews[:12], method, seed=config.seed, method_kwargs=kw)
        for method, kw in (
            ("integrated_gradients", {"n_steps": 20, "max_steps": 20}),
            ("attention_weights", {}),
        )
    ]
    # The data-set view: IG over many held-out reviews, aggregated per token and class.
    view_count = min(60 if config.quick else 300, len(test_set))
    view_explanations = Explanations()
    for start in range(0, view_count, 50):  # chunks keep IG's step batch small in memory
        chunk = torch.nn.utils.rnn.pad_sequence(
            [test_set[i][0] for i in range(start, min(start + 50, view_count))],
            batch_first=True,
        )
        view_explanations.extend(
            explain(model, chunk, vocab=vocab, class_names=names, n_steps=32, max_steps=32)
        )
    dataset_view = dataset_attribution_summary(
        view_explanations, model=model, vocab=vocab, class_names=names, min_count=5
    )
    return {
        "dataset_view": dataset_view,
        "side_by_side": side_by_side,
        "benchmark": result,
        "lexicon": result.lexicon,
        "sanity": sanity,
    }


def _rules_and_neighbours(
    model: RNNClassifier,
    datamodule: SequenceDataModule,
    vocab: Vocabulary,
    ids: torch.Tensor,
    texts: list[str],
) -> dict[str, Any]:
    """For each explained review: its anchor (a local rule), its nearest training
    reviews in the model's pooled representation, with their human labels, and the
    smallest word substitutions found that flip the model (verified)."""
    names = ["negative", "positive"]
    train_set = datamodule.train_set
    corpus = torch.nn.utils.rnn.pad_sequence(
        [train_set[i][0] for i in range(min(2000, len(train_set)))], batch_first=True
    )
    anchors = RuleExtraction(model).explain(
        ids,
        vocab=vocab,
        class_names=names,
        coverage_data=corpus,
        pad_index=vocab.pad_index,
        replacement=vocab.unk_index,
        exclude=[vocab.unk_index],  # "contains <unk>" tells a reader nothing
        max_anchor_size=3,
        max_samples=2000,
    )
    nearest = NearestExamples(model, train_set, batch_size=256)
    found = nearest.neighbors(ids, top_k=3)
    neighbours = []
    for row, scores in zip(found.indices.tolist(), found.scores.tolist(), strict=True):
        neighbours.append(
            [
                f"[{names[int(train_set[i][1])]}, cosine {score:.2f}] {texts[train_set.indices[i]]}"
                for i, score in zip(row, scores, strict=True)
            ]
        )
    flips = counterfactuals(model, ids, vocab=vocab, train_dataset=train_set, class_names=names)
    return {
        "anchors": [str(anchor) for anchor in anchors],
        "counterfactuals": list(flips),
        "neighbours": neighbours,
        "neighbour_agreement": float(found.agreement.mean()),
    }


def _encode(texts: list[str], labels: list[int], vocab: Vocabulary):
    from captum_rnn.data import SequenceDataset

    """The data set of token ids, and the texts kept (those with at least one token)."""
    triples = [(vocab.encode(t), y, t) for t, y in zip(texts, labels, strict=True)]
    triples = [triple for triple in triples if triple[0]]
    dataset = SequenceDataset([t[0] for t in triples], [t[1] for t in triples])
    return dataset, [t[2] for t in triples]


def _report(
    metrics: dict[str, Any],
    explanations: Explanations,
    figures: list[str],
    quality: dict[str, Any],
) -> str:
    report = Report(
        "captum-rnn demo: movie review sentiment",
        "A bidirectional LSTM with additive attention, trained on human-rated movie review "
        "snippets (Hutto and Gilbert, ICWSM 2014), explained toward the predicted class. "
        "Blue tokens push toward the prediction, red ones against it.",
    )
    report.add_heading("Metrics")
    report.add_metrics({k: _fmt(v) for k, v in metrics.items()})
    report.add_heading("Held-out reviews")
    for i, (explanation, figure) in enumerate(zip(explanations, figures, strict=True)):
        label = explanation.class_name(explanation.label)
        predicted = explanation.class_name(explanation.predicted)
        rows = {"integrated gradients": explanation}
        rows.update({m: e[i] for m, e in quality["side_by_side"].items()})
        report.add_example(
            rows,
            f"Human label: {label}; model: {predicted}",
            text=quality["texts"][i],
            rule=quality["anchors"][i],
            neighbours=quality["neighbours"][i],
            counterfactual=quality["counterfactuals"][i],
        )
        report.add_figure(figure, "integrated gradients")
    result: BenchmarkResult = quality["benchmark"]
    report.add_benchmark(result, "Which explanation method? Benchmark", plot=False)
    if quality["lexicon"]:
        report.add_lexicon(quality["lexicon"], "Plausibility against human word ratings")
    report.add_sanity(quality["sanity"], "Sanity checks: model-parameter randomisation")
    view = quality["dataset_view"]
    report.add_heading("Data-set view: shortcuts and bias")
    report.add_paragraph(
        f"Integrated gradients over {view.n_sequences} held-out reviews, aggregated per "
        "token and predicted class.",
        note=True,
    )
    report.add_fragment(view.to_html(top=20, figure=True))  # escaped by the summary
    return report.to_html()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
