"""NearestExamples: exact search, Captum parity, stale stores, padding, credibility, real data."""

from __future__ import annotations

import random
import tempfile

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset, default_collate

from captum_rnn.attr import NearestExamples
from captum_rnn.data import PadCollate, SequenceDataset, pad_collate
from captum_rnn.influence import (
    ExactIndex,
    ExampleStore,
    StaleStoreError,
    conformal_p_values,
    deep_knn_credibility,
    exact_search,
    knn_nonconformity,
    make_index,
    novelty_scores,
    recall_at_k,
)

from conftest import token_model

# ---------------------------------------------------------------------------- helpers


def token_data(n: int = 90, seed: int = 0, vocab: int = 30) -> SequenceDataset:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 12, (n,), generator=g)
    seqs = [torch.randint(2, vocab, (int(length),), generator=g) for length in lengths]
    labels = torch.randint(0, 2, (n,), generator=g)
    return SequenceDataset(seqs, labels)


def brute_force(queries, vectors, k, metric):
    """Reference: full score matrix, then one top-k."""
    q, v = queries.double(), vectors.double()
    if metric == "cosine":
        scores = (q / q.norm(dim=1, keepdim=True)) @ (v / v.norm(dim=1, keepdim=True)).T
        return torch.topk(scores, k, dim=1)
    if metric == "dot":
        return torch.topk(q @ v.T, k, dim=1)
    return torch.topk(torch.cdist(q, v), k, dim=1, largest=False)


def encode_all(model, dataset):
    """Reference encoding: pooled states of every example, one at a time, no padding."""
    with torch.no_grad():
        return torch.cat([model.encode(seq[None])[2] for seq, _ in dataset])


class Blobs(nn.Module):
    """A transparent 'sequence model': mean over real steps, then nearest-centre logits."""

    def __init__(self, centres: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("centres", centres)
        self.scale = nn.Parameter(torch.ones(()))
        self.representation = nn.Identity()

    def encode(self, x, lengths=None):
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1])
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None].cpu()
        states = x * mask[..., None].to(x)
        pooled = states.sum(1) / lengths[:, None].to(x)
        return states, mask, self.representation(pooled * self.scale)

    def forward(self, x, lengths=None):
        pooled = self.encode(x, lengths)[2]
        return pooled @ self.centres.T - 0.5 * (self.centres**2).sum(1)


CENTRES = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])


