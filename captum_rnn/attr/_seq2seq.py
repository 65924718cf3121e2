"""Encoder-decoder attribution: every target token to the source and the target prefix.

A translation model emits one token per decoder step. :func:`attribute_seq2seq` explains
every emitted token at once, teacher-forced on a given target (or on the model's own
greedy output): integrated gradients over the source embedding *and* over the embedding of
the target prefix the decoder read, one shared forward per integration step and one
backward per output.

The target prefix goes through a *prefix feeder*: the decoder's target embedding is called
once per step, and each call's output is replaced by that step's column of the
interpolated prefix. (Captum's ``LayerIntegratedGradients`` on such an embedding keeps one
call's attribution and silently drops the others.) The start token is held fixed, so
each output's source and prefix scores sum to its logit minus the logit at the baseline,
up to the reported delta.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import Tensor

from captum_rnn._utils.grad import output_gradients
from captum_rnn._utils.options import check_float, check_int
from captum_rnn.attr._linear import weighted_ridge
from captum_rnn.models.protocol import SequenceModel, adapt

__all__ = ["SEQ2SEQ_METHODS", "Seq2SeqAttribution", "attribute_seq2seq", "seq2seq_attention"]

#: The methods :func:`attribute_seq2seq` runs.
SEQ2SEQ_METHODS = (
    "integrated_gradients",
    "saliency",
    "input_x_gradient",
    "feature_ablation",
    "occlusion",
    "kernel_shap",
    "lime",
    "attention",
)


@dataclass
class Seq2SeqAttribution:
    """What :func:`attribute_seq2seq` computed for a batch (batch-first, padded).

    Attributes:
        source: ``(batch, n_outputs, T_src)`` attribution of each output to each source token.
        prefix: ``(batch, n_outputs, n_outputs)``: column ``i`` is output token ``i`` read
            back by the decoder (zero on and above the diagonal); ``None`` for attention.
        target: ``(batch, 1 + n_outputs)`` target ids, ``<s>`` first, padded.
        n_outputs: ``(batch,)`` real output tokens per sequence (after ``<s>``).
        contrast: ``(batch, n_outputs)`` foil ids, or ``None``.
        value: ``(batch, n_outputs)`` the explained number: the target token's logit (minus
            the foil's with ``contrast``).
        probability: ``(batch, n_outputs)`` softmax probability of the predicted token.
        predicted: ``(batch, n_outputs)`` the model's top token at each step.
        delta: ``(batch, n_outputs)`` IG's completeness gap, else ``None``.
        n_steps: integration steps (IG) else ``None``.
    """

    source: Tensor
    prefix: Tensor | None
    target: Tensor
    n_outputs: Tensor
    contrast: Tensor | None
    value: Tensor
    probability: Tensor
    predicted: Tensor
    delta: Tensor | None = None
    n_steps: int | None = None


def _as_layout(seq: SequenceModel, t: Tensor) -> Tensor:
    """Batch-first ``(batch, time, ...)`` to the model's layout and back (a transpose)."""
    return seq.to_native(t)


