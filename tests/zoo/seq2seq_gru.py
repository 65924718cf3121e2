"""A GRU encoder-decoder with additive (Bahdanau) attention, written like bentrevett's
"Neural Machine Translation by Jointly Learning to Align and Translate" tutorial: time-major,
a bidirectional GRU encoder, its own Attention module and a decoder with its own embedding.

Toy task: copy a short string of digits, ``<sos> d1 .. dn <eos>`` -> ``<sos> d1 .. dn <eos>``.
Not a classifier: the case's labels are the target ids (trg_len, B)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from zoo import ZooCase

PAD_IDX = 0
SOS_IDX = 1
EOS_IDX = 2
FIRST_DIGIT = 3
VOCAB_SIZE = 12  # <pad>, <sos>, <eos> and nine digits
MIN_DIGITS = 2
MAX_DIGITS = 6
EPOCHS = 10


class Encoder(nn.Module):
    def __init__(self, input_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim, padding_idx=PAD_IDX)
        self.rnn = nn.GRU(emb_dim, enc_hid_dim, bidirectional=True)
        self.fc = nn.Linear(enc_hid_dim * 2, dec_hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        # src = [src len, batch size]
        embedded = self.dropout(self.embedding(src))
        # embedded = [src len, batch size, emb dim]
        outputs, hidden = self.rnn(embedded)
        # outputs = [src len, batch size, enc hid dim * 2]
        # hidden = [n layers * num directions, batch size, enc hid dim]
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)))
        # hidden = [batch size, dec hid dim]
        return outputs, hidden


class Attention(nn.Module):
    def __init__(self, enc_hid_dim, dec_hid_dim):
        super().__init__()
        self.attn = nn.Linear((enc_hid_dim * 2) + dec_hid_dim, dec_hid_dim)
        self.v = nn.Linear(dec_hid_dim, 1, bias=False)

    def forward(self, hidden, encoder_outputs):
        # hidden = [batch size, dec hid dim]
        # encoder_outputs = [src len, batch size, enc hid dim * 2]
        batch_size = encoder_outputs.shape[1]
        src_len = encoder_outputs.shape[0]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        # energy = [batch size, src len, dec hid dim]
        attention = self.v(energy).squeeze(2)
        # attention = [batch size, src len]
        assert attention.shape == (batch_size, src_len)
        return F.softmax(attention, dim=1)


class Decoder(nn.Module):
    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout, attention):
        super().__init__()
        self.output_dim = output_dim
        self.attention = attention
        self.embedding = nn.Embedding(output_dim, emb_dim, padding_idx=PAD_IDX)
        self.rnn = nn.GRU((enc_hid_dim * 2) + emb_dim, dec_hid_dim)
        self.fc_out = nn.Linear((enc_hid_dim * 2) + dec_hid_dim + emb_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, encoder_outputs):
        # input = [batch size], hidden = [batch size, dec hid dim]
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        # embedded = [1, batch size, emb dim]
        a = self.attention(hidden, encoder_outputs).unsqueeze(1)
        # a = [batch size, 1, src len]
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        weighted = torch.bmm(a, encoder_outputs).permute(1, 0, 2)
        # weighted = [1, batch size, enc hid dim * 2]
        rnn_input = torch.cat((embedded, weighted), dim=2)
        output, hidden = self.rnn(rnn_input, hidden.unsqueeze(0))
        embedded = embedded.squeeze(0)
        output = output.squeeze(0)
        weighted = weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        # prediction = [batch size, output dim]
        return prediction, hidden.squeeze(0)


class Seq2Seq(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, src, trg, teacher_forcing_ratio=0.5):
        # src = [src len, batch size], trg = [trg len, batch size]
        batch_size = src.shape[1]
        trg_len = trg.shape[0]
        trg_vocab_size = self.decoder.output_dim
        outputs = torch.zeros(trg_len, batch_size, trg_vocab_size, device=src.device)
        encoder_outputs, hidden = self.encoder(src)
        # first input to the decoder is the <sos> token
        input = trg[0, :]
        for t in range(1, trg_len):
            output, hidden = self.decoder(input, hidden, encoder_outputs)
            outputs[t] = output
            teacher_force = random.random() < teacher_forcing_ratio
            top1 = output.argmax(1)
            input = trg[t] if teacher_force else top1
        return outputs


def make_pairs(n, generator):
    """(src (T, n), src lengths (n,), trg (T, n)), time-major, padded with <pad> = 0.
    The target is the source itself; T = MAX_DIGITS + 2 and the first pair has full length."""
    n_digits = torch.randint(MIN_DIGITS, MAX_DIGITS + 1, (n,), generator=generator)
    n_digits[0] = MAX_DIGITS
    max_len = MAX_DIGITS + 2
    src = torch.full((max_len, n), PAD_IDX, dtype=torch.long)
    digits = torch.randint(FIRST_DIGIT, VOCAB_SIZE, (MAX_DIGITS, n), generator=generator)
    for i in range(n):
        k = int(n_digits[i])
        src[0, i] = SOS_IDX
        src[1 : k + 1, i] = digits[:k, i]
        src[k + 1, i] = EOS_IDX
    return src, n_digits + 2, src.clone()


def token_accuracy(output, trg):
    """Accuracy of output (trg_len, B, V) on the non-pad target tokens after <sos>."""
    pred = output[1:].argmax(-1)
    mask = trg[1:] != PAD_IDX
    return (pred[mask] == trg[1:][mask]).float().mean().item()


def make(seed: int = 0) -> ZooCase:
    torch.manual_seed(seed)
    py_state = random.getstate()
    random.seed(seed)
    try:
        g = torch.Generator().manual_seed(seed)
        train_src, train_len, train_trg = make_pairs(512, g)
        test_src, test_len, test_trg = make_pairs(32, g)

        attn = Attention(16, 16)
        enc = Encoder(VOCAB_SIZE, 8, 16, 16, dropout=0.1)
        dec = Decoder(VOCAB_SIZE, 8, 16, 16, dropout=0.1, attention=attn)
        model = Seq2Seq(enc, dec)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        criterion = nn.CrossEntropyLoss(ignore_index=PAD_IDX)

        batch_size = 64
        for _epoch in range(EPOCHS):
            model.train()
            perm = torch.randperm(train_src.size(1), generator=g)
            for i in range(0, len(perm), batch_size):
                idx = perm[i : i + batch_size]
                src, trg = train_src[:, idx], train_trg[:, idx]
                optimizer.zero_grad()
                output = model(src, trg)
                output_dim = output.shape[-1]
                loss = criterion(output[1:].view(-1, output_dim), trg[1:].reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
    finally:
        random.setstate(py_state)

    model.eval()
    return ZooCase(
        name="seq2seq_gru",
        model=model,
        inputs=test_src,
        lengths=test_len,
        labels=test_trg,
        hints={"embedding": "encoder.embedding", "batch_first": False},
        pad_id=PAD_IDX,
        token=True,
        batch_first=False,
        call=lambda src, lengths: model(src, test_trg, 0.0),
        embedding=model.encoder.embedding,
        train_data=(train_src, train_len, train_trg),
    )
