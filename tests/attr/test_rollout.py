"""attention_rollout and attention_flow: the paper's invariants and an exact max-flow check."""

from collections import deque

import pytest
import torch

from captum_rnn.attr import attention_flow, attention_rollout, fuse_attention


def random_attention(batch=2, heads=3, time=6, layers=3, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.softmax(scale * torch.randn(batch, heads, time, time, generator=g), dim=-1).double()
        for _ in range(layers)
    ]


def layered_max_flow(fused, source, sink):
    """Textbook Edmonds-Karp on the full layered graph (independent of the library)."""
    layers, time = len(fused), len(fused[0])
    cap = [{} for _ in range((layers + 1) * time)]
    for layer in range(1, layers + 1):
        for a in range(time):
            for b in range(time):
                c = float(fused[layer - 1][a][b])
                if c > 0:
                    u, v = layer * time + a, (layer - 1) * time + b
                    cap[u][v] = cap[u].get(v, 0.0) + c
                    cap[v].setdefault(u, 0.0)
    s, t, total = layers * time + source, sink, 0.0
    while True:
        parent, queue = {s: None}, deque([s])
        while queue and t not in parent:
            u = queue.popleft()
            for v, r in cap[u].items():
                if r > 1e-15 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if t not in parent:
            return total
        path, v = [], t
        while parent[v] is not None:
            path.append((parent[v], v))
            v = parent[v]
        bottleneck = min(cap[u][v] for u, v in path)
        for u, v in path:
            cap[u][v] -= bottleneck
            cap[v][u] += bottleneck
        total += bottleneck


def reference_flow(fused_batch, b, row):
    fused = [f[b].tolist() for f in fused_batch]
    values = torch.tensor(
        [layered_max_flow(fused, row, j) for j in range(len(fused[0]))], dtype=torch.float64
    )
    total = values.sum()
    return values / total if total > 0 else values


# ----------------------------------------------------------------------- rollout
def test_one_layer_is_half_attention_half_identity():
    [a] = random_attention(layers=1, heads=1)
    rollout = attention_rollout([a])
    eye = torch.eye(6, dtype=a.dtype)
    torch.testing.assert_close(rollout, 0.5 * a[:, 0] + 0.5 * eye)


def test_identity_attention_gives_identity():
    eye = torch.eye(5, dtype=torch.float64).expand(2, 4, 5, 5)
    for residual in (True, False):
        rollout = attention_rollout([eye] * 3, residual=residual)
        torch.testing.assert_close(rollout, torch.eye(5, dtype=torch.float64).expand(2, 5, 5))


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_uniform_attention_closed_form(layers):
    time = 7
    uniform = torch.full((1, 2, time, time), 1.0 / time, dtype=torch.float64)
    rollout = attention_rollout([uniform] * layers)
    expected = (1 - 2.0**-layers) * uniform[0, 0] + 2.0**-layers * torch.eye(
        time, dtype=torch.float64
    )
    torch.testing.assert_close(rollout[0], expected)


@pytest.mark.parametrize("discard_ratio", [0.0, 0.3])
def test_permutation_equivariance(discard_ratio):
    atts = random_attention()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    permuted = [a[:, :, perm][:, :, :, perm] for a in atts]
    rollout = attention_rollout(atts, discard_ratio=discard_ratio)
    torch.testing.assert_close(
        attention_rollout(permuted, discard_ratio=discard_ratio), rollout[:, perm][:, :, perm]
    )


@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5, 0.9])
def test_rows_sum_to_one(residual, discard_ratio):
    rollout = attention_rollout(random_attention(), residual=residual, discard_ratio=discard_ratio)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 6, dtype=torch.float64))
    assert (rollout >= 0).all()


def test_later_layers_multiply_on_the_left():
    atts = random_attention(heads=1)
    fused = fuse_attention(atts)
    torch.testing.assert_close(attention_rollout(atts), fused[2] @ fused[1] @ fused[0])
    stacked = attention_rollout(atts, all_layers=True)
    assert stacked.shape == (3, 2, 6, 6)
    torch.testing.assert_close(stacked[1], fused[1] @ fused[0])
    torch.testing.assert_close(stacked[-1], attention_rollout(atts))


def test_head_fusion_max_and_min():
    atts = random_attention(layers=1)
    for fusion, reduce in (("max", torch.amax), ("min", torch.amin)):
        fused = reduce(atts[0], dim=1) + torch.eye(6, dtype=torch.float64)
        expected = fused / fused.sum(-1, keepdim=True)
        torch.testing.assert_close(attention_rollout(atts, head_fusion=fusion), expected)