class _Decoder:
    """Runs an encoder-decoder teacher-forced, optionally feeding embeddings for the source
    (one embedding call) and for the target prefix (per decoder step, or all at once)."""

    def __init__(self, seq: SequenceModel, target_pad: int) -> None:
        if seq.embedding is None or seq.target_embedding is None:
            raise ValueError(
                "an encoder-decoder needs token input: pass embedding= and target_embedding="
            )
        if seq.target_embedding is seq.embedding:
            raise ValueError(
                "the source and the target share one nn.Embedding: captum-rnn cannot tell "
                "their calls apart; give the decoder its own embedding"
            )
        self.seq = seq
        self.target_pad = target_pad
        self.offset = seq.output_offset

    def run(
        self,
        src: Tensor,
        lengths: Tensor,
        fed: Tensor,
        src_emb: Tensor | None = None,
        prefix_emb: Tensor | None = None,
    ) -> tuple[Tensor, int]:
        """Logits ``(batch, T_out, vocab)`` batch-first and the target embedding's calls."""
        seq = self.seq
        kwargs: dict[str, Any] = {seq.target_arg: _as_layout(seq, fed)}
        if seq.forcing_arg:
            kwargs[seq.forcing_arg] = 1.0
        kwargs.update(seq.length_kwargs(src, lengths))
        kwargs.update(seq.extra_kwargs(src.shape[0], src.device))
        calls = [0]

        def feed_source(_m: Any, _a: Any, output: Tensor) -> Tensor:
            return _as_layout(seq, src_emb).to(output.dtype).reshape(output.shape)

        def feed_prefix(_m: Any, _a: Any, output: Tensor) -> Tensor | None:
            c = calls[0]
            calls[0] += 1
            if prefix_emb is None:
                return None
            batch = prefix_emb.shape[0]
            if output.shape[:-1].numel() == batch:  # one decoder step: (B, D), (1, B, D)...
                if c >= prefix_emb.shape[1]:
                    raise ValueError(
                        f"{seq.target_embedding_name} ran {c + 1} times for a target prefix "
                        f"of {prefix_emb.shape[1]} tokens"
                    )
                return prefix_emb[:, c].to(output.dtype).reshape(output.shape)
            if c == 0 and output.shape[:-1].numel() == prefix_emb.shape[:2].numel():
                return _as_layout(seq, prefix_emb).to(output.dtype).reshape(output.shape)
            raise ValueError(
                f"{seq.target_embedding_name} returned shape {tuple(output.shape)}: neither "
                f"one step nor the whole prefix of {tuple(prefix_emb.shape[:2])}; pass "
                "target_embedding= naming the decoder's target embedding"
            )

        handles = [seq.target_embedding.register_forward_hook(feed_prefix)]
        if src_emb is not None:
            handles.append(seq.embedding.register_forward_hook(feed_source))
        try:
            out = seq.module(_as_layout(seq, src), **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, Tensor) or out.dim() != 3:
            raise ValueError(
                "an encoder-decoder must return step logits (batch, T_out, vocab) or "
                f"time-major (T_out, batch, vocab); got {getattr(out, 'shape', type(out))}"
            )
        return _as_layout(seq, out), calls[0]

    def find_offset(self, src: Tensor, lengths: Tensor, bos: Tensor) -> int:
        """The first real output step: the output steps minus the decoder's steps."""
        if self.offset is not None:
            return self.offset
        pad = torch.full_like(bos, self.target_pad)
        probe = torch.stack([bos, pad, pad], dim=1)
        with torch.no_grad():
            out, calls = self.run(src[:1], lengths[:1], probe[:1])
        offset = out.shape[1] - calls
        if calls <= 1 or offset not in (0, 1):
            raise ValueError(
                f"cannot tell which output step is the first prediction (the model returned "
                f"{out.shape[1]} steps for a 3-token target and ran "
                f"{self.seq.target_embedding_name} {calls} times): pass output_offset= "
                "(0 when step 0 predicts the token after <s>, 1 when the model emits a "
                "dummy step 0 first)"
            )
        self.offset = offset
        return offset

    def fed(self, target: Tensor) -> Tensor:
        """The decoder input for a full target ``<s> y_1 .. y_n``: ``n - 1 + offset`` ids."""
        width = target.shape[1] - 1 + self.offset
        if width <= target.shape[1]:
            return target[:, :width]
        pad = torch.full_like(target[:, :1], self.target_pad)
        return torch.cat([target, pad.expand(-1, width - target.shape[1])], dim=1)

    def step_logits(self, src: Tensor, lengths: Tensor, target: Tensor, **feed: Any) -> Tensor:
        """``(batch, n_outputs, vocab)``: output ``j`` predicts ``target[:, j + 1]``."""
        out, _ = self.run(src, lengths, self.fed(target), **feed)
        n_out = target.shape[1] - 1
        if out.shape[1] < self.offset + n_out:
            raise ValueError(
                f"the model returned {out.shape[1]} output steps for {n_out} target tokens "
                f"after <s> with output_offset={self.offset}; is output_offset= right?"
            )
        return out[:, self.offset : self.offset + n_out]

    def embedded(self, src: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Batch-first embeddings, detached: the source, the decoder input for ``target``
        and that input's padding (the prefix baseline)."""
        seq, fed = self.seq, self.fed(target)

        def embed(ids: Tensor) -> Tensor:
            return _as_layout(seq, seq.target_embedding(_as_layout(seq, ids)).detach())

        return seq.embed(src), embed(fed), embed(torch.full_like(fed, self.target_pad))

    @torch.no_grad()
    def generate(
        self, src: Tensor, lengths: Tensor, bos: int, eos: int | None, max_length: int
    ) -> Tensor:
        """Greedy decoding by teacher-forced re-runs: ``(batch, 1 + steps)``, padded after
        ``</s>``."""
        target = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
        self.find_offset(src, lengths, target[:, 0])
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_length):
            grown = torch.cat([target, torch.full_like(target[:, :1], self.target_pad)], dim=1)
            token = self.step_logits(src, lengths, grown)[:, -1].argmax(-1)
            token = token.masked_fill(done, self.target_pad)
            target = grown
            target[:, -1] = token
            if eos is not None:
                done = done | (token == eos)
                if bool(done.all()):
                    break
        return target


