"""samteach.fast.gemm: the click's products on oneDNN are F.linear's products.

Both branches are tested: the oneDNN one (where this PyTorch build has it) and the F.linear
fallback (forced), against F.linear itself, with the fusions the click uses (a GELU, a
residual) and the operand layouts it passes (transposed weights, 2-D and 3-D inputs).
"""

import pytest
import torch
import torch.nn.functional as F

from samteach.fast import gemm


@pytest.fixture(params=["onednn", "fallback"])
def branch(request, monkeypatch):
    if request.param == "onednn" and not gemm.onednn_available():
        pytest.skip("this PyTorch build has no oneDNN linear")
    monkeypatch.setattr(gemm, "_ONEDNN", request.param == "onednn")
    monkeypatch.setattr(gemm, "MIN_MACS", 0)  # the small test products take the branch too
    return request.param


def _operands(shape, n_out, transposed, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    weight = torch.randn(n_out, shape[-1], generator=g) / shape[-1] ** 0.5
    if transposed:  # the click passes image maps as weights, often as a transposed view
        weight = torch.randn(shape[-1], n_out, generator=g).T / shape[-1] ** 0.5
    return x, weight, torch.randn(n_out, generator=g)


@pytest.mark.parametrize("shape", [(300, 64), (1, 300, 64), (2, 5, 64)])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_linear_equals_f_linear(branch, shape, transposed, with_bias):
    x, weight, bias = _operands(shape, 48, transposed)
    bias = bias if with_bias else None
    with torch.no_grad():
        expected = F.linear(x, weight, bias)
        torch.testing.assert_close(gemm.linear(x, weight, bias), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gemm.linear(x, weight, bias, gelu=True), F.gelu(expected),
                                   rtol=1e-5, atol=1e-5)
        residual = torch.randn(expected.shape)
        kept = residual.clone()
        torch.testing.assert_close(gemm.linear(x, weight, bias, residual=residual),
                                   expected + residual, rtol=1e-5, atol=1e-5)
        assert torch.equal(residual, kept), "the residual must not be written"


def test_the_onednn_branch_is_taken_where_available(monkeypatch):
    """Where oneDNN is there, large no-grad float32 CPU products go to it (not F.linear);
    small ones, where its call costs more than it saves, stay with F.linear."""
    if not gemm.onednn_available():
        pytest.skip("this PyTorch build has no oneDNN linear")
    calls = []
    monkeypatch.setattr(gemm.F, "linear", lambda *a, **k: calls.append(a) or a[0] @ a[1].T)
    x, weight, bias = _operands((4096, 256), 256, False)  # 2^28 multiply-adds
    with torch.no_grad():
        gemm.linear(x, weight, bias)
        gemm.linear(x, weight, bias, gelu=True)
        gemm.linear(x, weight, bias, residual=torch.zeros(4096, 256))
        assert not calls, "a large product went to F.linear"
        gemm.linear(x[:2], weight)  # 2 x 256 x 256 multiply-adds
        assert len(calls) == 1, "a small product went to oneDNN"
        torch.backends.mkldnn.enabled = False  # the user's switch is obeyed
        try:
            gemm.linear(x, weight, bias)
        finally:
            torch.backends.mkldnn.enabled = True
        assert len(calls) == 2, "oneDNN was used while torch.backends.mkldnn was disabled"


def test_gradients_and_other_dtypes_use_f_linear():
    """Training (grad enabled) and non-float32 tensors take the F.linear branch, which
    autograd and every dtype support."""
    x, weight, bias = _operands((6, 8), 4, False)
    weight.requires_grad_(True)
    out = gemm.linear(x, weight, bias, gelu=True)
    out.sum().backward()
    assert weight.grad is not None
    with torch.no_grad():
        half = gemm.linear(x.double(), weight.double(), bias.double())
    assert half.dtype == torch.float64


def test_gelu_and_residual_together_are_refused():
    x, weight, bias = _operands((6, 8), 4, False)
    with pytest.raises(ValueError, match="not both"):
        gemm.linear(x, weight, bias, gelu=True, residual=torch.zeros(6, 4))
