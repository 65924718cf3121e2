"""TSInterpret's CoMTE (0.4.7) on our series model, when TSInterpret is importable.

TSInterpret imports TensorFlow, tf-explain, shap, sktime and more at package import,
although CoMTE's brute-force search uses none of them; their names are stubbed (only for
this benchmark process) so that CoMTE itself runs unchanged. Install it apart from the
project's environment:

    python -m venv --system-site-packages /work/venv-bench-cf
    # make the project's packages visible, e.g. a .pth file naming /work/venv's site-packages
    /work/venv-bench-cf/bin/pip install --no-deps TSInterpret==0.4.7
    /work/venv-bench-cf/bin/pip install scikit-learn pandas scikit-optimize
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from unittest import mock

import numpy as np
import torch
from torch import nn

_STUBBED = {
    "tensorflow", "tf_explain", "seaborn", "shap", "torchcam", "tslearn", "deap", "pyts",
    "pymop", "sktime",
}  # fmt: skip


class _Stubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in _STUBBED:
            try:  # a real install wins
                if name == name.split(".")[0] and importlib.machinery.PathFinder.find_spec(name):
                    return None
            except (ImportError, ValueError):
                pass
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__ = [], spec
        return module

    def exec_module(self, module):
        pass


def load_comte():
    """The ``COMTECF`` class, or ``None`` with the reason when it cannot be imported."""
    finder = _Stubs()
    sys.meta_path.insert(0, finder)
    try:
        from TSInterpret.InterpretabilityModels.counterfactual.COMTECF import COMTECF
    except ImportError as error:
        return None, f"{type(error).__name__}: {error}"
    finally:
        sys.meta_path.remove(finder)
    return COMTECF, ""


class _Truncated(nn.Module):
    """Our classifier on the first ``length`` steps of TSInterpret's fixed-length batch."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.length = model, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x[:, : self.length].float())


def run_comte(comte_cls, model, train, labels, queries) -> list[tuple[np.ndarray, int]]:
    """CoMTE (brute force) per query: ``(counterfactual (T, F), its predicted class)``.
    Training series are zero-padded to the longest; each query is explained at its own
    length (the model reads only its first ``T`` steps)."""
    longest = max(len(s) for s in [*train, *queries])
    features = train[0].shape[1]
    data = np.zeros((len(train), longest, features), dtype=np.float32)
    for i, s in enumerate(train):
        data[i, : len(s)] = s.numpy()
    wrapper = _Truncated(model)
    explainer = comte_cls(wrapper, (data, np.asarray(labels)), backend="PYT", mode="time",
                          method="brute", number_distractors=2, silent=True)  # fmt: skip
    out = []
    for q in queries:
        wrapper.length = len(q)
        x = np.zeros((1, longest, features), dtype=np.float32)
        x[0, : len(q)] = q.numpy()
        cf, _ = explainer.explain(x)
        series = torch.as_tensor(np.asarray(cf, dtype=np.float32).reshape(longest, features))
        series = series[: len(q)]
        with torch.no_grad():
            pred = int(model(series[None]).argmax(-1))
        out.append((series.numpy(), pred))
    return out