@contextmanager
def _no_grad_params(seq: SequenceModel) -> Iterator[None]:
    """Gradients flow to the fed embeddings only; parameters' flags come back after."""
    params = [p for p in seq.module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _per_step_ids(value: Any, name: str, shape: tuple[int, int], device: Any) -> Tensor:
    ids = torch.as_tensor(value, device=device)
    if ids.dtype.is_floating_point or ids.dim() > 2:
        raise ValueError(f"{name} must be a token id, one id per output step, or (batch, steps)")
    try:
        return ids.long().expand(shape).clone() if ids.dim() < 2 else ids.long().reshape(shape)
    except RuntimeError as error:
        raise ValueError(
            f"{name} of shape {tuple(ids.shape)} does not fit {shape[1]} output steps for a "
            f"batch of {shape[0]}"
        ) from error


def _selector(explained: Tensor, foil: Tensor | None) -> Callable[[Tensor], Tensor]:
    """``logits (r * batch, n, vocab) -> (r * batch, n)``: the explained token's logit,
    minus the foil's with a contrast (``r`` copies of the batch, as IG expands it)."""

    def select(logits: Tensor) -> Tensor:
        r = logits.shape[0] // explained.shape[0]
        value = logits.gather(-1, explained.repeat(r, 1)[..., None])[..., 0]
        if foil is not None:
            value = value - logits.gather(-1, foil.repeat(r, 1)[..., None])[..., 0]
        return value

    return select


@dataclass
class _Problem:
    """What every method explains: the batch, its targets and the explained number."""

    dec: _Decoder
    src: Tensor
    lengths: Tensor
    target: Tensor
    n_outputs: Tensor
    #: ``logits -> (rows, n)``: the explained token's logit (minus the foil's)
    select: Callable[[Tensor], Tensor]
    #: the source reference, embedded ``(batch, T_src, dim)``
    src_base: Tensor


def _ig(p: _Problem, n_steps: int, method: str) -> tuple[Tensor, Tensor, Tensor]:
    """Integrated gradients of every output: one forward per integration step shared by the
    outputs, one backward per output. Returns source ``(B, n, T)``, prefix ``(B, n, n + 1)``
    (column 0: ``<s>``, held fixed) and the integrand's endpoint values ``(2, B, n)``."""
    dec, src, lengths, target, select = p.dec, p.src, p.lengths, p.target, p.select
    n_outputs, src_base = p.n_outputs, p.src_base
    src_x, pre_x, pre_b = dec.embedded(src, target)
    pre_b = pre_b.clone()
    pre_b[:, 0] = pre_x[:, 0]  # the start token is not explained
    step_sizes, alphas = approximation_parameters(method)
    sizes, alphas = step_sizes(n_steps), alphas(n_steps)
    batch, n_out = target.shape[0], target.shape[1] - 1
    reps = len(alphas)

    with torch.no_grad():
        ends = torch.stack(
            [
                select(dec.step_logits(src, lengths, target, src_emb=s, prefix_emb=p))
                for s, p in ((src_base, pre_b), (src_x, pre_x))
            ]
        )
    a = torch.tensor(alphas, dtype=src_x.dtype, device=src_x.device)
    src_s = (src_base[None] + a.view(-1, 1, 1, 1) * (src_x - src_base)[None]).flatten(0, 1)
    pre_s = (pre_b[None] + a.view(-1, 1, 1, 1) * (pre_x - pre_b)[None]).flatten(0, 1)
    src_s.requires_grad_(True)
    pre_s.requires_grad_(True)
    w = torch.tensor(sizes, dtype=src_x.dtype, device=src_x.device).view(-1, 1, 1, 1)
    logits = dec.step_logits(
        src.repeat(reps, 1),
        lengths.repeat(reps),
        target.repeat(reps, 1),
        src_emb=src_s,
        prefix_emb=pre_s,
    )
    values = select(logits)
    src_attr = src_x.new_zeros(batch, n_out, src.shape[1])
    pre_attr = src_x.new_zeros(batch, n_out, pre_x.shape[1])
    for rows, (g_src, g_pre) in output_gradients(values, (src_s, pre_s), int(n_outputs.max())):
        g_src = (g_src.unflatten(1, (reps, batch)) * w).sum(1)  # (k, B, T, D)
        g_pre = (g_pre.unflatten(1, (reps, batch)) * w).sum(1)
        src_attr[:, rows] = (g_src * (src_x - src_base)).sum(-1).transpose(0, 1)
        pre_attr[:, rows] = (g_pre * (pre_x - pre_b)).sum(-1).transpose(0, 1)
    return src_attr, pre_attr[:, :, : n_out + 1], ends


def _one_pass_gradients(p: _Problem, method: str) -> tuple[Tensor, Tensor]:
    """Saliency (``|gradient|`` summed over the embedding, as Captum's ``Saliency`` with
    ``abs=True`` summed) or input x gradient of every output: one forward shared by the
    outputs, their backward passes batched. Returns source ``(B, n, T)`` and prefix
    ``(B, n, n + 1)`` (column 0: ``<s>``)."""
    dec, src, lengths, target, select = p.dec, p.src, p.lengths, p.target, p.select
    n_outputs = p.n_outputs
    src_x, pre_x, _ = dec.embedded(src, target)
    src_x, pre_x = src_x.requires_grad_(True), pre_x.requires_grad_(True)
    values = select(dec.step_logits(src, lengths, target, src_emb=src_x, prefix_emb=pre_x))
    batch, n_out = target.shape[0], target.shape[1] - 1
    src_attr = src_x.new_zeros(batch, n_out, src.shape[1])
    pre_attr = src_x.new_zeros(batch, n_out, pre_x.shape[1])
    for rows, (g_src, g_pre) in output_gradients(values, (src_x, pre_x), int(n_outputs.max())):
        if method == "saliency":
            a_src, a_pre = g_src.abs().sum(-1), g_pre.abs().sum(-1)
        else:
            a_src, a_pre = (g_src * src_x).sum(-1), (g_pre * pre_x).sum(-1)
        src_attr[:, rows] = a_src.detach().transpose(0, 1)
        pre_attr[:, rows] = a_pre.detach().transpose(0, 1)
    return src_attr, pre_attr[:, :, : n_out + 1]


def _ablation(p: _Problem, window: int = 1) -> tuple[Tensor, Tensor]:
    """Occlusion of ``window`` consecutive source tokens, and of ``window`` consecutive
    prefix tokens, at every position (stride 1; ``window=1`` is feature ablation): every
    output read from the same perturbed forward, the whole batch at once. A token's
    score is the mean output drop over the windows that cover it, as Captum's
    ``Occlusion`` gives."""
    dec, src, lengths, target, select = p.dec, p.src, p.lengths, p.target, p.select
    src_base = p.src_base
    src_x, pre_x, pre_pad = dec.embedded(src, target)
    with torch.no_grad():
        full = select(dec.step_logits(src, lengths, target, src_emb=src_x, prefix_emb=pre_x))

        def occlude(positions: range, width: int, feed: Any, ends: Tensor) -> Tensor:
            """Windows over ``positions``; sequence ``b`` counts only the windows that
            lie inside its own ``ends[b]`` (as Captum run on it alone would)."""
            total = src_x.new_zeros(*full.shape, positions.stop)
            count = src_x.new_zeros(full.shape[0], positions.stop)
            for first in range(positions.start, max(positions.stop - width, positions.start) + 1):
                cut = slice(first, min(first + width, positions.stop))
                inside = (first + width <= torch.clamp(ends, min=positions.start + width)).to(
                    full.dtype
                )  # (B,)
                drop = (full - select(feed(cut))) * inside[:, None]
                total[..., cut] += drop[..., None]
                count[:, cut] += inside[:, None]
            return total / count.clamp_min(1)[:, None, :]

        def without_source(cut: slice) -> Tensor:
            s = src_x.clone()
            s[:, cut] = src_base[:, cut]
            return dec.step_logits(src, lengths, target, src_emb=s, prefix_emb=pre_x)

        def without_prefix(cut: slice) -> Tensor:
            p = pre_x.clone()
            p[:, cut] = pre_pad[:, cut].detach()
            return dec.step_logits(src, lengths, target, src_emb=src_x, prefix_emb=p)

        src_attr = occlude(
            range(0, src.shape[1]), min(window, src.shape[1]), without_source, lengths
        )
        pre_attr = src_x.new_zeros(*full.shape, full.shape[1] + 1)
        if full.shape[1] > 1:  # prefix tokens 1 .. n-1 (the last output is never read back)
            read_back = full.shape[1] - 1
            n_real = (target[:, 1:] != dec.target_pad).sum(1)  # prefix ends per sequence
            pre_attr[..., : full.shape[1]] = occlude(
                range(1, full.shape[1]), min(window, read_back), without_prefix, n_real
            )
    return src_attr, pre_attr


def _shapley_coalitions(players: int, n_samples: int, device: Any) -> tuple[Tensor, Tensor]:
    """Coalitions ``(S, players)`` (1 = the player keeps its input) and their regression
    weights ``(S,)``. When every coalition fits in ``n_samples``, all of them with the
    exact Shapley kernel weights (the regression then returns the exact Shapley values);
    otherwise coalition sizes drawn from the kernel's size distribution, uniform subsets
    of each size, unit weights (KernelSHAP's sampling). The empty and the full coalition
    always come first, with a weight that makes them hold almost exactly."""
    anchor = torch.stack([torch.zeros(players), torch.ones(players)])
    heavy = torch.full((2,), 1e6)
    if players < 31 and 2**players - 2 <= n_samples:
        codes = torch.arange(1, 2**players - 1)
        z = ((codes[:, None] >> torch.arange(players)) & 1).float()
        k = z.sum(1)
        combinations = torch.exp(
            torch.lgamma(torch.tensor(players + 1.0)) - torch.lgamma(k + 1)
            - torch.lgamma(players - k + 1)
        )  # fmt: skip
        weights = (players - 1) / (combinations * k * (players - k))
    else:
        sizes = torch.arange(1, players, dtype=torch.float64)
        probabilities = (players - 1) / (sizes * (players - sizes))
        k = torch.multinomial(probabilities, n_samples, replacement=True) + 1
        order = torch.rand(n_samples, players).argsort(dim=1)
        z = (order < k[:, None]).float()
        weights = torch.ones(n_samples)
    return torch.cat([anchor, z]).to(device), torch.cat([heavy, weights.float()]).to(device)


def _kernel_shap(
    p: _Problem, n_samples: int, perturbations_per_eval: int
) -> tuple[Tensor, Tensor, int]:
    """KernelSHAP over the source tokens and the prefix tokens ``1 .. n-1``: every output
    read from the same coalition forwards, and one weighted least-squares solve for all
    outputs of all sequences (their design matrix is shared). Returns source ``(B, n, T)``,
    prefix ``(B, n, n + 1)`` and the number of coalitions run."""
    dec, src, lengths, target, select = p.dec, p.src, p.lengths, p.target, p.select
    src_base = p.src_base
    src_x, pre_x, pre_pad = dec.embedded(src, target)
    batch, time, n_out = src.shape[0], src.shape[1], target.shape[1] - 1
    read_back = max(n_out - 1, 0)  # prefix tokens 1 .. n-1 (the last is never read back)
    z, weights = _shapley_coalitions(time + read_back, n_samples, src.device)
    values = []
    with torch.no_grad():
        for chunk in z.split(perturbations_per_eval):
            keep_src = chunk[:, None, :time, None].bool()  # (c, 1, T, 1)
            keep_pre = torch.ones((len(chunk), 1, pre_x.shape[1], 1), dtype=torch.bool,
                                  device=src.device)  # fmt: skip
            keep_pre[:, 0, 1 : 1 + read_back, 0] = chunk[:, time:].bool()
            s = torch.where(keep_src, src_x[None], src_base[None]).flatten(0, 1)
            p = torch.where(keep_pre, pre_x[None], pre_pad[None]).flatten(0, 1)
            c = len(chunk)
            out = select(dec.step_logits(src.repeat(c, 1), lengths.repeat(c),
                                         target.repeat(c, 1), src_emb=s, prefix_emb=p))  # fmt: skip
            values.append(out.reshape(c, batch * n_out).double())
    y = torch.cat(values)  # (S, B * n)
    design = torch.cat([torch.ones_like(z[:, :1]), z], dim=1).double()
    root = weights.double().sqrt()[:, None]
    coefficients = torch.linalg.lstsq(design * root, y * root).solution[1:]  # (M, B * n)
    coefficients = coefficients.reshape(-1, batch, n_out).permute(1, 2, 0)  # (B, n, M)
    src_attr = coefficients[..., :time].clone()
    src_attr.masked_fill_(~(torch.arange(time, device=src.device) < lengths[:, None])[:, None], 0.0)
    pre_attr = coefficients.new_zeros(batch, n_out, n_out + 1)
    pre_attr[..., 1 : 1 + read_back] = coefficients[..., time:]
    return src_attr, pre_attr, len(z)


def _lime(
    p: _Problem, n_samples: int, perturbations_per_eval: int, alpha: float
) -> tuple[Tensor, Tensor]:
    """LIME over each sequence's real source tokens and its prefix tokens ``1 .. n-1``, as
    Captum's ``Lime`` defaults draw and weigh them: each token kept with probability
    1/2, each draw weighted by ``exp(-d^2 / 2)`` with ``d`` the cosine distance between
    the original and the perturbed embeddings of those tokens, a weighted ridge fit
    (``alpha``). A sequence's draws depend on its own number of tokens only (a batch
    equals its sequences alone); every output of a sequence is read from the same
    perturbed forwards and fitted with one solve. Returns source ``(B, n, T)`` and prefix
    ``(B, n, n + 1)``."""
    dec, src, lengths, target, select = p.dec, p.src, p.lengths, p.target, p.select
    n_outputs, src_base = p.n_outputs, p.src_base
    src_x, pre_x, pre_pad = dec.embedded(src, target)
    batch, time, n_out = src.shape[0], src.shape[1], target.shape[1] - 1
    read = (n_outputs - 1).clamp_min(0).tolist()
    width = max(read, default=0)
    real_src = torch.arange(time, device=src.device) < lengths[:, None]  # (B, T)
    real_pre = torch.zeros(pre_x.shape[:2], dtype=torch.bool, device=src.device)
    draws = []
    z = torch.ones(batch, n_samples, time + width, device=src.device)
    for i in range(batch):
        t_i, r_i = int(lengths[i]), read[i]
        real_pre[i, 1 : 1 + r_i] = True
        generator = torch.Generator().manual_seed(0)
        z_i = torch.bernoulli(torch.full((n_samples, t_i + r_i), 0.5), generator=generator)
        draws.append(z_i)
        z[i, :, :t_i] = z_i[:, :t_i].to(src.device)
        z[i, :, time : time + r_i] = z_i[:, t_i:].to(src.device)
    original = (src_x * real_src[..., None]).flatten(1), (pre_x * real_pre[..., None]).flatten(1)
    values, similarities = [], []
    with torch.no_grad():
        for chunk in z.split(perturbations_per_eval, dim=1):  # (B, c, players)
            c = chunk.shape[1]
            keep_src = chunk.transpose(0, 1)[..., :time, None].bool()  # (c, B, T, 1)
            keep_pre = torch.ones((c, batch, pre_x.shape[1], 1), dtype=torch.bool,
                                  device=src.device)  # fmt: skip
            keep_pre[:, :, 1 : 1 + width, 0] = chunk.transpose(0, 1)[..., time:].bool()
            s = torch.where(keep_src, src_x[None], src_base[None])
            p = torch.where(keep_pre, pre_x[None], pre_pad[None])
            out = select(dec.step_logits(src.repeat(c, 1), lengths.repeat(c),
                                         target.repeat(c, 1), src_emb=s.flatten(0, 1),
                                         prefix_emb=p.flatten(0, 1)))  # fmt: skip
            values.append(out.reshape(c, batch, n_out).double())
            perturbed = torch.cat(
                [(s * real_src[None, ..., None]).flatten(2),
                 (p * real_pre[None, ..., None]).flatten(2)], dim=2,
            ).double()  # fmt: skip
            kept = torch.cat(original, dim=1).double()[None]
            cosine = torch.nn.functional.cosine_similarity(kept, perturbed, dim=2)
            similarities.append(torch.exp(-((1 - cosine) ** 2) / 2))  # (c, B)
    y, w = torch.cat(values), torch.cat(similarities)  # (S, B, n), (S, B)
    src_attr = src_x.new_zeros(batch, n_out, time, dtype=torch.float64)
    pre_attr = src_x.new_zeros(batch, n_out, n_out + 1, dtype=torch.float64)
    for i, z_i in enumerate(draws):
        t_i, r_i, n_i = int(lengths[i]), read[i], int(n_outputs[i])
        weight, _ = weighted_ridge(z_i.to(src.device), y[:, i, :n_i], w[:, i], alpha)
        src_attr[i, :n_i, :t_i] = weight[:, :t_i]
        pre_attr[i, :n_i, 1 : 1 + r_i] = weight[:, t_i:]
    return src_attr, pre_attr


def seq2seq_attention(model: Any, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
    """Cross-attention ``(batch, T_out, T_src)`` of a model recording ``attention_maps``
    (``captum_rnn.models.Seq2SeqAttention``), teacher-forced on ``tgt_in``, averaged over
    heads.

    Args:
        model: the encoder-decoder (its forward sets ``attention_maps``).
        src: source ids ``(batch, T_src)``.
        src_lengths: true source lengths ``(batch,)``.
        tgt_in: decoder input ids ``(batch, T_out)`` (``<s> y_1 .. y_{n-1}``).

    Returns:
        The attention weights, one row per output step.

    Example:
        >>> from captum_rnn.models.seq2seq import Seq2SeqAttention
        >>> m = Seq2SeqAttention(9, 7, hidden_size=4, embedding_dim=3, bos_idx=2, eos_idx=3)
        >>> seq2seq_attention(m, torch.tensor([[4, 5, 6]]), torch.tensor([3]),
        ...                   torch.tensor([[2, 5]])).shape
        torch.Size([1, 2, 3])
    """
    seq = adapt(model)
    return seq.recorded_attention(lambda: seq.module(src, tgt_in, src_lengths))


def attribute_seq2seq(
    seq: SequenceModel,
    src: Tensor,
    lengths: Tensor,
    target: Any = None,
    *,
    method: str = "integrated_gradients",
    contrast: Any = None,
    src_baseline: Tensor | None = None,
    n_steps: int = 50,
    integration: str = "gausslegendre",
    bos_id: int | None = None,
    eos_id: int | None = None,
    max_length: int | None = None,
    n_samples: int = 200,
    perturbations_per_eval: int = 64,
    window: int = 3,
    alpha: float = 1e-3,
) -> Seq2SeqAttribution:
    """Attribute every target token of an encoder-decoder to the source and the prefix.

    Args:
        seq: the adapted model (``seq.is_seq2seq``).
        src: batch-first source ids ``(batch, T_src)``.
        lengths: true source lengths ``(batch,)``.
        target: full targets ``<s> y_1 .. y_n [</s>]`` as ids ``(batch, L)`` batch-first,
            padded with the target padding id; ``None`` decodes greedily first.
        method: one of :data:`SEQ2SEQ_METHODS`.
        contrast: a token id, one per output step, or ``(batch, n_outputs)`` ids: explain
            the target's logit minus this foil's.
        src_baseline: the source reference, embedded ``(batch, T_src, dim)``; default the
            padding embedding.
        n_steps: integration steps (IG).
        integration: Captum's approximation method for IG (``"gausslegendre"``...).
        bos_id / eos_id: start and end ids for ``target=None`` (default the model's
            ``bos_idx`` / ``eos_idx``).
        max_length: most generated tokens for ``target=None``.
        n_samples: coalitions KernelSHAP or LIME draws (for KernelSHAP, when every
            coalition of the source and prefix tokens fits, all of them are run and the
            values are exact Shapley values).
        perturbations_per_eval: coalitions per forward pass (KernelSHAP, LIME).
        alpha: ridge penalty of LIME's linear fit.
        window: consecutive tokens occluded together (occlusion; default 3).

    Returns:
        A :class:`Seq2SeqAttribution`.

    Example:
        >>> from captum_rnn.models import adapt
        >>> from captum_rnn.models.seq2seq import Seq2SeqAttention
        >>> m = Seq2SeqAttention(9, 7, hidden_size=4, embedding_dim=3, bos_idx=2, eos_idx=3)
        >>> r = attribute_seq2seq(adapt(m), torch.tensor([[4, 5, 6]]), torch.tensor([3]),
        ...                       torch.tensor([[2, 5, 6, 3]]), n_steps=8)
        >>> tuple(r.source.shape), tuple(r.prefix.shape)
        ((1, 3, 3), (1, 3, 3))
    """
    if method not in SEQ2SEQ_METHODS:
        raise ValueError(
            f"method must be one of {SEQ2SEQ_METHODS} for an encoder-decoder, got {method!r}"
        )
    pad = getattr(seq.target_embedding, "padding_idx", None)
    dec = _Decoder(seq, seq.pad_id if pad is None else int(pad))
    module = seq.module
    if target is None:
        bos = bos_id if bos_id is not None else getattr(module, "bos_idx", None)
        if bos is None:
            raise ValueError("target=None generates greedily from <s>: pass bos_id= (and eos_id=)")
        eos = eos_id if eos_id is not None else getattr(module, "eos_idx", None)
        limit = max_length or getattr(module, "max_output_length", None) or src.shape[1] + 10
        target = dec.generate(src, lengths, int(bos), eos, int(limit))
    else:
        target = torch.as_tensor(target, device=src.device).long()
        if target.dim() != 2 or target.shape[0] != src.shape[0] or target.shape[1] < 2:
            raise ValueError(
                f"target must hold <s> and at least one token per sequence, shape (batch, L) "
                f"in the model's layout with batch {src.shape[0]}; got {tuple(target.shape)}"
            )
        if bool((target[:, 0] == dec.target_pad).any()):
            raise ValueError("each target row must start with <s>, not padding")
        dec.find_offset(src, lengths, target[:, 0])
    real = target[:, 1:] != dec.target_pad
    n_outputs = real.sum(1)
    if bool((n_outputs == 0).any()):
        raise ValueError("a target holds no token after <s>: nothing to explain")
    explained = target[:, 1:].masked_fill(~real, 0)
    shape = (target.shape[0], target.shape[1] - 1)
    foil = None if contrast is None else _per_step_ids(contrast, "contrast", shape, src.device)
    select = _selector(explained, foil)
    with torch.no_grad():
        logits = dec.step_logits(src, lengths, target)
    value = select(logits)
    probability = torch.softmax(logits.double(), -1).amax(-1)
    fields = dict(
        target=target,
        n_outputs=n_outputs,
        contrast=foil,
        value=value,
        probability=probability,
        predicted=logits.argmax(-1),
    )
    if src_baseline is None:
        src_baseline = seq.embed(torch.full_like(src, seq.pad_id))
    if method == "attention":
        if dec.offset != 0:
            raise ValueError(
                "method='attention' reads models whose forward takes <s> y_1 .. y_{n-1}"
            )
        maps = seq.recorded_attention(lambda: dec.step_logits(src, lengths, target))
        return Seq2SeqAttribution(source=maps.double(), prefix=None, **fields)
    problem = _Problem(dec, src, lengths, target, n_outputs, select, src_baseline)
    with _no_grad_params(seq):
        if method in ("feature_ablation", "occlusion"):
            window = 1 if method == "feature_ablation" else check_int("window", window, 1)
            src_attr, pre_attr = _ablation(problem, window)
            return Seq2SeqAttribution(
                source=src_attr.double(), prefix=_below_diagonal(pre_attr), **fields
            )
        if method in ("saliency", "input_x_gradient"):
            src_attr, pre_attr = _one_pass_gradients(problem, method)
            return Seq2SeqAttribution(
                source=src_attr.double(), prefix=_below_diagonal(pre_attr), **fields
            )
        if method == "lime":
            src_attr, pre_attr = _lime(
                problem,
                check_int("n_samples", n_samples, 1),
                check_int("perturbations_per_eval", perturbations_per_eval, 1),
                check_float("alpha", alpha, 0.0),
            )
            return Seq2SeqAttribution(source=src_attr, prefix=_below_diagonal(pre_attr), **fields)
        if method == "kernel_shap":
            src_attr, pre_attr, _ = _kernel_shap(
                problem,
                check_int("n_samples", n_samples, 1),
                check_int("perturbations_per_eval", perturbations_per_eval, 1),
            )
            return Seq2SeqAttribution(
                source=src_attr.double(), prefix=_below_diagonal(pre_attr), **fields
            )
        src_attr, pre_attr, ends = _ig(problem, n_steps, integration)
    total = src_attr.double().sum(-1) + pre_attr.double().sum(-1)
    delta = total - (ends[1] - ends[0]).double()
    return Seq2SeqAttribution(
        source=src_attr.double(),
        prefix=_below_diagonal(pre_attr),
        delta=delta,
        n_steps=n_steps,
        **fields,
    )


def _below_diagonal(pre_attr: Tensor) -> Tensor:
    """Prefix columns 1.. (the output tokens read back) as ``(B, n, n)``; for a decoder
    that reads left to right these are exactly zero on and above the diagonal."""
    n = pre_attr.shape[1]
    cols = pre_attr[:, :, 1 : n + 1].double()
    out = cols.new_zeros(pre_attr.shape[0], n, n)  # the last token is never read back
    out[:, :, : cols.shape[2]] = cols
    return out
