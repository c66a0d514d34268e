"""The recurrent layers `ladder.scratch.rnn.RNN`, `ladder.scratch.lstm.LSTM` and
`ladder.scratch.gru.GRU` against `torch.nn.RNN`, `LSTM` and `GRU` (float64, batch-first), with and
without a padding mask, in both directions, and by central differences."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ladder.errors import LadderError
from ladder.scratch.gradcheck import numerical_gradient, relative_error
from ladder.scratch.gru import GRU
from ladder.scratch.lstm import LSTM
from ladder.scratch.recurrence import Recurrent
from ladder.scratch.rnn import RNN

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
N, T, D, H = 4, 5, 3, 6  # batch, steps, input features, hidden size
LENGTHS = [5, 2, 1, 4]  # unsorted, so torch must sort and unsort the packed batch
CELLS = {"rnn": (RNN, torch.nn.RNN), "lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU)}


@pytest.fixture(params=list(CELLS))
def cell(request: pytest.FixtureRequest) -> str:
    """Each test runs for the RNN, the LSTM and the GRU."""
    return request.param


def _numpy_layer(cell: str, i: int, h: int, seed: int | None = None) -> Recurrent:
    rng = None if seed is None else np.random.default_rng(seed)
    return CELLS[cell][0](i, h, rng=rng)


def _pair(cell: str, reverse: bool, seed: int = 0) -> tuple[torch.nn.RNNBase, Recurrent]:
    """A torch module and the NumPy layer holding the same weights: for `reverse`, those of the
    backward direction of a bidirectional module."""
    torch.manual_seed(seed)
    net = CELLS[cell][1](D, H, batch_first=True, bidirectional=reverse).double()
    layer = _numpy_layer(cell, D, H, seed)
    suffix = "_l0_reverse" if reverse else "_l0"
    for name in NAMES:
        layer.params[name] = getattr(net, name + suffix).detach().numpy().copy()
    return net, layer


def _torch_forward(
    net: torch.nn.RNNBase, x: torch.Tensor, lengths: list[int] | None, reverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs (N,T,H), h_n (N,H)) of the direction the NumPy layer runs."""
    if lengths is None:
        out, h_n = net(x)
    else:
        lengths_t = torch.tensor(lengths)
        packed = pack_padded_sequence(x, lengths_t, batch_first=True, enforce_sorted=False)
        out, h_n = net(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    if isinstance(h_n, tuple):  # an LSTM's (h_n, c_n): the layer's last_hidden is h_n
        h_n = h_n[0]
    direction = 1 if reverse else 0
    return out[..., direction * H : (direction + 1) * H], h_n[direction]


def _mask(lengths: list[int] | None) -> np.ndarray | None:
    return None if lengths is None else np.arange(T)[None, :] < np.array(lengths)[:, None]


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("grad_from", ["outputs", "last", "both"])
def test_matches_torch(cell: str, lengths: list[int] | None, reverse: bool, grad_from: str) -> None:
    net, layer = _pair(cell, reverse)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, T, D))
    d_out = rng.standard_normal((N, T, H)) if grad_from != "last" else None
    d_last = rng.standard_normal((N, H)) if grad_from != "outputs" else None

    out = layer.forward(x, mask=_mask(lengths), reverse=reverse)
    dx = layer.backward(d_out, d_last)

    x_t = torch.tensor(x, requires_grad=True)
    out_t, h_n_t = _torch_forward(net, x_t, lengths, reverse)
    loss = torch.zeros((), dtype=torch.float64)
    if d_out is not None:
        loss = loss + (out_t * torch.tensor(d_out)).sum()
    if d_last is not None:
        loss = loss + (h_n_t * torch.tensor(d_last)).sum()
    loss.backward()

    assert relative_error(out, out_t.detach().numpy()) <= 1e-10
    assert relative_error(layer.last_hidden, h_n_t.detach().numpy()) <= 1e-10
    assert relative_error(dx, x_t.grad.numpy()) <= 1e-8
    suffix = "_l0_reverse" if reverse else "_l0"
    for name in NAMES:
        want = getattr(net, name + suffix).grad.numpy()
        assert relative_error(layer.grads[name], want) <= 1e-8, name


