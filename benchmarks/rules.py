"""Automaton extraction speed: captum_rnn.rules.extract_dfa against aalpy's L*, same networks.

For each Tomita language a GRU (32 units by default) is trained on class-balanced
strings of lengths 1-15; then, on that network, in one process:

  (w) white-box: extract_dfa(model, ...): L* whose equivalence queries explore the
      network's state space (Weiss et al. 2018) then test one batch of sampled words;
  (b) black-box: extract_dfa(score, ...) where ``score`` only maps a list of strings to
      acceptance probabilities (one padded forward per batch);
  (p) black-box with prefix scores ("bb-prefix"): extract_dfa(prefix_score, ...,
      prefix_scores=True) where ``prefix_score`` returns the acceptance probability of
      every prefix of every string from one unpacked forward of the network (what any
      left-to-right recurrent network gives for free): a batch of strings then answers
      all their prefixes, so membership and sampled equivalence queries need far fewer
      strings;
  (bw) / (pw) the same two black boxes with equivalence="wmethod" ("bb-wmethod",
      "bb-prefix-wm"): the randomised W-method, the equivalence oracle family of
      aalpy's fastest column (random walks from each state's access word ended by a
      separating word, walks_per_state=25 as aalpy's default). Note that aalpy's SUL
      below answers every prefix as it steps, as bb-prefix does: per word (bb-wmethod)
      each test word gives one label, and sparse languages (Tomita 2) can be missed;
  (a) aalpy: run_Lstar with a SUL that steps the network one symbol at a time, with
      three equivalence oracles: RandomWMethodEqOracle at its default (25 walks of 12
      per state) and at 100 walks of 15, and RandomWalkEqOracle (5000 steps). Skipped,
      with a note, when aalpy is not installed (pip install aalpy).

Repeats are interleaved (one run of every method, then the next repeat) so that load
from other processes on a shared machine falls on all methods alike; every run starts
after a garbage collection and is timed by the same clock: this process's CPU time by
default (``--clock cpu``; torch runs one thread, so it is the run's own work whatever
else the machine does), or wall-clock time (``--clock wall``). It prints, per
language, the median extraction time over repeats, membership queries (median),
states of the last run (against the true minimum: "=" exact language, "~" same size
but another language, "x" otherwise), how many repeats recovered the exact language, fidelity on class-balanced held-out strings of lengths 1-15
and 16-30, and the ratio of the fastest aalpy run that recovered the language exactly in
every repeat over each of ours (only where ours, too, recovered it in every repeat). Times exclude training and the falsification pass
(reported separately).

    python benchmarks/rules.py [--device cpu|cuda] [--grammars 1 2 3 4 5 6 7]
                               [--hidden 32] [--repeats 3] [--threads 1]
                               [--samples-per-round 1000] [--no-aalpy] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from captum_rnn.data import tomita, tomita_vocabulary
from captum_rnn.models import RNNClassifier
from captum_rnn.rules import DFA, dfa_fidelity, extract_dfa, tomita_dfa

VOCAB = tomita_vocabulary()


def encode(strings: list[str], device: torch.device) -> torch.Tensor:
    seqs = [torch.tensor(VOCAB.encode(list(s))) for s in strings]
    return pad_sequence(seqs, batch_first=True).to(device)


def encode_fast(strings: list[str], device: torch.device) -> torch.Tensor:
    """The same ids as :func:`encode` ("0" -> 2, "1" -> 3, 0-padded), without a Python
    loop per string: what a black-box user would write to score batches quickly."""
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    flat = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).astype(np.int64)
    rows = np.repeat(np.arange(len(strings)), lengths)
    cols = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    ids = np.zeros((len(strings), max(int(lengths.max()), 1)), dtype=np.int64)
    ids[rows, cols] = flat - ord("0") + VOCAB.index("0")
    return torch.from_numpy(ids).to(device)


def train(grammar: int, hidden: int, device: torch.device, seed: int = 0) -> tuple:
    strings, labels = tomita(grammar, 2000, 1, 15, seed=seed)
    x, y = encode(strings, device), torch.tensor(labels, device=device)
    torch.manual_seed(seed)
    model = RNNClassifier(2, vocab_size=4, embedding_dim=4, hidden_size=hidden, cell="gru")
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    start, perfect, epochs = time.perf_counter(), 0, 0
    for epochs in range(1, 101):  # noqa: B007 (reported after the loop)
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(y), 100):
            idx = order[i : i + 100]
            xb = x[idx][:, : int((x[idx] != 0).sum(1).max())]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy = (model(x).argmax(1) == y).float().mean().item()
        perfect = perfect + 1 if accuracy == 1.0 else 0
        if perfect > 3:
            break
    return model.eval(), accuracy, epochs, time.perf_counter() - start


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def timed(clock: str, fn, *args, **kwargs) -> tuple:
    """``(fn(...), seconds)``: a garbage collection first, then ``fn`` timed by ``clock``."""
    gc.collect()
    tick = CLOCKS[clock]
    start = tick()
    out = fn(*args, **kwargs)
    return out, tick() - start


def aalpy_extract(
    model: RNNClassifier, empty_label: bool, oracle_name: str, seed: int, clock: str = "cpu"
) -> tuple[DFA, float, int]:
    """aalpy's L* on a SUL that steps the network one symbol at a time."""
    from aalpy.base import SUL
    from aalpy.learning_algs import run_Lstar
    from aalpy.oracles import RandomWalkEqOracle, RandomWMethodEqOracle

    ids = {"0": VOCAB.index("0"), "1": VOCAB.index("1")}
    device = next(model.parameters()).device

    class NetworkSUL(SUL):
        def __init__(self) -> None:
            super().__init__()
            self.h = None

        def pre(self) -> None:
            self.h = None

        def post(self) -> None:
            pass

        def step(self, letter):
            if letter is None:  # the empty word: the label extract_dfa settled on
                return empty_label
            with torch.no_grad():
                x = model.embedding(torch.tensor([[ids[letter]]], device=device))
                _, self.h = model.rnn(x, self.h)
                return bool(model.head(self.h[-1]).argmax(1).item() == 1)

    random.seed(seed)
    sul = NetworkSUL()
    if oracle_name == "wmethod":
        oracle = RandomWMethodEqOracle(["0", "1"], sul, walks_per_state=100, walk_len=15)
    elif oracle_name == "wmethod-default":
        oracle = RandomWMethodEqOracle(["0", "1"], sul)  # 25 walks of 12 per state
    else:
        oracle = RandomWalkEqOracle(["0", "1"], sul, num_steps=5000, reset_prob=0.09)
    (learned, info), seconds = timed(
        clock,
        run_Lstar,
        ["0", "1"],
        sul,
        oracle,
        automaton_type="dfa",
        print_level=0,
        return_data=True,
    )
    queries = info["queries_learning"] + info["queries_eq_oracle"]
    index = {state: i for i, state in enumerate(learned.states)}
    table = [[index[s.transitions[a]] for a in "01"] for s in learned.states]
    accepting = {index[s] for s in learned.states if s.is_accepting}
    dfa = DFA("01", table, accepting, index[learned.initial_state]).minimize()
    return dfa, seconds, queries


