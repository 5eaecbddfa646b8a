"""The click's large matrix products on oneDNN, where a CPU build of PyTorch has it.

On a CPU, ``torch.matmul`` and ``F.linear`` call Intel's MKL. On AMD processors MKL keeps to
its AVX2 kernels even where the CPU has AVX-512; oneDNN, the other math library inside every
x86 CPU build of PyTorch (its convolutions and bf16 products run there), uses the widest
instructions the CPU has. On an AVX-512 AMD CPU (Zen 5, 2 cores) oneDNN multiplies the
click's (N x C) @ (C x C') products about twice as fast as MKL (``benchmarks/
bench_vs_official.py`` reports the whole click); elsewhere the two are expected to be close.

:func:`linear` is ``F.linear`` with two fusions the click needs -- a GELU after the product,
or a residual added to it -- computed by oneDNN's matmul primitive when the tensors allow it
(float32 on the CPU, no gradient asked for), and by ``F.linear`` otherwise. oneDNN is reached
through ``torch.ops.mkldnn._linear_pointwise``, the operator PyTorch's own compiler emits for
CPU linear layers; it accepts strided (e.g. transposed) operands without copying them.
tests/test_fast_gemm.py holds both branches equal to ``F.linear`` (fp32, 1e-5).
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["is_exact_gelu", "linear", "onednn_available"]


def onednn_available() -> bool:
    """Whether this PyTorch build runs :func:`linear` on oneDNN: it has the operator, and the
    operator gives F.linear's numbers on a small product (a build may register an operator its
    CPU cannot run; then every product stays with F.linear)."""
    ops = getattr(torch.ops, "mkldnn", None)
    if not (torch.backends.mkldnn.is_available() and ops is not None
            and hasattr(ops, "_linear_pointwise")):
        return False
    x, weight = torch.arange(6.0).view(2, 3), torch.arange(12.0).view(4, 3) / 10
    try:
        with torch.no_grad():
            out = ops._linear_pointwise(x, weight, None, "none", [], "")
    except RuntimeError:
        return False
    return bool(torch.allclose(out, x @ weight.T))


_ONEDNN = onednn_available()


# Below this many multiply-adds oneDNN's call costs more than it saves (a 1 x 256 x 256
# product: 20 us against F.linear's 6 us).
MIN_MACS = 1 << 20


def _on_onednn(x: torch.Tensor, weight: torch.Tensor, *more: torch.Tensor) -> bool:
    # autocast (the bf16 opt-in) applies to F.linear, not to this operator: leave it F.linear's;
    # torch.backends.mkldnn.flags(enabled=False) turns this path off too
    return (_ONEDNN and torch.backends.mkldnn.enabled and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and x.numel() * weight.shape[0] >= MIN_MACS
            and all(t.device.type == "cpu" and t.dtype == torch.float32
                    for t in (x, weight, *more)))


def is_exact_gelu(act: nn.Module) -> bool:
    """Whether ``act`` is the GELU :func:`linear` can fuse (erf's, not the tanh estimate)."""
    return type(act) is nn.GELU and act.approximate == "none"


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           gelu: bool = False, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` -> its exact-erf GELU if ``gelu``, or plus ``residual``.

    x (..., C_in), weight (C_out, C_in) (any strides), bias (C_out,) or None, residual the
    shape of the output. Only one of ``gelu`` and ``residual`` at a time.
    """
    if gelu and residual is not None:
        raise ValueError("linear fuses a GELU or a residual, not both")
    if residual is None and _on_onednn(x, weight):
        attr = "gelu" if gelu else "none"
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], "none" if gelu else "")
    if residual is not None and _on_onednn(x, weight, residual) and (
            residual.shape == (*x.shape[:-1], weight.shape[0])):
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
    out = F.linear(x, weight, bias)
    if residual is not None:
        return out.add_(residual)  # out is new; the residual is not written
    return F.gelu(out) if gelu else out
