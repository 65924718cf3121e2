"""Train an attention LSTM on human-rated tweets and explain it with Captum directly.

Shows the two ways in: Captum's own LayerIntegratedGradients on the embedding (with
lengths passed as an additional forward argument), and captum_rnn.explain, which
returns Explanation objects that plot and save themselves.

    python examples/sentiment_integrated_gradients.py
"""

from __future__ import annotations

import pytorch_lightning as pl
from captum.attr import LayerIntegratedGradients

import captum_rnn
from captum_rnn.data import SequenceDataModule, Vocabulary, load_sentiment_snippets
from captum_rnn.models import RNNClassifier


def main() -> None:
    pl.seed_everything(0)
    tweets = load_sentiment_snippets("tweets")
    vocab = Vocabulary.build(tweets.texts, min_freq=2)
    datamodule = SequenceDataModule(tweets.to_dataset(vocab), batch_size=64)
    model = RNNClassifier(
        2,
        vocab_size=len(vocab),
        hidden_size=64,
        bidirectional=True,
        attention="additive",
        dropout=0.2,
    )
    trainer = pl.Trainer(max_epochs=5, logger=False, enable_checkpointing=False)
    trainer.fit(model, datamodule)
    print(trainer.test(model, datamodule, verbose=False))

    texts = ["I love this so much :)", "worst service ever, never again", "not bad at all"]
    ids, lengths = vocab.encode_batch(texts)
    model.eval()

    # 1. Captum, called the Captum way.
    lig = LayerIntegratedGradients(model, model.embedding)
    attributions, delta = lig.attribute(
        ids, target=1, additional_forward_args=(lengths,), return_convergence_delta=True
    )
    print("Captum LayerIG per token:", attributions.sum(-1)[0, : lengths[0]].tolist(), delta)

    # 2. captum_rnn.explain: explanations without padding, with adaptive IG steps.
    explanations = captum_rnn.explain(model, texts, vocab=vocab)
    for e in explanations:
        print(e.title(), e.top(3))
    explanations.plot().savefig("tweets_ig.png", dpi=110)
    with open("tweets_ig.html", "w", encoding="utf-8") as f:
        f.write(explanations.to_html("Integrated gradients on tweets"))
    explanations.save("tweets_ig.json")


if __name__ == "__main__":
    main()