def blob_data(n_per_class: int, seed: int, noise: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    seqs, labels = [], []
    for label, centre in enumerate(CENTRES):
        for _ in range(n_per_class):
            length = int(torch.randint(2, 6, (1,), generator=g))
            point = centre + noise * torch.randn(2, generator=g)
            seqs.append(point.repeat(length, 1) + 0.05 * torch.randn(length, 2, generator=g))
            labels.append(label)
    return SequenceDataset(seqs, labels)


# ---------------------------------------------------------------------------- exact search


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("chunk_size", [7, 64, 100000])
def test_exact_search_matches_brute_force(metric, chunk_size):
    g = torch.Generator().manual_seed(1)
    vectors, queries = torch.randn(300, 16, generator=g), torch.randn(11, 16, generator=g)
    idx, scores = exact_search(queries, vectors, 9, metric, chunk_size=chunk_size)
    ref_scores, ref_idx = brute_force(queries, vectors, 9, metric)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(scores.double(), ref_scores, atol=1e-4, rtol=1e-4)


def test_exact_index_on_memory_mapped_vectors(tmp_path):
    data = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", data)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    queries = torch.randn(5, 8)
    index = ExactIndex(mapped, metric="euclidean", chunk_size=64)
    idx, _ = index.search(queries, 4)
    assert torch.equal(idx, brute_force(queries, torch.from_numpy(data), 4, "euclidean")[1])


def test_search_validation():
    vectors = torch.randn(10, 4)
    with pytest.raises(ValueError, match="top_k=11 is larger than the training set"):
        exact_search(torch.randn(1, 4), vectors, 11)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        exact_search(torch.randn(1, 4), vectors, 0)
    with pytest.raises(ValueError, match=r"top_k must be an int in \[1, 10\]"):
        exact_search(torch.randn(1, 4), vectors, 2.0)
    with pytest.raises(ValueError, match=r"top_k must be an int in \[1, 10\], got 2.5"):
        exact_search(torch.randn(1, 4), vectors, 2.5)
    with pytest.raises(ValueError, match="metric must be one of"):
        exact_search(torch.randn(1, 4), vectors, 2, metric="manhattan")
    with pytest.raises(ValueError, match="queries must be a tensor"):
        exact_search(torch.randn(1, 5), vectors, 2)
    with pytest.raises(ValueError, match="index must be one of"):
        make_index("annoy", vectors)
    assert recall_at_k(torch.tensor([[1, 2]]), torch.tensor([[2, 1]])) == 1.0


def test_faiss_backend_recall():
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(0)
    vectors, queries = torch.randn(3000, 16, generator=g), torch.randn(20, 16, generator=g)
    for metric in ("cosine", "euclidean"):
        approx = make_index("faiss", vectors, metric).search(queries, 10)
        exact = make_index("exact", vectors, metric).search(queries, 10)
        assert recall_at_k(approx[0], exact[0]) >= 0.9
        assert approx[1].shape == (20, 10)


def test_hnsw_backend_recall():
    pytest.importorskip("hnswlib")
    g = torch.Generator().manual_seed(0)
    vectors, queries = torch.randn(3000, 16, generator=g), torch.randn(20, 16, generator=g)
    approx = make_index("hnsw", vectors, "cosine").search(queries, 10)
    exact = make_index("exact", vectors, "cosine").search(queries, 10)
    assert recall_at_k(approx[0], exact[0]) >= 0.9
    torch.testing.assert_close(approx[1], exact[1], atol=1e-3, rtol=1e-3)


# ---------------------------------------------------------------------------- NearestExamples


@pytest.mark.parametrize("config", ["lstm-last", "gru-bi-mean", "lstm-bi-additive"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_influence_equals_brute_force(config, metric):
    model = token_model(config)
    data = token_data()
    queries = token_data(13, seed=5)
    ids, lengths, _ = pad_collate([queries[i] for i in range(len(queries))])
    reference = brute_force(encode_all(model, queries), encode_all(model, data), 6, metric)
    for batch_size in (7, 256):  # a top_k larger than the last training batch too
        nearest = NearestExamples(model, data, metric=metric, batch_size=batch_size, chunk_size=10)
        idx, scores = nearest.influence(ids, top_k=6)["pooled"]
        assert idx.shape == scores.shape == (13, 6)
        assert torch.equal(idx, reference[1])
        torch.testing.assert_close(scores.double(), reference[0], atol=1e-4, rtol=1e-4)
        # one query at a time gives the same rows
        single = nearest.influence(ids[3:4], top_k=6)["pooled"][0]
        assert torch.equal(single[0], idx[3])


def test_padding_is_never_evidence():
    model = token_model("gru-bi-mean")
    data = token_data()
    ids, _, _ = pad_collate([data[i] for i in range(5)])
    wide = torch.zeros(5, 40, dtype=torch.long)
    wide[:, : ids.shape[1]] = ids
    plain = NearestExamples(model, data, layers=["step_states", "representation"], batch_size=16)
    padded = NearestExamples(
        model,
        data,
        layers=["step_states", "representation"],
        batch_size=16,
        collate_fn=PadCollate(pad_to=50),
    )
    a, b = plain.influence(ids, top_k=4), padded.influence(wide, top_k=4)
    for layer in ("step_states", "representation"):
        assert torch.equal(a[layer][0], b[layer][0])
        torch.testing.assert_close(a[layer][1], b[layer][1])
    np.testing.assert_allclose(
        plain.store.vectors["step_states"], padded.store.vectors["step_states"], atol=1e-5
    )


def test_continuous_inputs_with_lengths_as_additional_args():
    train, test = blob_data(20, seed=0), blob_data(3, seed=1)
    model = Blobs(CENTRES)
    nearest = NearestExamples(model, train, metric="euclidean", batch_size=8)
    x, lengths, _ = pad_collate([test[i] for i in range(len(test))])
    wide = torch.cat([x, torch.full((x.shape[0], 7, 2), 99.0)], dim=1)  # junk past the end
    idx, dist = nearest.influence(wide, top_k=3, additional_forward_args=(lengths,))["pooled"]
    reference = brute_force(encode_all(model, test), encode_all(model, train), 3, "euclidean")
    assert torch.equal(idx, reference[1])
    torch.testing.assert_close(dist.double(), reference[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_influence_equals_captum_similarity_influence(metric, tmp_path):
    from captum.influence import SimilarityInfluence
    from captum.influence._core.similarity_influence import euclidean_distance

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8), nn.Identity(), nn.Linear(8, 3)
    ).eval()
    train = TensorDataset(torch.randn(60, 6), torch.randint(0, 3, (60,)))
    queries = torch.randn(9, 6)
    # Captum crashes on a single layer and on a top_k above its last batch: two layers, 60 % 10 == 0
    kwargs = (
        {}
        if metric == "cosine"
        else dict(similarity_metric=euclidean_distance, similarity_direction="min")
    )
    captum = SimilarityInfluence(model, ["2", "3"], train, str(tmp_path), batch_size=10, **kwargs)
    expected = captum.influence(queries, top_k=5)
    ours = NearestExamples(
        model, train, layers=["2", "3"], metric=metric, collate_fn=default_collate
    )
    result = ours.influence(queries, top_k=5)
    assert set(result) == {"2", "3"}
    for layer in ("2", "3"):
        assert torch.equal(result[layer][0], expected[layer][0])
        torch.testing.assert_close(result[layer][1], expected[layer][1], atol=1e-5, rtol=1e-5)


def test_stale_store_is_refused(tmp_path):
    model = token_model("lstm-last")
    data = token_data()
    ids, _, _ = pad_collate([data[i] for i in range(3)])
    nearest = NearestExamples(model, data, store_path=tmp_path / "store")
    before = nearest.influence(ids, top_k=3)["pooled"]
    with torch.no_grad():
        model.head.weight.add_(0.0)  # touching without changing the values is fine
    assert torch.equal(nearest.influence(ids, top_k=3)["pooled"][0], before[0])
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(1.5)
    with pytest.raises(StaleStoreError, match="weights changed since the training set was encoded"):
        nearest.influence(ids, top_k=3)
    with pytest.raises(StaleStoreError):
        nearest.neighbors(ids)
    with pytest.raises(StaleStoreError):
        NearestExamples.load(tmp_path / "store", model, data)
    nearest.fit()  # re-encoding makes it usable again
    assert nearest.influence(ids, top_k=3)["pooled"][0].shape == (3, 3)


def test_memory_mapped_store_save_and_load(tmp_path):
    model = token_model("gru-dot")
    data = token_data()
    ids, _, _ = pad_collate([data[i] for i in range(4)])
    in_memory = NearestExamples(model, data, batch_size=16)
    mapped = NearestExamples(model, data, batch_size=16, store_path=tmp_path / "s")
    assert isinstance(mapped.store.vectors["pooled"], np.memmap)
    a, b = in_memory.influence(ids, top_k=5), mapped.influence(ids, top_k=5)
    assert torch.equal(a["pooled"][0], b["pooled"][0])
    in_memory.save(tmp_path / "copy")
    loaded = NearestExamples.load(tmp_path / "copy", model, data, verify_data=True)
    assert torch.equal(loaded.influence(ids, top_k=5)["pooled"][0], a["pooled"][0])
    store = ExampleStore.load(tmp_path / "copy", mmap=False)
    assert store.nbytes <= 1.5 * store.vector_nbytes
    np.testing.assert_array_equal(store.labels, data.targets.numpy())
    other = token_data(seed=9)
    with pytest.raises(ValueError, match="differs from the data"):
        NearestExamples.load(tmp_path / "copy", model, other, verify_data=True)
    with pytest.raises(ValueError, match="not a saved ExampleStore"):
        ExampleStore.load(tmp_path / "nothing")


def test_neighbors_labels_predictions_and_agreement():
    model = Blobs(CENTRES)
    train = blob_data(15, seed=0)
    nearest = NearestExamples(model, train, metric="euclidean", batch_size=10)
    x, lengths, y = pad_collate([blob_data(2, seed=3)[i] for i in range(6)])
    result = nearest.neighbors(x, top_k=4, additional_forward_args=lengths)
    assert torch.equal(result.labels, train.targets[result.indices])
    assert torch.equal(result.query_predictions, y)  # well separated blobs
    expected = (result.labels == result.query_predictions[:, None]).float().mean(1)
    torch.testing.assert_close(result.agreement, expected)
    assert float(result.agreement.min()) == 1.0
    assert result.predictions.shape == (6, 4) and result.novelty is None


def test_top_k_and_input_errors():
    model = token_model("lstm-last")
    data = token_data(20)
    nearest = NearestExamples(model, data, batch_size=3)
    ids = torch.tensor([[3, 4, 5]])
    assert nearest.influence(ids, top_k=20)["pooled"][0].shape == (1, 20)  # top_k > batch_size
    with pytest.raises(ValueError, match="top_k=21 is larger than the training set"):
        nearest.influence(ids, top_k=21)
    with pytest.raises(TypeError, match="inputs must be a tensor"):
        nearest.influence([[3, 4]])
    with pytest.raises(ValueError, match="batch size 0"):
        nearest.influence(torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        nearest.influence(torch.tensor([[3, 99]]))
    with pytest.raises(ValueError, match="NaN"):
        NearestExamples(Blobs(CENTRES), blob_data(3, 0)).influence(
            torch.full((1, 2, 2), float("nan"))
        )
    with pytest.raises(ValueError, match="no submodule 'nope'"):
        NearestExamples(model, data, layers="nope")
    with pytest.raises(ValueError, match="returns a tuple"):
        NearestExamples(model, data, layers="rnn")
    with pytest.raises(ValueError, match="metric must be one of"):
        NearestExamples(model, data, metric="l1")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        NearestExamples(model, data, batch_size=0)
    with pytest.raises(ValueError, match="train_dataset is empty"):
        NearestExamples(model, SequenceDataset([], []))
    with pytest.raises(ValueError, match="does not have"):
        NearestExamples(nn.Linear(2, 2), data)
    with pytest.raises(TypeError, match="map-style"):
        NearestExamples(model, iter([]))


def test_a_tuple_returning_layer_is_refused_at_run_time():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    model = nn.Sequential(nn.Linear(3, 3), Pair())
    nearest = NearestExamples(
        model,
        TensorDataset(torch.randn(5, 3), torch.zeros(5)),
        layers="1",
        collate_fn=default_collate,
    )
    with pytest.raises(TypeError, match="not a tensor"):
        nearest.fit()


def test_explaining_changes_nothing():
    model = token_model("lstm-bi-additive").train()
    model.embedding.weight.requires_grad_(False)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    data = token_data()
    nearest = NearestExamples(model, data, layers=["step_states", "representation"])
    ids, _, _ = pad_collate([data[i] for i in range(4)])
    nearest.influence(ids)
    default = NearestExamples(model, data)
    default.neighbors(ids)
    with pytest.raises(ValueError):
        default.influence(torch.tensor([[3, 500]]))  # raises inside the forward pass
    assert all(m.training for m in model.modules())
    assert "encode" not in model.__dict__
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    for key, value in model.state_dict().items():
        assert torch.equal(value, params[key])
    assert all(not m._forward_hooks for m in model.modules())
    assert torch.is_grad_enabled()


def test_results_are_deterministic():
    model = token_model("gru-bi-mean")
    data = token_data()
    ids, _, _ = pad_collate([data[i] for i in range(6)])
    a = NearestExamples(model, data, batch_size=8).influence(ids, top_k=7)["pooled"]
    b = NearestExamples(model, data, batch_size=32).influence(ids, top_k=7)["pooled"]
    assert torch.equal(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


# ---------------------------------------------------------------------------- credibility


def test_conformal_pieces():
    alpha = knn_nonconformity([torch.tensor([[0, 1, 1]]), torch.tensor([[1, 1, 1]])], 3)
    assert alpha.tolist() == [[5.0, 1.0, 6.0]]
    p = conformal_p_values(alpha, torch.tensor([0.0, 1.0, 2.0, 5.0]))
    assert p.tolist() == [[0.25, 0.75, 0.0]]
    result = deep_knn_credibility([torch.tensor([[2, 2, 2]])], torch.tensor([0.0, 0.0, 3.0]), 3)
    assert result.predictions.tolist() == [2] and result.credibility.tolist() == [1.0]
    # the other classes have 3 disagreements: p = 1/3, so confidence = 1 - 1/3
    torch.testing.assert_close(result.confidence, torch.tensor([2 / 3]))
    novelty = novelty_scores(torch.tensor([0.0, 2.5]), torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(novelty, torch.tensor([0.0, 2 / 3]))


def test_deep_knn_credibility_and_novelty():
    model = Blobs(CENTRES)
    nearest = NearestExamples(model, blob_data(30, seed=0), metric="euclidean", batch_size=16)
    with pytest.raises(RuntimeError, match="calibrate"):
        nearest.credibility(torch.zeros(1, 2, 2))
    nearest.calibrate(blob_data(10, seed=1), top_k=10)
    typical = CENTRES[:, None, :].repeat(1, 3, 1)  # three sequences sitting on the centres
    between = torch.tensor([[[2.0, 2.0]] * 3])  # halfway between classes 0 and 1
    far = torch.tensor([[[40.0, -40.0]] * 3])
    typical_result = nearest.credibility(typical)
    assert typical_result.predictions.tolist() == [0, 1, 2]
    assert float(typical_result.credibility.min()) > 0.5
    assert float(nearest.credibility(between).credibility[0]) < float(
        typical_result.credibility.min()
    )
    novelty = nearest.novelty(torch.cat([typical, far]))
    assert float(novelty[-1]) == 1.0 and float(novelty[:3].max()) < 0.9
    result = nearest.neighbors(far, top_k=3)
    assert result.novelty is not None and float(result.novelty[0]) == 1.0


def test_label_disagreement_finds_flipped_labels():
    train = blob_data(40, seed=0)
    flipped = torch.tensor([3, 50, 100])
    labels = train.targets.clone()
    labels[flipped] = (labels[flipped] + 1) % 3
    noisy = SequenceDataset(train.sequences, labels)
    nearest = NearestExamples(Blobs(CENTRES), noisy, metric="euclidean")
    scores = nearest.label_disagreement(top_k=8)
    assert scores.shape == (120,)
    assert set(torch.topk(scores, 3).indices.tolist()) == set(flipped.tolist())


# ---------------------------------------------------------------------------- real data


def _split_snippets(snippets, vocab, flip_share: float, seed: int):
    rng = random.Random(seed)
    items = [(vocab.encode(t), y) for t, y in zip(snippets.texts, snippets.labels, strict=True)]
    items = [(ids, y) for ids, y in items if ids]
    rng.shuffle(items)
    test, train = items[: len(items) // 5], items[len(items) // 5 :]
    flips = [rng.random() < flip_share for _ in train]
    noisy = [1 - y if f else y for (_, y), f in zip(train, flips, strict=True)]
    as_ds = lambda pairs, ys: SequenceDataset([p[0] for p in pairs], ys)  # noqa: E731
    return (
        as_ds(train, [y for _, y in train]),
        as_ds(train, noisy),
        as_ds(test, [y for _, y in test]),
        torch.tensor(flips),
    )


def _train_quickly(train, vocab_size: int, seed: int = 0):
    from torch.utils.data import DataLoader

    from captum_rnn.models import RNNClassifier

    torch.manual_seed(seed)
    model = RNNClassifier(
        2, vocab_size=vocab_size, embedding_dim=32, hidden_size=32, cell="gru", pooling="mean"
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    loader = DataLoader(
        train,
        batch_size=64,
        shuffle=True,
        collate_fn=pad_collate,
        generator=torch.Generator().manual_seed(seed),
    )
    for _ in range(4):
        for x, lengths, y in loader:
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x, lengths), y).backward()
            optimiser.step()
    return model.eval()


@pytest.fixture
def one_thread():
    """Small models on a shared, busy machine train far faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.network
def test_real_tweets_prototypes_and_mislabel_detection(one_thread):
    from captum_rnn.data import DataUnavailableError, Vocabulary, load_sentiment_snippets
    from captum_rnn.influence import nearest_prototype_predict

    try:
        tweets = load_sentiment_snippets("tweets")
    except DataUnavailableError as err:
        pytest.skip(f"sentiment snippets unavailable: {err}")
    vocab = Vocabulary.build(tweets.texts, min_freq=2)
    clean, noisy, test, flips = _split_snippets(tweets, vocab, flip_share=0.1, seed=0)

    # nearest-prototype classifier of a model trained on clean labels
    model = _train_quickly(clean, len(vocab))
    nearest = NearestExamples(model, clean)
    evaluation = nearest.prototype_accuracy(test, k_per_class=10)
    held_out = nearest._encode_dataset(test)
    queries = nearest._kernel_space(held_out.vectors["pooled"])
    space = nearest._kernel_space(nearest.store.vectors["pooled"])
    labels, truth = nearest.store.labels_tensor(), held_out.labels_tensor()
    random_accuracy = []
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        picks = torch.cat(
            [
                torch.nonzero(labels == c)[:, 0][
                    torch.randperm(int((labels == c).sum()), generator=g)[:10]
                ]
                for c in (0, 1)
            ]
        )
        predicted = nearest_prototype_predict(queries, space[picks], labels[picks], "euclidean")
        random_accuracy.append(float((predicted == truth).float().mean()))
    print(
        f"\ntweets ({len(clean)} train / {len(test)} test): nearest-prototype accuracy "
        f"{evaluation.prototype_accuracy:.3f} (10 MMD prototypes per class), model "
        f"{evaluation.model_accuracy:.3f}, majority baseline {evaluation.majority_baseline:.3f}, "
        f"random prototypes {np.mean(random_accuracy):.3f} +- {np.std(random_accuracy):.3f}"
    )
    assert evaluation.prototype_accuracy > evaluation.majority_baseline + 0.05
    assert evaluation.prototype_accuracy > evaluation.model_accuracy - 0.1

    # mislabel detection: 10% of training labels flipped, model trained on them
    model = _train_quickly(noisy, len(vocab))
    scores = NearestExamples(model, noisy).label_disagreement(top_k=10)
    order = torch.argsort(scores, descending=True, stable=True)
    found = {}
    for share in (0.1, 0.2):
        checked = order[: int(share * len(order))]
        found[share] = float(flips[checked].sum() / flips.sum())
    print(
        f"mislabel detection by k-NN label disagreement ({int(flips.sum())} flips): "
        f"{found[0.1]:.2f} found in the top 10% (random 0.10), {found[0.2]:.2f} in the top 20% "
        "(random 0.20)"
    )
    assert found[0.1] > 0.25 and found[0.2] > 0.4


@pytest.mark.gpu
def test_nearest_examples_on_gpu():
    model = token_model("lstm-bi-additive").cuda()
    data = token_data()
    ids, _, _ = pad_collate([data[i] for i in range(5)])
    gpu = NearestExamples(model, data).influence(ids, top_k=4)["pooled"]
    cpu = NearestExamples(model.cpu(), data).influence(ids, top_k=4)["pooled"]
    assert torch.equal(gpu[0], cpu[0])
    torch.testing.assert_close(gpu[1], cpu[1], atol=1e-4, rtol=1e-4)


def test_store_in_a_temporary_directory_is_plain_files():
    model = token_model("lstm-last")
    with tempfile.TemporaryDirectory() as path:
        NearestExamples(model, token_data(12), store_path=path).fit()
        import os

        assert sorted(os.listdir(path)) == [
            "labels.npy",
            "predictions.npy",
            "store.json",
            "vectors_0.npy",
        ]


def test_a_saved_store_remembers_which_call_and_pooling_it_encoded(tmp_path):
    """``call=`` and ``sequence_pooling=`` change the stored vectors: loading takes the
    saved ones by default and refuses others (the vectors would silently mismatch)."""
    model = token_model("gru-dot")
    data = token_data()
    ids, _, _ = pad_collate([data[i] for i in range(4)])
    first = NearestExamples(model, data, layers=["step_states"], call=0, batch_size=16)
    first.save(tmp_path / "first")
    loaded = NearestExamples.load(tmp_path / "first", model, data)
    assert loaded.call == 0 and loaded.layers == ["step_states"]
    want = first.influence(ids, top_k=3)["step_states"][0]
    assert torch.equal(loaded.influence(ids, top_k=3)["step_states"][0], want)
    with pytest.raises(ValueError, match="encoded with call=0.*pass call=0"):
        NearestExamples.load(tmp_path / "first", model, data, call="last")
    with pytest.raises(ValueError, match="encoded with sequence_pooling="):
        NearestExamples.load(tmp_path / "first", model, data, sequence_pooling="max")