def mark(dfa: DFA, grammar: int) -> str:
    truth = tomita_dfa(grammar)
    if dfa.equivalent(truth) is None:
        return f"{dfa.num_states}="
    return f"{dfa.num_states}{'~' if dfa.num_states == truth.num_states else 'x'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grammars", type=int, nargs="+", default=list(range(1, 8)))
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: leave as is)")
    parser.add_argument("--no-aalpy", action="store_true", help="skip the aalpy column")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default=None, help="default: cpu, wall on cuda"
    )
    parser.add_argument(
        "--samples-per-round",
        type=int,
        default=1000,
        help="words extract_dfa tests before accepting a hypothesis (its default: 1000)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    if args.clock is None:  # a GPU works while the process waits: only the wall clock sees it
        args.clock = "wall" if device.type == "cuda" else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    have_aalpy = not args.no_aalpy
    if have_aalpy:
        try:
            import aalpy  # noqa: F401
        except ImportError:
            have_aalpy = False
            print("aalpy is not installed (pip install aalpy): its column is skipped\n")

    print(
        f"device {device}, torch threads {torch.get_num_threads()}, GRU {args.hidden} units, "
        f"median of {args.repeats} runs ({args.clock} time), extract_dfa samples_per_round="
        f"{args.samples_per_round}\naalpy W25 / W100: RandomWMethodEqOracle, 25 walks of "
        f"12 (its default) / 100 walks of 15 per state; aalpy RW: RandomWalkEqOracle, 5000 "
        f"steps.\naalpy/this: the fastest aalpy oracle that recovered the language in every "
        f"repeat, over this method\n"
    )
    header = (
        f"{'L':>2} {'net acc':>7}  {'method':<12} {'seconds':>8} {'queries':>8} {'states':>6} "
        f"{'exact':>7} {'fidelity in/longer':>18}  {'aalpy/this':>10}"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[str, list[float]] = {
        name: [] for name in ("white-box", "black-box", "bb-prefix", "bb-wmethod", "bb-prefix-wm")
    }
    inexact: dict[str, list[int]] = {name: [] for name in ratios}
    for grammar in args.grammars:
        model, accuracy, _, _ = train(grammar, args.hidden, device)

        def score(words: list[str], model: RNNClassifier = model) -> torch.Tensor:
            with torch.no_grad():
                return model(encode_fast(words, device)).softmax(-1)[:, 1]

        def prefix_score(words: list[str], model: RNNClassifier = model) -> torch.Tensor:
            # every prefix in one unpacked forward: (n, T) acceptance probabilities
            with torch.no_grad():
                out, _ = model.rnn(model.embedding(encode_fast(words, device)))
                return model.head(out).softmax(-1)[..., 1]

        def fid(dfa: DFA, model: RNNClassifier = model, grammar: int = grammar) -> str:
            rep = dfa_fidelity(
                dfa,
                model,
                vocab=VOCAB,
                reference=tomita_dfa(grammar),
                max_length=15,
                n=1000,
                seed=99,
            )
            return f"{rep.in_range.fidelity:.3f}/{rep.longer.fidelity:.3f}"

        # one repeat of every method after another, so that bursts of load from other
        # processes on a shared machine fall on all of them alike
        ours = {
            "white-box": (model, {"vocab": VOCAB}),
            "black-box": (score, {}),
            "bb-prefix": (prefix_score, {"prefix_scores": True}),
            "bb-wmethod": (score, {"equivalence": "wmethod"}),
            "bb-prefix-wm": (prefix_score, {"prefix_scores": True, "equivalence": "wmethod"}),
        }
        aalpy_oracles = (
            (("wmethod-default", "aalpy W25"), ("wmethod", "aalpy W100"), ("walk", "aalpy RW"))
            if have_aalpy
            else ()
        )
        runs: dict[str, list[tuple[DFA, float, int]]] = {name: [] for name in ours}
        runs.update({label: [] for _, label in aalpy_oracles})
        for r in range(args.repeats):
            for name, (fn, kwargs) in ours.items():
                dfa, seconds = timed(
                    args.clock,
                    extract_dfa,
                    fn,
                    "01",
                    max_length=15,
                    seed=r,
                    falsify=0,
                    samples_per_round=args.samples_per_round,
                    **kwargs,
                )
                runs[name].append((dfa, seconds, dfa.report.queries))
            empty = runs["white-box"][-1][0].report.empty_label
            for oracle_name, label in aalpy_oracles:
                runs[label].append(aalpy_extract(model, empty, oracle_name, r, args.clock))
        rows, aalpy_seconds = [], []
        for name, done in runs.items():
            seconds = statistics.median(d[1] for d in done)
            exact = sum(d[0].equivalent(tomita_dfa(grammar)) is None for d in done)
            rows.append(
                (name, seconds, int(statistics.median(d[2] for d in done)), done[-1][0], exact)
            )
            if name.startswith("aalpy") and exact == len(done):
                aalpy_seconds.append(seconds)
        # compare with the fastest aalpy run that recovered the language every time
        best_aalpy = min(aalpy_seconds) if aalpy_seconds else None
        for name, seconds, queries, dfa, exact in rows:
            ratio = ""
            if best_aalpy is not None and name in ratios:
                if exact == args.repeats:
                    ratios[name].append(best_aalpy / seconds)
                    ratio = f"{best_aalpy / seconds:.1f}x"
                else:
                    inexact[name].append(grammar)
                    ratio = "inexact"
            print(
                f"{grammar:>2} {accuracy:>7.3f}  {name:<12} {seconds:>8.3f} {queries:>8} "
                f"{mark(dfa, grammar):>6} {exact:>3}/{args.repeats:<3} {fid(dfa):>18}  {ratio:>10}",
                flush=True,
            )
        falsify = extract_dfa(
            model, "01", vocab=VOCAB, max_length=15, reference=tomita_dfa(grammar)
        )
        print(
            f"{'':>11}falsification pass (2000 words, lengths 1-30): "
            f"{falsify.report.falsification_seconds:.3f} s, "
            f"{len(falsify.report.counterexamples)} counterexamples"
        )
    if ratios["white-box"]:
        for name, values in ratios.items():
            summary = (
                f"median {statistics.median(values):.1f}x, min {min(values):.1f}x"
                if values
                else "never exact"
            )
            missed = f" (not exact every repeat on {inexact[name]})" if inexact[name] else ""
            print(f"\nfastest exact aalpy / {name}: {summary}{missed}", end="")
        print()
    print("states: '=' the true minimal language, '~' same size other language, 'x' other size")


if __name__ == "__main__":
    main()