def test_padding_outputs_zero_and_ignored(cell: str) -> None:
    """Padded steps output 0, their inputs and output gradients change nothing."""
    _, layer = _pair(cell, reverse=False)
    rng = np.random.default_rng(2)
    x, d_out = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
    mask = _mask(LENGTHS)
    out = layer.forward(x, mask=mask)
    dx = layer.backward(d_out)
    assert np.all(out[~mask] == 0) and np.all(dx[~mask] == 0)
    x2, d_out2 = x.copy(), d_out.copy()
    x2[~mask], d_out2[~mask] = 100.0, 100.0
    assert np.array_equal(layer.forward(x2, mask=mask), out)
    assert np.array_equal(layer.backward(d_out2), dx)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_numerical_gradient(cell: str, reverse: bool) -> None:
    n, t, i, h = 2, 3, 2, 2
    layer = _numpy_layer(cell, i, h, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, t, i))
    mask = np.array([[True, True, True], [True, True, False]])
    d_out, d_last = rng.standard_normal((n, t, h)), rng.standard_normal((n, h))

    def loss() -> float:
        out = layer.forward(x, mask=mask, reverse=reverse)
        return float((out * d_out).sum() + (layer.last_hidden * d_last).sum())

    loss()
    dx = layer.backward(d_out, d_last)
    grads = {name: g.copy() for name, g in layer.grads.items()}
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for name in NAMES:
        assert relative_error(grads[name], numerical_gradient(loss, layer.params[name])) <= 1e-6


def test_reads_params_replaced_between_calls(cell: str) -> None:
    """The rung swaps `params` arrays before each forward: the layer must use the new ones."""
    _, layer = _pair(cell, reverse=False, seed=0)
    net, other = _pair(cell, reverse=False, seed=5)
    for name in NAMES:
        layer.params[name] = other.params[name]
    x = np.random.default_rng(6).standard_normal((N, T, D))
    out_t, _ = _torch_forward(net, torch.tensor(x), None, reverse=False)
    assert relative_error(layer.forward(x), out_t.detach().numpy()) <= 1e-10


def test_float32_stays_float32(cell: str) -> None:
    layer = _numpy_layer(cell, D, H, seed=7)
    for name in NAMES:
        layer.params[name] = layer.params[name].astype(np.float32)
    x = np.random.default_rng(8).standard_normal((N, T, D)).astype(np.float32)
    out = layer.forward(x, mask=_mask(LENGTHS))
    dx = layer.backward(np.ones_like(out), np.ones((N, H), dtype=np.float32))
    assert out.dtype == dx.dtype == layer.last_hidden.dtype == np.float32
    assert all(layer.grads[name].dtype == np.float32 for name in NAMES)


def test_init_shapes_and_bound(cell: str) -> None:
    layer = _numpy_layer(cell, D, H, seed=9)
    net = CELLS[cell][1](D, H, batch_first=True)
    for name in NAMES:
        assert layer.params[name].shape == tuple(getattr(net, name + "_l0").shape)
        assert np.abs(layer.params[name]).max() <= 1 / np.sqrt(H)


def test_bad_shapes_raise(cell: str) -> None:
    layer = _numpy_layer(cell, D, H)
    name = cell.upper()
    with pytest.raises(LadderError, match="backward called before forward"):
        layer.backward(np.zeros((N, T, H)))
    with pytest.raises(LadderError) as err:
        layer.forward(np.zeros((N, T, D - 1)))
    assert str(err.value) == (
        f"{name}(in={D}, hidden={H}): input has {D - 1} features per step, expected {D} "
        f"(input shape {(N, T, D - 1)})"
    )
    with pytest.raises(LadderError, match=name + r"\(in=3, hidden=6\): input must be .*\(4, 3\)"):
        layer.forward(np.zeros((N, D)))
    with pytest.raises(LadderError, match=r"mask shape \(4, 4\) .* \(4, 5\)"):
        layer.forward(np.zeros((N, T, D)), mask=np.ones((N, T - 1), dtype=bool))
    layer.forward(np.zeros((N, T, D)))
    with pytest.raises(LadderError, match=r"d_outputs shape \(4, 5, 5\) .* \(4, 5, 6\)"):
        layer.backward(np.zeros((N, T, H - 1)))
    with pytest.raises(LadderError, match=r"d_last shape \(3, 6\) .* \(4, 6\)"):
        layer.backward(None, np.zeros((N - 1, H)))


def test_last_cell_matches_torch() -> None:
    """An LSTM's `last_cell` is torch's c_n, at each row's last real token."""
    net, layer = _pair("lstm", reverse=False)
    x = np.random.default_rng(10).standard_normal((N, T, D))
    layer.forward(x, mask=_mask(LENGTHS))
    packed = pack_padded_sequence(
        torch.tensor(x), torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False
    )
    _, (_, c_n) = net(packed)
    assert relative_error(layer.last_cell, c_n[0].detach().numpy()) <= 1e-10