def test_discard_zeroes_smallest_entries_and_renormalises_each_row_by_its_own_sum():
    a = torch.tensor([[[0.1, 0.6, 0.3], [0.05, 0.15, 0.8], [0.7, 0.2, 0.1]]], dtype=torch.float64)[
        :, None
    ]
    # 9 entries, ratio 0.34 -> 3 discarded: the smallest non-diagonal, non-row-max
    # entries are 0.05 (1,0), 0.2 (2,1) and 0.3 (0,2).
    [fused] = fuse_attention([a], discard_ratio=0.34, residual=False)
    kept = torch.tensor([[0.1, 0.6, 0.0], [0.0, 0.15, 0.8], [0.7, 0.0, 0.1]], dtype=torch.float64)
    torch.testing.assert_close(fused[0], kept / kept.sum(-1, keepdim=True))
    [with_residual] = fuse_attention([a], discard_ratio=0.34)
    augmented = kept + torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(with_residual[0], augmented / augmented.sum(-1, keepdim=True))
    # The ViT repository's bug divides entry (i, j) by row j's sum; that is not what we do.
    wrong = augmented / augmented.sum(-1)
    assert not torch.allclose(with_residual[0], wrong)


def test_discard_protects_diagonal_and_row_maximum():
    atts = random_attention(layers=1, time=8)
    [fused] = fuse_attention(atts, discard_ratio=0.95, residual=False)
    raw = atts[0].mean(1)
    eye = torch.eye(8, dtype=torch.bool)
    assert (fused[:, eye] > 0).all()
    assert (fused.gather(2, raw.argmax(-1, keepdim=True)) > 0).all()
    # Everything else is gone at 95%: 64 * 0.95 = 60 > 64 - 8 - 8 candidates.
    nonzero = (fused > 0).sum(dim=(1, 2))
    assert (nonzero <= 16).all()


def test_discard_is_per_sequence():
    atts = random_attention(layers=1, batch=3, time=5)
    batched = fuse_attention(atts, discard_ratio=0.4)[0]
    for b in range(3):
        alone = fuse_attention([atts[0][b : b + 1]], discard_ratio=0.4)[0]
        torch.testing.assert_close(batched[b : b + 1], alone)


def test_padding_is_cut_out_before_the_identity():
    atts = random_attention(batch=1, time=7)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    rollout = attention_rollout(atts, mask=mask)
    assert (rollout[:, 4:] == 0).all() and (rollout[:, :, 4:] == 0).all()
    cut = attention_rollout([a[:, :, :4, :4] for a in atts])
    torch.testing.assert_close(rollout[:, :4, :4], cut)
    # The same sequence padded to another length gives the same rollout.
    longer = [torch.nn.functional.pad(a[:, :, :4, :4], (0, 9, 0, 9)) for a in atts]
    mask_long = torch.tensor([[True] * 4 + [False] * 9])
    torch.testing.assert_close(attention_rollout(longer, mask=mask_long)[:, :4, :4], cut)


def test_batch_consistency():
    atts = random_attention(batch=3)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4]).bool()
    batched = attention_rollout(atts, mask=mask, discard_ratio=0.2)
    for b in range(3):
        alone = attention_rollout(
            [a[b : b + 1] for a in atts], mask=mask[b : b + 1], discard_ratio=0.2
        )
        torch.testing.assert_close(batched[b : b + 1], alone)


def test_rollout_is_differentiable():
    atts = [a.clone().requires_grad_(True) for a in random_attention(batch=1, time=4)]
    assert torch.autograd.gradcheck(lambda *xs: attention_rollout(list(xs)), tuple(atts))


def test_rollout_keeps_dtype_and_device():
    atts = [a.float() for a in random_attention()]
    out = attention_rollout(atts)
    assert out.dtype == torch.float32 and out.device == atts[0].device


@pytest.mark.gpu
def test_rollout_and_flow_on_cuda():
    atts = [a.cuda() for a in random_attention(time=5)]
    rollout = attention_rollout(atts)
    flow = attention_flow(atts)
    assert rollout.is_cuda and flow.is_cuda
    torch.testing.assert_close(rollout.cpu(), attention_rollout([a.cpu() for a in atts]))
    torch.testing.assert_close(flow.cpu(), attention_flow([a.cpu() for a in atts]))


def test_bad_arguments_are_named():
    atts = random_attention()
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout(atts, head_fusion="sum")
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout(atts, discard_ratio=1.0)
    with pytest.raises(ValueError, match="attentions"):
        attention_rollout([])
    with pytest.raises(ValueError, match=r"attentions\[1\]"):
        attention_rollout([atts[0], atts[1][:, :, :5, :5]])
    with pytest.raises(ValueError, match="negative"):
        attention_rollout([atts[0] - 1])
    for bad in (float("nan"), float("inf")):
        broken = atts[1].clone()
        broken[0, 0, 1, 2] = bad
        with pytest.raises(ValueError, match=r"attentions\[1\].*NaN or infinite"):
            attention_rollout([atts[0], broken])
    with pytest.raises(ValueError, match="mask"):
        attention_rollout(atts, mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="floating"):
        attention_rollout([torch.ones(1, 1, 2, 2, dtype=torch.long)])
    with pytest.raises(ValueError, match="square|shape"):
        attention_rollout([torch.ones(1, 1, 2, 3)])


