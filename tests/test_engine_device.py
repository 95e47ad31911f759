"""Device resolution, BatchNorm folding, the CUDA out-of-memory message."""

from __future__ import annotations

import subprocess
import sys

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


@pytest.mark.parametrize("config", ["lite", "lite2"])
def test_fold_batchnorm_keeps_the_output(config: str) -> None:
    """lite2's trunk has "same"-windowed stride-2 convolutions (effnet.SameConv2d): folded into plain convolutions
    before session 56, they lost their windows, and every lite2 render was off by up to 0.02 (review)."""
    torch.manual_seed(0)
    model = build_model(config)
    # give BN non-trivial statistics
    model.train()
    with torch.no_grad():
        model.encode_key(torch.rand(2, 3, 64, 64))
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.encode_key(x)
        folded = prepare_model(fold_batchnorm(build_model(config)).eval(), torch.device("cpu"))  # smoke: no BN
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        fold_batchnorm(model)
        out = model.encode_key(x.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for a, b in zip(ref.keys(), out.keys(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_folding_draws_no_random_numbers_and_leaves_the_source_layers_alone() -> None:
    """The folded convolutions were new layers, randomly initialised from the host's seeded RNG (QA), then made with
    torch's skip_init, which imports sympy: 0.6 s of every ``vom render`` process (a third of a re-render's fixed
    cost)."""
    conv = torch.nn.Conv2d(3, 4, 3, bias=False)
    bn = torch.nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    seq = torch.nn.Sequential(conv, bn)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        ref = seq(x)
    kept = conv.weight.detach().clone()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fold_batchnorm(seq)
    assert torch.equal(torch.rand(3), expected)
    assert isinstance(seq[1], torch.nn.Identity) and seq[0] is not conv and torch.equal(conv.weight, kept)
    with torch.no_grad():
        torch.testing.assert_close(seq(x), ref, rtol=1e-5, atol=1e-5)


def test_readying_the_model_imports_no_sympy() -> None:
    code = ("import sys, torch\n"
            "from vom_plugin.engine.device import prepare_model\n"
            "from vom_plugin.model import build_model\n"
            "prepare_model(build_model('lite'), torch.device('cpu'))\n"
            "print('sympy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


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
