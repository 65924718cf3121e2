"""The README's Python examples run as written.

Each ```python block of README.md is executed in order in one namespace, as a reader
pasting them would. Names a block uses but does not define (a tagger, a forecaster, an
encoder-decoder, a continuous GRU, a Tomita model, a loader ...) are bound to small objects
of the kind the prose describes just before the block runs; training is cut to a couple
of batches (``pl.Trainer(...)`` gets ``FAST`` first). What a block computes is not checked
here (the tests of each part do that): that it runs is, so that the README cannot drift
from the API.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
import zoo
from torch import nn

from captum_rnn.data import DataUnavailableError, tomita_vocabulary
from captum_rnn.models import RNNClassifier, Seq2SeqAttention

README = Path(__file__).resolve().parents[1] / "README.md"
FAST = dict(
    max_epochs=1,
    limit_train_batches=2,
    limit_val_batches=1,
    limit_predict_batches=2,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def fast(code: str) -> str:
    code = re.sub(r"pl\.Trainer\(max_epochs=\d+\)", "pl.Trainer(**FAST)", code)
    return re.sub(r"pl\.Trainer\((?!\*\*FAST)", "pl.Trainer(**FAST, ", code)


def continuous_gru() -> dict:
    torch.manual_seed(0)
    gru = RNNClassifier(2, input_size=3, cell="gru", hidden_size=8).eval()
    x = torch.randn(2, 6, 3)
    return {
        "gru": gru,
        "model": gru,
        "x": x,
        "lengths": torch.tensor([6, 4]),
        "vitals": [x[:, t] for t in range(x.shape[1])],
        "series": x,
        "train_series": [(torch.randn(6, 3), i % 2) for i in range(12)],
    }


class _Tagger(nn.Module):
    """A batch-first LSTM tagger, (batch, time, tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 6, padding_idx=0)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.tags = nn.Linear(8, 4)
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, ids):
        return self.tags(self.lstm(self.embedding(ids))[0])


def sequence_outputs() -> dict:
    forecaster = zoo.build("multistep_forecaster")
    torch.manual_seed(0)
    seq2seq = Seq2SeqAttention(20, 20, embedding_dim=8, hidden_size=8).eval()
    return {
        "tagger": _Tagger().eval(),
        "ids": torch.tensor([[4, 5, 6, 7, 8], [9, 10, 11, 0, 0]]),
        "forecaster": forecaster.model,
        "x": forecaster.inputs,
        "seq2seq": seq2seq,
        "src": torch.tensor([[5, 6, 7, 8]]),
        "tgt": torch.tensor([[2, 9, 10, 3]]),
        "foils": torch.tensor([[11, 10, 3]]),
    }


def tomita_model() -> dict:
    torch.manual_seed(0)
    vocab = tomita_vocabulary()
    model = RNNClassifier(2, vocab_size=len(vocab), hidden_size=8, embedding_dim=4).eval()
    ids = torch.tensor([[2, 3, 3, 2], [3, 3, 0, 0]])
    return {"model": model, "vocab": vocab, "ids": ids}


def sentiment_fixtures(sentiment: dict) -> dict:
    """The sentiment model of the README's training example, with ids and data sets."""
    vocab = sentiment["vocab"]
    ids, _ = vocab.encode_batch(["a gorgeous, moving film", "dull and far too long"])
    dataset = sentiment["movies"].to_dataset(vocab)
    small = [dataset[j] for j in range(40)]
    return {
        **sentiment,
        "ids": ids,
        "probe_ids": ids,
        "train": small,
        "train_dataset": small,
        "val_dataset": small[:20],
        "loader": sentiment["data"].test_dataloader(),
    }


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_python_example_in_the_readme_runs(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 10, "the README lost its examples?"
    monkeypatch.chdir(tmp_path)  # the examples save files
    namespace: dict = {"FAST": FAST}
    sentiment: dict = {}
    for i, block in enumerate(blocks):
        needs = set(re.findall(r"\b[a-z_][a-z_0-9]*\b", block))
        if "load_sentiment_snippets" in block:
            try:
                exec(compile(fast(block), f"README block {i}", "exec"), namespace)
            except DataUnavailableError as error:
                pytest.skip(f"the sentiment snippets cannot be fetched here: {error}")
            sentiment = {k: namespace[k] for k in ("model", "vocab", "data", "movies")}
            continue
        if "counterfactuals" in needs:  # token model and series model side by side
            namespace.update(continuous_gru())
            namespace.update(sentiment_fixtures(sentiment))
        elif "tagger" in needs or "seq2seq" in needs:
            namespace.update(sequence_outputs())
        elif "vitals" in needs or "time_forward_attributions" in needs or "series" in needs:
            namespace.update(continuous_gru())
        elif "extract_dfa" in needs:
            namespace.update(tomita_model())
        elif "ExplanationLogger" in needs or "benchmark" in needs or "NearestExamples" in needs:
            namespace.update(sentiment_fixtures(sentiment))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(fast(block), f"README block {i}", "exec"), namespace)
