import functools

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from captum_rnn import Counterfactual, counterfactuals
from captum_rnn._counterfactuals._series import dtw_alignment, dtw_distances
from tests.counterfactuals._vowels_net import train_vowels_gru
from tests.rules._cue_net import one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def vowels_net():
    """The Japanese Vowels GRU, its training series and a spread of 31 test series."""
    from captum_rnn.data.datasets import DataUnavailableError

    try:
        model, series, _, held, _ = train_vowels_gru()
    except DataUnavailableError as error:
        pytest.skip(f"Japanese Vowels not available: {error}")
    return model, series, held[::12]


def _run(method):
    model, train, held = vowels_net()
    x = pad_sequence(held, batch_first=True)
    lengths = torch.tensor([len(s) for s in held])
    return counterfactuals(model, x, lengths=lengths, train_dataset=train, method=method)


@functools.cache
def _results():
    return {m: _run(m) for m in ("native_guide", "window", "comte")}


def test_native_guide_cells_flip_inside_the_training_range():
    model, train, held = vowels_net()
    frames = torch.cat(train)
    low, high = frames.min(0).values, frames.max(0).values
    cfs = _results()["native_guide"]
    assert sum(cf.flipped for cf in cfs) >= 0.95 * len(cfs)
    for x, cf in zip(held, cfs, strict=True):
        assert torch.equal(cf.original, x)
        changed = cf.changed
        assert torch.equal(changed, cf.counterfactual != x)
        assert torch.equal(cf.counterfactual[~changed], x[~changed])  # the rest is x's
        values = cf.counterfactual
        inside = (values >= low) & (values <= high)
        assert bool(inside[changed].all()), "a changed value left its feature's range"
        with torch.no_grad():
            probs = model(torch.stack([x, cf.counterfactual]))
        assert probs.argmax(-1).tolist() == [cf.original_prediction, cf.prediction]
        assert cf.flipped == (cf.prediction != cf.original_prediction)


def test_native_guide_changes_fewer_cells_than_window_splices_and_channel_swaps():
    results = _results()

    def cells(name):
        cfs = [cf for cf in results[name] if cf.flipped]
        return sum(cf.changed_fraction for cf in cfs) / len(cfs)

    for name in ("window", "comte"):
        assert sum(cf.flipped for cf in results[name]) >= 0.9 * len(results[name])
    assert cells("native_guide") <= 0.5 * cells("window")
    assert cells("native_guide") < cells("comte")
    assert cells("native_guide") < 0.199  # TSInterpret's CoMTE: 19.9% of cells
    # CoMTE swaps whole features; the window splices every feature over some steps
    for cf in results["comte"]:
        swapped = cf.changed.any(0)
        assert torch.equal(
            cf.changed[:, swapped], cf.counterfactual[:, swapped] != cf.original[:, swapped]
        )
    for cf in results["window"]:
        steps = cf.changed.any(1).nonzero()[:, 0]
        if len(steps):
            assert int(steps[-1] - steps[0]) + 1 == len(steps)  # one contiguous window


def test_target_class_and_json_round_trip(tmp_path):
    model, train, held = vowels_net()
    x = held[0]
    with torch.no_grad():
        base = int(model(x[None]).argmax(-1))
    goal = (base + 1) % 9
    cf = counterfactuals(
        model, x, train_dataset=train, target=goal, feature_names=[f"c{i}" for i in range(12)]
    )[0]
    assert cf.target == goal
    if cf.flipped:
        assert cf.prediction == goal
    cf.save(tmp_path / "cf.json")
    back = Counterfactual.load(tmp_path / "cf.json")
    assert back.to_dict() == cf.to_dict()
    assert torch.equal(back.changed, cf.changed)
    page = cf.to_html()
    assert page.startswith("<section>") and "data:image/png;base64," in page


def test_series_needs_training_data_and_a_known_method():
    model, train, held = vowels_net()
    with pytest.raises(ValueError, match="train_dataset"):
        counterfactuals(model, held[0])
    with pytest.raises(ValueError, match="method"):
        counterfactuals(model, held[0], train_dataset=train, method="automaton")


def test_dtw_distances_match_the_alignment_cost():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g).double().numpy()
    ys = [torch.randn(n, 2, generator=g).double().numpy() for n in (4, 6, 9)]
    pool = torch.zeros(3, 9, 2).double().numpy()
    for i, y in enumerate(ys):
        pool[i, : len(y)] = y
    distances = dtw_distances(x, pool, torch.tensor([4, 6, 9]).numpy())
    assert distances[1] <= ((x - ys[1]) ** 2).sum() + 1e-9  # the diagonal is one path
    assert dtw_distances(x, x[None], torch.tensor([6]).numpy())[0] == 0
    steps = dtw_alignment(x, ys[2])
    assert len(steps) == 6 and steps[0] == 0 and all(steps[1:] >= steps[:-1])