# ----------------------------------------------------------------------- flow
def test_flow_on_one_layer_is_the_row_normalised_matrix():
    [a] = random_attention(layers=1)
    fused = a.mean(1)
    torch.testing.assert_close(attention_flow([a], residual=False), fused / fused.sum(-1, True))
    eye = torch.eye(6, dtype=a.dtype)
    torch.testing.assert_close(attention_flow([a]), 0.5 * fused + 0.5 * eye)


def test_flow_on_two_layers_has_a_closed_form():
    atts = random_attention(layers=2)
    f1, f2 = fuse_attention(atts)
    values = torch.minimum(f2[:, :, :, None], f1[:, None, :, :]).sum(2)
    torch.testing.assert_close(attention_flow(atts), values / values.sum(-1, keepdim=True))


@pytest.mark.parametrize(
    "layers, time, options",
    [
        (3, 5, {}),
        (4, 6, {"discard_ratio": 0.6}),
        (5, 6, {"residual": False}),
        (4, 5, {"head_fusion": "max", "discard_ratio": 0.8, "residual": False}),
    ],
)
def test_flow_equals_a_textbook_max_flow(layers, time, options):
    atts = random_attention(layers=layers, time=time, seed=layers, scale=4.0)
    mask = torch.ones(2, time, dtype=torch.bool)
    mask[1, -2:] = False
    flow = attention_flow(atts, mask=mask, **options)
    fused = fuse_attention(atts, mask=mask, **options)
    for b in range(2):
        for row in range(time):
            torch.testing.assert_close(
                flow[b, row], reference_flow(fused, b, row), atol=1e-9, rtol=0
            )
    assert (flow[1, :, -2:] == 0).all() and (flow[1, -2:] == 0).all()


def test_flow_matches_networkx_when_available():
    nx = pytest.importorskip("networkx")
    atts = random_attention(batch=1, layers=4, time=5, seed=7)
    fused = [f[0] for f in fuse_attention(atts)]
    graph = nx.DiGraph()
    for layer, matrix in enumerate(fused, start=1):
        for a in range(5):
            for b in range(5):
                graph.add_edge((layer, a), (layer - 1, b), capacity=float(matrix[a, b]))
    values = torch.tensor(
        [nx.maximum_flow_value(graph, (4, 2), (0, j)) for j in range(5)], dtype=torch.float64
    )
    torch.testing.assert_close(attention_flow(atts)[0, 2], values / values.sum(), atol=1e-9, rtol=0)


def test_flow_rows_sum_to_one_and_are_permutation_equivariant():
    atts = random_attention(layers=4, time=6)
    flow = attention_flow(atts)
    torch.testing.assert_close(flow.sum(-1), torch.ones(2, 6, dtype=torch.float64))
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(5))
    permuted = attention_flow([a[:, :, perm][:, :, :, perm] for a in atts])
    torch.testing.assert_close(permuted, flow[:, perm][:, :, perm])


def test_flow_positions_select_rows_and_padding_length_does_not_matter():
    atts = random_attention(layers=4, time=6, batch=1)
    full = attention_flow(atts)
    torch.testing.assert_close(attention_flow(atts, positions=[4, 0]), full[:, [4, 0]])
    longer = [torch.nn.functional.pad(a, (0, 5, 0, 5)) for a in atts]
    mask = torch.tensor([[True] * 6 + [False] * 5])
    padded = attention_flow(longer, mask=mask)
    torch.testing.assert_close(padded[:, :6, :6], full)
    assert (padded[:, 6:] == 0).all() and (padded[:, :, 6:] == 0).all()


def test_flow_refuses_sizes_that_take_minutes():
    atts = [torch.full((1, 1, 64, 64), 1 / 64) for _ in range(12)]
    with pytest.raises(ValueError, match=r"max_cost.*attention_rollout"):
        attention_flow(atts)
    with pytest.raises(ValueError, match="positions"):
        attention_flow(random_attention(), positions=[6])


def test_flow_keeps_input_dtype():
    atts = [a.float() for a in random_attention(layers=3, time=4)]
    assert attention_flow(atts).dtype == torch.float32


def test_two_layer_flow_is_computed_a_few_rows_at_a_time():
    """The broadcast minimum of two layers holds rows x T x T values: cut into chunks, the
    result is the same and memory stays bounded (1,500 tokens needed 27 GB in one go)."""
    from captum_rnn.attr._rollout import _two_layer_flow

    torch.manual_seed(0)
    fused = [torch.rand(2, 9, 9, dtype=torch.float64) for _ in range(2)]
    rows = torch.arange(9)
    whole = torch.minimum(fused[1][:, :, :, None], fused[0][:, None, :, :]).sum(dim=2)
    for chunk in (1, 81, 200, 1 << 24):
        torch.testing.assert_close(_two_layer_flow(fused, rows, chunk_elements=chunk), whole)
