import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from torch import nn

from captum_rnn import gradient_context
from captum_rnn._utils.grad import prepare_tensors, rnn_backward_mode


class UserLSTM(nn.Module):
    """A model of the user's own, not from captum-rnn."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True, dropout=0.3, num_layers=2)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(self.lstm(x)[0][:, -1])


def test_context_leaves_inference_mode_and_restores_it():
    model = UserLSTM().eval()
    with torch.inference_mode():
        x = torch.randn(2, 4, 3)
        with gradient_context(model) as ctx:
            assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
            attr = IntegratedGradients(model).attribute(ctx.prepare(x), target=1, n_steps=8)
        assert torch.is_inference_mode_enabled()
    assert attr.shape == x.shape


def test_without_context_captum_fails_on_inference_tensors():
    # The upstream failure the context exists for (docs/ARCHITECTURE.md, "Upstream defects").
    model = UserLSTM().eval()
    with torch.inference_mode():
        x = torch.randn(2, 4, 3)
        with pytest.raises(RuntimeError):
            Saliency(model).attribute(x, target=1)


def test_context_restores_grad_mode_after_exception():
    model = UserLSTM().eval()
    with torch.no_grad():
        with pytest.raises(ValueError):
            with gradient_context(model):
                assert torch.is_grad_enabled()
                raise ValueError("inside")
        assert not torch.is_grad_enabled()


def test_prepare_clones_only_inference_tensors_and_walks_structures():
    normal = torch.ones(2)
    with torch.inference_mode():
        frozen = torch.ones(2)
    with torch.inference_mode(False):
        out = prepare_tensors({"a": (normal, [frozen]), "b": 3})
    assert out["a"][0] is normal
    assert not out["a"][1][0].is_inference()
    assert out["b"] == 3


def test_rnn_backward_mode_is_a_no_op_on_cpu():
    model = UserLSTM().eval()
    with rnn_backward_mode(model):
        assert not model.lstm.training and model.lstm.dropout == 0.3


@pytest.mark.gpu
def test_cuda_eval_backward_works_and_modes_are_restored():
    model = UserLSTM().cuda().eval()
    x = torch.randn(2, 4, 3, device="cuda")
    with pytest.raises(
        RuntimeError, match="cudnn RNN backward can only be called in training mode"
    ):
        Saliency(model).attribute(x, target=0)
    with gradient_context(model):
        assert model.lstm.training and model.lstm.dropout == 0.0
        attr = Saliency(model).attribute(x, target=0)
    assert not model.lstm.training and model.lstm.dropout == 0.3
    cpu_attr = Saliency(model.cpu()).attribute(x.cpu(), target=0)
    torch.testing.assert_close(attr.cpu(), cpu_attr, atol=1e-5, rtol=1e-4)


@pytest.mark.gpu
def test_cuda_eval_captum_directly_on_package_model():
    from conftest import padded_batch, token_model

    model = token_model("lstm-bi-additive").cuda().eval()
    ids, lengths = padded_batch()
    emb = model.embedding(ids.cuda()).detach()
    attr = IntegratedGradients(model).attribute(
        emb, target=0, additional_forward_args=(lengths.cuda(),)
    )
    assert (attr[ids.cuda() == 0] == 0).all()
    assert not model.rnn.training
