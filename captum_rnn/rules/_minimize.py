"""Hopcroft's partition-refinement minimisation of complete DFAs, on plain tables.

Works on integer tables so that :class:`~captum_rnn.rules.DFA` and the extraction code
can share it: ``table[q][a]`` is the state reached from ``q`` on symbol index ``a``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

__all__ = ["canonical_order", "hopcroft", "reachable_states"]


def reachable_states(table: Sequence[Sequence[int]], start: int) -> list[int]:
    """States reachable from ``start``, in breadth-first order (symbols in table order)."""
    seen = {start}
    order = [start]
    queue = deque([start])
    while queue:
        q = queue.popleft()
        for r in table[q]:
            if r not in seen:
                seen.add(r)
                order.append(r)
                queue.append(r)
    return order


def canonical_order(
    table: Sequence[Sequence[int]], accepting: set[int] | frozenset[int], start: int
) -> tuple[list[list[int]], frozenset[int]]:
    """Renumber the reachable part in breadth-first order from ``start`` (start becomes 0).

    Two minimal DFAs of the same language over the same alphabet order come out
    identical, so equality of tables is equality of languages.
    """
    order = reachable_states(table, start)
    new = {q: i for i, q in enumerate(order)}
    out = [[new[r] for r in table[q]] for q in order]
    return out, frozenset(new[q] for q in accepting if q in new)


def hopcroft(
    table: Sequence[Sequence[int]], accepting: set[int] | frozenset[int], start: int
) -> tuple[list[list[int]], frozenset[int]]:
    """Minimise a complete DFA; unreachable states are dropped first.

    Args:
        table: ``table[q][a]``, the successor of state ``q`` on symbol index ``a``.
        accepting: accepting states.
        start: start state.

    Returns:
        ``(table, accepting)`` of the minimal DFA, start state 0, states numbered in
        breadth-first order from the start (see :func:`canonical_order`).
    """
    order = reachable_states(table, start)
    index = {q: i for i, q in enumerate(order)}
    n = len(order)
    k = len(table[start]) if n else 0
    delta = [[index[r] for r in table[q]] for q in order]
    final = [q in accepting for q in order]

    # inverse[a][r]: states that go to r on symbol a
    inverse: list[list[list[int]]] = [[[] for _ in range(n)] for _ in range(k)]
    for q in range(n):
        for a in range(k):
            inverse[a][delta[q][a]].append(q)

    blocks: list[set[int]] = []
    block_of = [0] * n
    for members in ({q for q in range(n) if final[q]}, {q for q in range(n) if not final[q]}):
        if members:
            for q in members:
                block_of[q] = len(blocks)
            blocks.append(members)
    work: set[tuple[int, int]] = set()
    if len(blocks) == 2:
        smaller = 0 if len(blocks[0]) <= len(blocks[1]) else 1
        work = {(smaller, a) for a in range(k)}
    while work:
        splitter, a = work.pop()
        # predecessors of the splitter block on symbol a, grouped by their block
        touched: dict[int, set[int]] = {}
        for r in list(blocks[splitter]):
            for p in inverse[a][r]:
                touched.setdefault(block_of[p], set()).add(p)
        for b, inside in touched.items():
            if len(inside) == len(blocks[b]):
                continue
            outside = blocks[b] - inside
            blocks[b] = inside
            new_id = len(blocks)
            blocks.append(outside)
            for q in outside:
                block_of[q] = new_id
            for c in range(k):
                if (b, c) in work:
                    work.add((new_id, c))
                else:
                    work.add((b if len(inside) <= len(outside) else new_id, c))
    quotient = [[block_of[delta[next(iter(B))][a]] for a in range(k)] for B in blocks]
    quotient_final = {i for i, B in enumerate(blocks) if final[next(iter(B))]}
    return canonical_order(quotient, quotient_final, block_of[0] if n else 0)
