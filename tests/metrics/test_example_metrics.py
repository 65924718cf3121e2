"""Metrics for example-based explanations: neighbour agreement, k-NN fidelity, mislabels."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from captum_rnn.attr import NearestExamples
from captum_rnn.data import SequenceDataset, pad_collate
from captum_rnn.metrics import (
    MislabelDetection,
    checkpoint_loss_scores,
    flip_labels,
    flips_found,
    knn_fidelity,
    knn_majority,
    mislabel_detection,
    neighbor_label_agreement,
    tracin_self_influence,
)
from captum_rnn.models import RNNClassifier


def blobs(n: int = 240, classes: int = 3, seed: int = 0) -> SequenceDataset:
    """Continuous sequences (3 to 7 steps, 4 features) whose class shifts one feature."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    sequences = []
    for y in labels.tolist():
        x = 0.5 * torch.randn(int(torch.randint(3, 8, (1,), generator=g)), 4, generator=g)
        x[:, y] += 2.0
        sequences.append(x)
    return SequenceDataset(sequences, labels)


def small_model(seed: int = 0, classes: int = 3) -> RNNClassifier:
    torch.manual_seed(seed)
    return RNNClassifier(classes, input_size=4, hidden_size=12, cell="gru", pooling="mean")


def snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


def assert_unchanged(model: nn.Module, before) -> None:
    state, modes, flags = before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


# ---------------------------------------------------------------------------- neighbours
def test_neighbor_label_agreement_and_knn_fidelity_by_hand():
    labels = torch.tensor([[1, 1, 0], [2, 0, 0], [3, 1, 5], [0, 1, 1]])
    predictions = torch.tensor([1, 2, 3, 0])
    torch.testing.assert_close(
        neighbor_label_agreement(labels, predictions), torch.tensor([2 / 3, 1 / 3, 1 / 3, 1 / 3])
    )
    # majority: 1, 0, 3 (a three-way tie goes to the nearest), 1
    assert knn_majority(labels).tolist() == [1, 0, 3, 1]
    assert knn_fidelity(labels, predictions) == pytest.approx(0.5)
    # a tie between two labels goes to the one whose first neighbour is nearer
    assert knn_majority(torch.tensor([[4, 2, 2, 4]])).tolist() == [4]


def test_metrics_accept_a_neighbors_result():
    train = blobs(60)
    model = small_model().eval()
    nearest = NearestExamples(model, train)
    x, lengths, _ = pad_collate([train[i] for i in range(10)])
    result = nearest.neighbors(x, top_k=4, additional_forward_args=(lengths,))
    torch.testing.assert_close(neighbor_label_agreement(result), result.agreement)
    expected = (knn_majority(result.labels) == result.query_predictions).float().mean()
    assert knn_fidelity(result) == pytest.approx(float(expected))


