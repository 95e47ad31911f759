"""Device resolution, BatchNorm folding, the CUDA out-of-memory message."""

from __future__ import annotations

import pytest
import torch

from vom_plugin.engine.device import fold_batchnorm, oom_guard, prepare_model, resolve_device
from vom_plugin.errors import InputError
from vom_plugin.model import build_model


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="'tpu'.*auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'cuda'.*not available"):
        resolve_device("cuda")


def test_fold_batchnorm_keeps_the_output() -> None:
    torch.manual_seed(0)
    model = build_model("lite")
    # give BN non-trivial statistics
    model.train()
    with torch.no_grad():
        model.encode_key(torch.rand(2, 3, 64, 64))
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.encode_key(x)
        folded = prepare_model(fold_batchnorm(build_model("lite")).eval(), torch.device("cpu"))  # smoke: no BN
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        fold_batchnorm(model)
        out = model.encode_key(x.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for a, b in zip(ref.keys(), out.keys(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_oom_becomes_an_input_error_naming_the_working_size() -> None:
    with pytest.raises(InputError, match=r"working size 1920x1088.*--working-size"):
        with oom_guard((1088, 1920)):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")


def test_to_input_converts_dtype_and_layout_in_one_copy_with_the_same_values() -> None:
    import torch

    from vom_plugin.engine.device import to_input

    half = torch.randn(1, 32, 17, 30).to(torch.float16)  # cached key features: half precision, NCHW
    got = to_input(half, torch.device("cpu"), dtype=torch.float32)
    assert got.dtype == torch.float32 and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, half.float())
    ready = torch.randn(1, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    assert to_input(ready, torch.device("cpu")) is ready  # nothing to do: no copy
