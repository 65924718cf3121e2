import pytest
import torch

from captum_rnn.counterfactuals import token_counterfactual
from tests.rules._cue_net import cue_net, one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_flips_are_verified_and_minimal():
    model, held = cue_net()
    flips = 0
    for seq in held.sequences[:5]:
        cf = token_counterfactual(model, seq, max_edits=1)
        pred = int(model(seq[None]).argmax(-1))
        flips += cf.flipped
        if cf.flipped:
            assert int(model(cf.counterfactual[None]).argmax(-1)) != pred
            assert len(cf.edits) == int((cf.counterfactual != seq).sum()) == 1
        else:
            assert torch.equal(cf.counterfactual, seq)
    assert flips >= 4  # one swap of the cue word flips the class