def test_neighbor_metric_errors():
    with pytest.raises(ValueError, match="neighbor_labels"):
        neighbor_label_agreement(torch.tensor([1, 2]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="neighbor_labels"):
        knn_fidelity(torch.rand(2, 3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="predictions"):
        knn_fidelity(torch.tensor([[1, 2]]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="predictions are required"):
        knn_fidelity(torch.tensor([[1, 2]]))


# ---------------------------------------------------------------------------- flips
def test_flip_labels_is_seeded_and_always_changes_the_class():
    labels = torch.arange(200) % 4
    noisy, flipped = flip_labels(labels, share=0.1, seed=3)
    again, flipped_again = flip_labels(labels, share=0.1, seed=3)
    other, _ = flip_labels(labels, share=0.1, seed=4)
    assert int(flipped.sum()) == 20
    assert torch.equal(noisy != labels, flipped)
    assert torch.equal(noisy, again) and torch.equal(flipped, flipped_again)
    assert not torch.equal(noisy, other)
    assert int(noisy.min()) >= 0 and int(noisy.max()) < 4
    for bad in (0.0, 1.0, -0.2, True):
        with pytest.raises(ValueError, match="share"):
            flip_labels(labels, share=bad)
    with pytest.raises(ValueError, match="num_classes"):
        flip_labels(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        flip_labels(torch.rand(5))


def test_flips_found_counts_the_top_of_the_ranking():
    flipped = torch.zeros(100, dtype=torch.bool)
    flipped[[5, 17, 42, 80]] = True
    perfect = flipped.float()
    assert flips_found(perfect, flipped) == {0.1: 1.0, 0.2: 1.0}
    # constant scores: the stable sort checks the first indices, here two of four flips
    assert flips_found(torch.zeros(100), flipped, [0.2]) == {0.2: 0.5}
    reverse = -perfect
    assert flips_found(reverse, flipped) == {0.1: 0.0, 0.2: 0.0}
    with pytest.raises(ValueError, match="flipped marks no"):
        flips_found(perfect, torch.zeros(100, dtype=torch.bool))
    with pytest.raises(ValueError, match="scores"):
        flips_found(torch.zeros(5), flipped)
    with pytest.raises(ValueError, match="fractions"):
        flips_found(perfect, flipped, [1.5])


# ---------------------------------------------------------------------------- scores
def _checkpoints(model: nn.Module, data, epochs: int = 3):
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    states = []
    loader = torch.utils.data.DataLoader(data, batch_size=32, collate_fn=pad_collate)
    for _ in range(epochs):
        for x, lengths, y in loader:
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x, lengths), y).backward()
            optimiser.step()
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return model.eval(), states


def test_loss_and_tracin_scores_match_a_direct_computation(tmp_path):
    data = blobs(50)
    model, states = _checkpoints(small_model(), data)
    before = snapshot(model)
    x, lengths, y = pad_collate([data[i] for i in range(len(data))])
    worker = small_model()
    loss, tracin = torch.zeros(len(data)), torch.zeros(len(data))
    for state in states:
        worker.load_state_dict(state)
        worker.eval()
        with torch.no_grad():
            _, _, pooled = worker.encode(x, lengths)
            logits = worker.head(pooled)
        loss += nn.functional.cross_entropy(logits, y, reduction="none")
        # CE gradient w.r.t. the head's weight is (softmax - onehot) outer pooled
        g = logits.softmax(dim=1) - nn.functional.one_hot(y, 3).float()
        tracin += 0.5 * (g**2).sum(1) * (pooled**2).sum(1)
    torch.testing.assert_close(checkpoint_loss_scores(model, data, states), loss)
    ours = tracin_self_influence(model, data, states, learning_rate=0.5, batch_size=16)
    torch.testing.assert_close(ours, tracin, rtol=1e-4, atol=1e-6)
    # checkpoints on disk are read with weights_only=True and give the same scores
    paths = []
    for i, state in enumerate(states):
        paths.append(tmp_path / f"epoch{i}.pt")
        torch.save(state, paths[-1])
    torch.testing.assert_close(checkpoint_loss_scores(model, data, [str(p) for p in paths]), loss)
    torch.testing.assert_close(
        tracin_self_influence(model, data, paths, learning_rate=0.5), tracin, rtol=1e-4, atol=1e-6
    )
    assert_unchanged(model, before)


def test_score_errors():
    data = blobs(20)
    model = small_model().eval()
    state = model.state_dict()
    with pytest.raises(ValueError, match="final_layer"):
        tracin_self_influence(model, data, [state], final_layer="nothing")
    with pytest.raises(ValueError, match="final_layer"):
        tracin_self_influence(model, data, [state], final_layer="rnn")
    with pytest.raises(ValueError, match="final_layer"):
        tracin_self_influence(model, data, [state], final_layer="representation")
    with pytest.raises(ValueError, match="at least one"):
        checkpoint_loss_scores(model, data, [])
    with pytest.raises(TypeError, match=r"checkpoints\[0\]"):
        checkpoint_loss_scores(model, data, [42])
    with pytest.raises(ValueError, match=r"checkpoints\[0\]"):
        checkpoint_loss_scores(model, data, [{"weight": "not a tensor"}])


# ---------------------------------------------------------------------------- detection
def test_mislabel_detection_finds_flips_far_above_random():
    data = blobs(240)
    model = small_model()
    before = snapshot(model)
    result = mislabel_detection(model, data, share=0.1, epochs=10, lr=1e-2, seed=0)
    assert isinstance(result, MislabelDetection)
    assert result.num_flipped == 24 and result.num_checkpoints == 10
    assert result.random == {0.1: 0.1, 0.2: 0.2}
    print("\n" + result.summary())
    for method in ("knn", "loss", "tracin"):
        assert result.scores[method].shape == (240,)
        found = result.found[method]
        assert found[0.2] >= found[0.1]
        assert found[0.1] >= 0.5, (method, found)  # random: 0.1
        assert found[0.2] >= 0.7, (method, found)  # random: 0.2
    assert_unchanged(model, before)
    # the noisy labels are the flipped ones
    assert torch.equal(result.noisy_labels != data.targets, result.flipped)

    # deterministic for a seed
    again = mislabel_detection(model, data, share=0.1, epochs=10, lr=1e-2, seed=0)
    for method in result.scores:
        torch.testing.assert_close(result.scores[method], again.scores[method])


def test_mislabel_detection_with_given_flips_and_checkpoints():
    data = blobs(120, seed=1)
    noisy, flipped = flip_labels(data.targets, share=0.1, seed=5)
    noisy_data = SequenceDataset(data.sequences, noisy)
    model, states = _checkpoints(small_model(), noisy_data, epochs=4)
    before = snapshot(model)
    result = mislabel_detection(
        model, noisy_data, flipped=flipped, checkpoints=states, methods=["loss", "tracin"]
    )
    assert set(result.found) == {"loss", "tracin"} and result.model is None
    assert result.num_checkpoints == 4
    assert result.found["loss"][0.2] > 0.5
    only_current = mislabel_detection(model, noisy_data, flipped=flipped, methods=["knn"])
    assert only_current.num_checkpoints == 1 and only_current.found["knn"][0.2] > 0.5
    assert_unchanged(model, before)


def test_mislabel_detection_errors():
    data = blobs(30)
    model = small_model()
    with pytest.raises(ValueError, match="methods"):
        mislabel_detection(model, data, methods=["influence"])
    with pytest.raises(ValueError, match="checkpoints are only used"):
        mislabel_detection(model, data, checkpoints=[model.state_dict()])
    with pytest.raises(ValueError, match="flipped"):
        mislabel_detection(model, data, flipped=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no label is flipped"):
        mislabel_detection(model, data, flipped=torch.zeros(30, dtype=torch.bool))
    with pytest.raises(ValueError, match="epochs"):
        mislabel_detection(model, data, epochs=0)
    with pytest.raises(TypeError, match="model"):
        mislabel_detection("model", data)
    regression = SequenceDataset(data.sequences, torch.rand(30))
    with pytest.raises(ValueError, match="integer class targets"):
        mislabel_detection(model, regression)


# ---------------------------------------------------------------------------- real data
def _nearest_test_helpers():
    """The snippet split and training recipe of tests/influence/test_nearest.py (reused)."""
    module = sys.modules.get("test_nearest")
    if module is None or not hasattr(module, "_split_snippets"):
        path = Path(__file__).parents[1] / "influence" / "test_nearest.py"
        spec = importlib.util.spec_from_file_location("_nearest_test_helpers", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.mark.network
def test_real_tweets_mislabel_detection_by_all_three_scores():
    from captum_rnn.data import DataUnavailableError, Vocabulary, load_sentiment_snippets

    helpers = _nearest_test_helpers()
    try:
        tweets = load_sentiment_snippets("tweets")
    except DataUnavailableError as err:
        pytest.skip(f"sentiment snippets unavailable: {err}")
    vocab = Vocabulary.build(tweets.texts, min_freq=2)
    clean, _, _, _ = helpers._split_snippets(tweets, vocab, flip_share=0.1, seed=0)
    # the same model and recipe as test_nearest._train_quickly, one checkpoint per epoch
    torch.manual_seed(0)
    model = RNNClassifier(
        2, vocab_size=len(vocab), embedding_dim=32, hidden_size=32, cell="gru", pooling="mean"
    )
    result = mislabel_detection(model, clean, share=0.1, epochs=4, lr=5e-3, seed=0)
    print(f"\ntweets, {len(clean)} training snippets, GRU trained on flipped labels:")
    print(result.summary())
    for method, found in result.found.items():
        assert found[0.1] > 0.3 and found[0.2] > 0.45, (method, found)  # random: 0.1, 0.2


# ---------------------------------------------------------------------------- search
@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_exact_search_block_top_k_equals_a_full_sort(metric):
    """Long rows take the block pre-filtered top-k in exact search (used for the k-NN
    scores above); it must return exactly what sorting every score returns."""
    from captum_rnn.influence import exact_search

    g = torch.Generator().manual_seed(2)
    vectors, queries = torch.randn(5000, 8, generator=g), torch.randn(9, 8, generator=g)
    for k in (1, 5, 10):
        idx, scores = exact_search(queries, vectors, k, metric)
        if metric == "euclidean":
            full = torch.cdist(queries, vectors)
            ref_scores, ref_idx = torch.sort(full, dim=1)
        else:
            q = nn.functional.normalize(queries, dim=1) if metric == "cosine" else queries
            v = nn.functional.normalize(vectors, dim=1) if metric == "cosine" else vectors
            ref_scores, ref_idx = torch.sort(q @ v.T, dim=1, descending=True)
        assert torch.equal(idx, ref_idx[:, :k])
        torch.testing.assert_close(scores, ref_scores[:, :k], atol=1e-4, rtol=1e-4)


@pytest.mark.network
@pytest.mark.slow
def test_vowels_task_explains_speaker_errors(tmp_path):
    """The speaker-errors task (examples/speaker_errors.py, ``demo --task vowels``)."""
    import json

    from captum_rnn.data import DataUnavailableError
    from captum_rnn.demo._vowels_task import run_vowels_task

    try:
        metrics = run_vowels_task(tmp_path, quick=True, seed=0)
    except DataUnavailableError as err:
        pytest.skip(f"Japanese Vowels unavailable: {err}")
    prototypes = metrics["prototypes"]
    print(
        f"\nvowels (quick): test accuracy {metrics['test_accuracy']:.3f}, nearest-prototype "
        f"{prototypes['nearest_prototype_accuracy']:.3f} vs majority "
        f"{prototypes['majority_baseline']:.3f}\n{metrics['mislabel_detection']['summary']}"
    )
    assert metrics["test_accuracy"] > 0.7
    assert prototypes["nearest_prototype_accuracy"] > prototypes["majority_baseline"] + 0.3
    assert len(metrics["misclassified"]) == metrics["num_misclassified"] > 0
    first = metrics["misclassified"][0]
    assert len(first["neighbor_labels"]) == len(first["neighbor_scores"]) == 5
    for found in metrics["mislabel_detection"]["found"].values():
        assert found["0.1"] > 0.3 and found["0.2"] > 0.45  # random: 0.1, 0.2
    for path in metrics["figures"].values():
        assert Path(path).stat().st_size > 1000
    assert {"neighbors_0", "prototypes", "ig_predicted", "ig_true"} <= set(metrics["figures"])
    saved = json.loads((tmp_path / "vowels_metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"]


def _zoo_dataset(case, n: int = 24) -> list:
    """``(ids without padding, label)`` items from a zoo case's training data."""
    x, lengths, labels = case.train_data
    rows = x if case.batch_first else x.transpose(0, 1)
    return [(rows[i, : int(lengths[i])], int(labels[i])) for i in range(n)]


def test_loss_scores_call_a_users_model_through_the_contract():
    """The IMDB tutorial LSTM: time-major, pad id 1, one logit. Each example's loss is the
    binary cross-entropy of the model called on it alone, as its author calls it."""
    import zoo

    case = zoo.build("imdb_lstm")
    data = _zoo_dataset(case)
    scores = checkpoint_loss_scores(case.model, data, [case.model.state_dict()], output="logits")
    with torch.no_grad():
        by_hand = torch.stack(
            [
                torch.nn.functional.binary_cross_entropy_with_logits(
                    case.model(ids[:, None], torch.tensor([len(ids)]))[0, 0], torch.tensor(float(y))
                )
                for ids, y in data
            ]
        )
    assert torch.allclose(scores, by_hand.float(), atol=1e-5)


def test_mislabel_detection_runs_on_a_users_model():
    import zoo

    case = zoo.build("imdb_lstm")
    result = mislabel_detection(
        case.model, _zoo_dataset(case, 40), share=0.2, methods=("knn", "loss"), epochs=1,
        layers="fc:input", output="logits",
    )  # fmt: skip
    assert set(result.found) == {"knn", "loss"}
    with pytest.raises(ValueError, match="TracIn.*class logits"):
        mislabel_detection(
            case.model, _zoo_dataset(case, 40), share=0.2, methods=("tracin",), epochs=1,
            final_layer="fc", output="logits",
        )  # fmt: skip
