"""Contextual decomposition of an LSTM (Murdoch, Liu & Yu, ICLR 2018).

For a phrase (a set of time steps), every cell and hidden state of the LSTM is split in
two, ``c_t = beta_t + gamma_t`` and ``h_t = beta^h_t + gamma^h_t``: ``beta`` what comes
from the phrase alone, ``gamma`` what comes from the rest of the sequence and from its
interactions with the phrase. A gate's nonlinearity of a sum of parts (phrase, rest,
bias) is shared out by the Shapley values of that sum (``propagate_three`` /
``propagate_two`` of the paper), so the two parts always add up to the network's own
states, exactly. The phrase's score is the head's weights applied to ``beta`` of the
readout (the final state, or the mean / attention-weighted states, as the head reads
them); it leaves out the head's bias, and scores of different phrases do not add up:
contextual decomposition measures a phrase with its interactions counted against it,
which is what tells "not good" apart from "good".

Stacked layers pass ``beta^h`` / ``gamma^h`` on as the next layer's relevant and
irrelevant inputs; a bidirectional layer decomposes each direction in its own order.
The bias product ``sigmoid(b_i) * tanh(b_g)`` counts as the phrase's at phrase steps and
as the rest's elsewhere (as the reference implementation does). The decomposition
starts from a zero initial state.

Reference: https://arxiv.org/abs/1801.05453 (and the authors' ``cd.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from captum_rnn.attr._decomposition import (
    RecurrentDecomposition,
    _flip,
    _pick,
    direction_weights,
    find_recurrent,
)
from captum_rnn.attr._methods import AttributionMethod, MethodResult
from captum_rnn.models.protocol import adapt

__all__ = ["ContextualDecomposition", "ContextualDecompositionMethod"]

#: compute a phrase's rows from its first relevant step only (False: from step 0, the
#: plain computation the tests compare the shortcut with)
SKIP_UNSTARTED = True


def _three(a: Tensor, b: Tensor, c: Tensor, act: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Shapley split of ``act(a + b + c)`` into the parts of ``a``, ``b`` and ``c`` (the
    bias ``c`` gets ``act(c)``): they add up to ``act(a + b + c)``."""
    ac, bc, abc, cc = act(a + c), act(b + c), act(a + b + c), act(c)
    return 0.5 * (ac - cc + abc - bc), 0.5 * (bc - cc + abc - ac), cc


def _two(a: Tensor, b: Tensor, act: Any) -> tuple[Tensor, Tensor]:
    """Shapley split of ``act(a + b)`` into the parts of ``a`` and ``b``."""
    ab = act(a + b)
    return 0.5 * (act(a) + ab - act(b)), 0.5 * (act(b) + ab - act(a))


def _lstm_states(x: Tensor, weights: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
    """The LSTM's own hidden and cell states ``(rows, time, hidden)`` over ``x`` (float64,
    from a zero state)."""
    w_ih, w_hh, b_ih, b_hh = weights
    hidden = w_hh.shape[1]
    h = c = x.new_zeros(x.shape[0], hidden)
    hs, cs = [], []
    for t in range(x.shape[1]):
        i, f, g, o = (x[:, t] @ w_ih.T + h @ w_hh.T + b_ih + b_hh).split(hidden, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1), torch.stack(cs, 1)


def _direction(
    rel_x: Tensor, irrel_x: Tensor, phrase: Tensor, weights: tuple[Tensor, ...], group: int
) -> tuple[Tensor, Tensor]:
    """One LSTM direction's hidden states split into (phrase, rest) parts.

    Before a row's first phrase step nothing is relevant: its relevant part is 0 and the
    rest is the LSTM's own state, read from one plain run per sequence; the phrase rows
    are computed from their first phrase step on only (half the work for one phrase per
    step).

    Args:
        rel_x / irrel_x: the input's parts ``(rows, time, in)`` float64, in this
            direction's order; they add up to the input. Rows come in runs of ``group``
            rows per sequence (the sequence's phrases).
        phrase: ``(rows, time)`` True at the phrase's steps (where the bias product goes).
        weights: ``(W_ih, W_hh, b_ih, b_hh)`` float64.
        group: rows per sequence.

    Returns:
        ``(beta_h, gamma_h)``, each ``(rows, time, hidden)``.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    hidden = w_hh.shape[1]
    bias = (b_ih + b_hh).split(hidden)
    rows, time = rel_x.shape[:2]
    # the sequences' own states (the rows of one sequence share them)
    own_h, own_c = _lstm_states((rel_x + irrel_x)[::group], weights)
    # a row's first step with anything relevant: its phrase, or a relevant input (above
    # a bidirectional layer the phrase reaches earlier steps through the backward pass)
    relevant = phrase | (rel_x != 0).any(-1)
    first = relevant.to(torch.int64).argmax(1)
    starts = torch.where(relevant.any(1), first, torch.full_like(first, time))
    if not SKIP_UNSTARTED:
        starts = torch.zeros_like(starts)
    order = torch.argsort(starts, stable=True)
    starts, sequence = starts[order], order // group
    rel_x, irrel_x, phrase = rel_x[order], irrel_x[order], phrase[order]
    active = torch.searchsorted(starts, torch.arange(time, device=starts.device), right=True)
    zeros = rel_x.new_zeros(rows, hidden)
    beta_h = beta_c = gamma_h = gamma_c = zeros
    out_beta, out_gamma = [], []
    for t in range(time):
        k = int(active[t])  # rows whose phrase has started by step t (a prefix)
        # the others: nothing relevant yet, the rest is the LSTM's own state
        new_beta_h, new_beta_c = zeros.clone(), zeros.clone()
        new_gamma_h, new_gamma_c = own_h[sequence, t], own_c[sequence, t]
        if k:
            rel = (rel_x[:k, t] @ w_ih.T + beta_h[:k] @ w_hh.T).split(hidden, dim=-1)
            irrel = (irrel_x[:k, t] @ w_ih.T + gamma_h[:k] @ w_hh.T).split(hidden, dim=-1)
            rel_i, irrel_i, bias_i = _three(rel[0], irrel[0], bias[0], torch.sigmoid)
            rel_g, irrel_g, bias_g = _three(rel[2], irrel[2], bias[2], torch.tanh)
            b = rel_i * (rel_g + bias_g) + bias_i * rel_g
            g = irrel_i * (rel_g + irrel_g + bias_g) + (rel_i + bias_i) * irrel_g
            both = (bias_i * bias_g)[None, :]
            inside = phrase[:k, t, None]
            b = b + torch.where(inside, both, 0.0)
            g = g + torch.where(inside, 0.0, both)
            rel_f, irrel_f, bias_f = _three(rel[1], irrel[1], bias[1], torch.sigmoid)
            b = b + (rel_f + bias_f) * beta_c[:k]
            g = g + (rel_f + irrel_f + bias_f) * gamma_c[:k] + irrel_f * beta_c[:k]
            # the output gate is not split: it scales both parts alike
            o = torch.sigmoid(rel[3] + irrel[3] + bias[3])
            tanh_b, tanh_g = _two(b, g, torch.tanh)
            new_beta_c[:k], new_gamma_c[:k] = b, g
            new_beta_h[:k], new_gamma_h[:k] = o * tanh_b, o * tanh_g
        beta_h, beta_c, gamma_h, gamma_c = new_beta_h, new_beta_c, new_gamma_h, new_gamma_c
        out_beta.append(beta_h)
        out_gamma.append(gamma_h)
    back = torch.argsort(order)
    return torch.stack(out_beta, 1)[back], torch.stack(out_gamma, 1)[back]


class ContextualDecomposition(RecurrentDecomposition):
    """Contextual decomposition (Murdoch, Liu & Yu, 2018) of an ``nn.LSTM`` model.

    The model's head must be a linear layer over a readout of one ``nn.LSTM`` (its final
    state, the mean of its states or their attention-weighted sum), as for
    :class:`RecurrentDecomposition`; stacked and bidirectional layers are decomposed
    layer by layer.

    Args:
        model: the user's model (through :func:`captum_rnn.adapt`).
        layer: the ``nn.LSTM`` (dotted name or module) when the model has several.
        head: the linear layer (dotted name or module) reading it, when it cannot be
            found by matching its input.
        hints: the model contract's keywords.

    Example:
        >>> from captum_rnn.models import RNNClassifier
        >>> model = RNNClassifier(2, vocab_size=20, hidden_size=8, embedding_dim=4).eval()
        >>> cd = ContextualDecomposition(model)
        >>> ids = torch.tensor([[4, 5, 6, 7]])
        >>> phrase = torch.tensor([[[False, True, True, False]]])  # one phrase: steps 1-2
        >>> relevant, rest = cd.attribute(ids, phrase)
        >>> relevant.shape
        torch.Size([1, 1, 2])
    """

    def _check_layer(self) -> None:
        if self.rnn.mode != "LSTM":
            raise ValueError(
                f"{self.layer_name} is an nn.{self.rnn.mode}: contextual decomposition is "
                "defined for LSTMs; use method='decomposition' for a GRU"
            )

    def attribute(  # type: ignore[override]
        self,
        inputs: Tensor,
        phrases: Tensor | None = None,
        lengths: Tensor | None = None,
        ids: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Scores of phrases: the head's weights on each phrase's relevant readout.

        Args:
            inputs: token ids ``(batch, time)``, embedded tokens or features
                ``(batch, time, dim)``, batch first.
            phrases: ``(batch, n_phrases, time)`` boolean masks of the steps of each
                phrase; ``None``: every single step, one phrase per step (``n_phrases``
                is ``time``).
            lengths: true lengths ``(batch,)``.
            ids: token ids behind embedded ``inputs``.

        Returns:
            ``(relevant, irrelevant)``, each ``(batch, n_phrases, outputs)`` float64:
            the head's weights (no bias) on the readout's phrase part and on the rest;
            they add up to the head's output minus its bias. 0 for padded steps'
            phrases.
        """
        found = self._locate(inputs, lengths, ids)
        source, real = found.source, found.real
        batch, time = source.shape[:2]
        if phrases is None:
            phrases = torch.eye(time, dtype=torch.bool, device=source.device)
            phrases = phrases[None].expand(batch, time, time)
        phrases = torch.as_tensor(phrases, device=source.device).bool()
        if phrases.dim() != 3 or phrases.shape[0] != batch:
            raise ValueError(
                f"phrases must be (batch={batch}, n_phrases, time) booleans, got "
                f"{tuple(phrases.shape)}"
            )
        if phrases.shape[2] < time:  # the layer ran packed to the longest length
            raise ValueError(f"phrases cover {phrases.shape[2]} steps; the input has {time}")
        phrases = phrases[..., :time] & real[:, None, :]
        n = phrases.shape[1]
        rnn = self.rnn
        width = max(source.shape[-1], 2 * rnn.hidden_size * (2 if rnn.bidirectional else 1))
        # phrases run as extra rows of the batch; a chunk keeps each array under the budget
        chunk = max(1, self.max_elements // max(1, batch * time * width))
        parts = [
            self._readouts(found, phrases[:, first : first + chunk]) for first in range(0, n, chunk)
        ]
        weight = found.head.weight.detach().double()
        relevant = torch.cat([r for r, _ in parts], 1) @ weight.T
        irrelevant = torch.cat([g for _, g in parts], 1) @ weight.T
        return relevant, irrelevant

    #: most elements of one intermediate array (phrases x batch x time x width), float64
    max_elements = 2**24

    def _readouts(self, found: Any, phrases: Tensor) -> tuple[Tensor, Tensor]:
        """The readout's relevant and irrelevant parts ``(batch, n, hidden * directions)``
        for the phrases ``(batch, n, time)``."""
        source, ran, real = found.source, found.ran, found.real
        batch, n, time = phrases.shape
        rows_real = real.repeat_interleave(n, 0)
        rows_ran = ran.repeat_interleave(n, 0)
        phrase = phrases.reshape(batch * n, time)
        x = source.repeat_interleave(n, 0)
        rel_x = x * phrase[..., None]
        irrel_x = x - rel_x
        rnn = self.rnn
        directions = (False, True) if rnn.bidirectional else (False,)
        for layer in range(rnn.num_layers):
            parts = []
            for reverse in directions:
                weights = _layer_weights(rnn, layer, reverse)
                if reverse:
                    a, b, p = (_flip(v, rows_ran) for v in (rel_x, irrel_x, phrase))
                    beta, gamma = _direction(a, b, p, weights, n)
                    beta, gamma = _flip(beta, rows_ran), _flip(gamma, rows_ran)
                else:
                    beta, gamma = _direction(rel_x, irrel_x, phrase, weights, n)
                mask = rows_real[..., None].to(beta.dtype)
                parts.append((beta * mask, gamma * mask))
            rel_x = torch.cat([b for b, _ in parts], -1)
            irrel_x = torch.cat([g for _, g in parts], -1)
        hidden = rnn.hidden_size
        alphas = found.readouts[found.pooling][0]
        readout_rel, readout_irrel = [], []
        for k, reverse in enumerate(directions):
            alpha = alphas[reverse]
            if reverse:  # back to the input's order, as the parts above are
                alpha = _flip(alpha[..., None], ran)[..., 0]
            w = alpha.repeat_interleave(n, 0)[..., None]
            own = slice(k * hidden, (k + 1) * hidden)
            readout_rel.append((w * rel_x[..., own]).sum(1))
            readout_irrel.append((w * irrel_x[..., own]).sum(1))
        return (
            torch.cat(readout_rel, -1).view(batch, n, -1),
            torch.cat(readout_irrel, -1).view(batch, n, -1),
        )


def _layer_weights(rnn: nn.LSTM, layer: int, reverse: bool) -> tuple[Tensor, ...]:
    """``(W_ih, W_hh, b_ih, b_hh)`` of one layer and direction in float64."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    if layer == rnn.num_layers - 1:
        return direction_weights(rnn, reverse)
    w_ih = getattr(rnn, "weight_ih" + suffix).detach().double()
    w_hh = getattr(rnn, "weight_hh" + suffix).detach().double()
    zeros = torch.zeros(w_ih.shape[0], dtype=torch.float64, device=w_ih.device)
    b_ih = getattr(rnn, "bias_ih" + suffix).detach().double() if rnn.bias else zeros
    b_hh = getattr(rnn, "bias_hh" + suffix).detach().double() if rnn.bias else zeros
    return w_ih, w_hh, b_ih, b_hh


class ContextualDecompositionMethod(AttributionMethod):
    """Word-level contextual decomposition of LSTM logits: each step's score is the
    target logit's part that the step alone accounts for, its interactions with the
    rest counted against it (:class:`ContextualDecomposition`, one phrase per step).

    Not additive: the scores do not sum to the logit. No gradients; the baselines are
    not used (the decomposition starts from a zero initial state). Cost: one pass of the
    LSTM per step of the sequence, run as one batch.

    Options: ``layer`` and ``head`` (dotted names) when they cannot be found.
    """

    name = "contextual_decomposition"
    aliases = ("cd",)
    uses_gradients = False

    @staticmethod
    def applies_to(model: nn.Module) -> bool:
        """Models holding one ``nn.LSTM`` (what ``benchmark`` tries by default)."""
        return find_recurrent(adapt(model).module)[1].mode == "LSTM"

    def attribute(self, inputs, baselines, target, lengths, layer=None, head=None):
        cd = ContextualDecomposition(self.model, layer=layer, head=head)
        relevant, _ = cd.attribute(inputs, None, lengths, self.ids)
        time = inputs.shape[1]
        scores = _pick(relevant, target)  # (batch, steps)
        if scores.shape[1] < time:
            scores = nn.functional.pad(scores, (0, time - scores.shape[1]))
        real = self.real_steps(lengths, time).to(scores.dtype)
        scores = scores * real
        spread = (scores[..., None] / inputs.shape[-1]).expand_as(inputs)
        return MethodResult(spread.to(inputs.dtype).clone(), step_scores=scores)
