r"""2-D convolution (cross-correlation, as in PyTorch) by im2col and one matrix product.

For an input $x$ of shape $(N, C, H, W)$, zero-padded by $P$ on each side, a weight $w$ of shape
$(O, C, K_h, K_w)$, bias $b$ of shape $(O,)$ and stride $S$:

$$y_{n,o,p,q} = b_o + \sum_{c=0}^{C-1} \sum_{i=0}^{K_h-1} \sum_{j=0}^{K_w-1}
    w_{o,c,i,j}\; x^{\text{pad}}_{n,\,c,\,pS + i,\,qS + j},$$

with output size (floored, as in PyTorch)

$$H_{\text{out}} = \left\lfloor \frac{H + 2P - K_h}{S} \right\rfloor + 1, \qquad
W_{\text{out}} = \left\lfloor \frac{W + 2P - K_w}{S} \right\rfloor + 1.$$

im2col copies every window into a column, so that the sum becomes one matrix product. With
$L = H_{\text{out}} W_{\text{out}}$ positions and $R = C K_h K_w$ entries per window,
$\text{cols}_{n,(c,i,j),(p,q)} = x^{\text{pad}}_{n,c,pS+i,qS+j}$ has shape $(N, R, L)$ and, with
$W_{\text{col}} = w$ reshaped to $(O, R)$,

$$Y_n = W_{\text{col}}\, \text{cols}_n + b \mathbf 1^\top \qquad (O \times L, \text{ every } n).$$

Backward, from $G_n = \partial L / \partial Y_n$ $(O \times L)$:

$$\frac{\partial L}{\partial W_{\text{col}}} = \sum_n G_n\, \text{cols}_n^\top, \qquad
\frac{\partial L}{\partial b} = \sum_n G_n \mathbf 1, \qquad
\frac{\partial L}{\partial x} = \operatorname{col2im}\!\left(W_{\text{col}}^\top G_n\right),$$

where col2im is the adjoint of im2col: it adds each column entry back onto the input pixel it
was copied from (overlapping windows sum) and drops the padding, so that
$\langle \operatorname{col2im}(g), x \rangle = \langle g, \operatorname{im2col}(x) \rangle$.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ladder.errors import LadderError
from ladder.scratch.init import torch_default
from ladder.scratch.layer import Layer

Pair = int | tuple[int, int]


def pair(value: Pair) -> tuple[int, int]:
    """(height, width) from one int for both or a pair, as PyTorch's size arguments."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def window_output_shape(
    x_shape: tuple[int, ...],
    kernel: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    layer: str = "im2col",
) -> tuple[int, int]:
    """(H_out, W_out) of sliding `kernel` over the last two axes of an (N, C, H, W) input.

    Raises LadderError naming `layer`, the input shape and the kernel when the input is not
    4-D or the (padded) input is smaller than the kernel.
    """
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    if len(x_shape) != 4:
        raise LadderError(
            f"{layer}: input must be 4-D (batch, channels, height, width), "
            f"got input shape {tuple(x_shape)}"
        )
    height, width = x_shape[2] + 2 * ph, x_shape[3] + 2 * pw
    if height < kh or width < kw:
        raise LadderError(
            f"{layer}: input is {height}x{width} with padding {ph}x{pw}, smaller than the "
            f"{kh}x{kw} kernel (input shape {tuple(x_shape)})"
        )
    return (height - kh) // sh + 1, (width - kw) // sw + 1


def _padded(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def im2col(x: np.ndarray, kh: int, kw: int, stride: Pair = 1, padding: Pair = 0) -> np.ndarray:
    """Every (kh, kw) window of x (N, C, H, W) as a column: cols (N, C*kh*kw, H_out*W_out).

    Rows are ordered (c, i, j), as `weight.reshape(out, -1)` orders a Conv2d weight.
    """
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    oh, ow = window_output_shape(x.shape, (kh, kw), stride, padding)
    n, c = x.shape[:2]
    windows = sliding_window_view(_padded(x, ph, pw), (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    # (N, C, OH, OW, kh, kw) -> (N, C, kh, kw, OH, OW): the copy runs along output rows
    np.copyto(cols, windows.transpose(0, 1, 4, 5, 2, 3))
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, ...],
    kh: int,
    kw: int,
    stride: Pair = 1,
    padding: Pair = 0,
) -> np.ndarray:
    """The adjoint of `im2col`: cols (N, C*kh*kw, H_out*W_out) summed back into x_shape."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    oh, ow = window_output_shape(x_shape, (kh, kw), stride, padding)
    n, c, h, w = x_shape
    blocks = cols.reshape(n, c, kh, kw, oh, ow)
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    # one strided slice-add per kernel offset (kh*kw of them) rather than np.add.at per pixel
    for i in range(kh):
        for j in range(kw):
            out[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += blocks[:, :, i, j]
    if ph == 0 and pw == 0:
        return out
    return np.ascontiguousarray(out[:, :, ph : ph + h, pw : pw + w])


class Conv2d(Layer):
    """Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias) as `torch.nn.Conv2d`
    (no dilation, no groups); weight (out_ch, in_ch, kh, kw), bias (out_ch,)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: Pair,
        stride: Pair = 1,
        padding: Pair = 0,
        bias: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch = in_ch, out_ch
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), pair(padding)
        shape = (out_ch, in_ch, *self.kernel_size)
        self.params["weight"] = torch_default(shape, rng)
        if bias:
            self.params["bias"] = torch_default((out_ch,), rng, fan_in=in_ch * shape[2] * shape[3])
        self._cols: np.ndarray | None = None  # (N, C*kh*kw, L) of the last forward
        self._x_shape: tuple[int, ...] = ()
        self._y_shape: tuple[int, ...] = ()

    def __repr__(self) -> str:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (
            f"Conv2d(in={self.in_ch}, out={self.out_ch}, kernel={kh}x{kw}, stride={sh}x{sw}, "
            f"padding={ph}x{pw})"
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """y (N, out_ch, H_out, W_out) for x (N, in_ch, H, W)."""
        weight = self.params["weight"]
        sizes = (self.kernel_size, self.stride, self.padding)
        oh, ow = window_output_shape(x.shape, *sizes, layer=repr(self))
        if x.shape[1] != self.in_ch:
            raise LadderError(
                f"{self!r}: input has {x.shape[1]} channels, expected {self.in_ch} "
                f"(input shape {x.shape}, weight shape {weight.shape})"
            )
        cols = im2col(x, *self.kernel_size, self.stride, self.padding)  # (N, C*kh*kw, L)
        y = np.matmul(weight.reshape(self.out_ch, -1), cols)  # (N, out_ch, L)
        if "bias" in self.params:
            y += self.params["bias"][:, None]
        self._cols, self._x_shape = cols, x.shape
        self._y_shape = (x.shape[0], self.out_ch, oh, ow)
        return y.reshape(self._y_shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx (N, in_ch, H, W) from dL/dy; fills grads["weight"] and grads["bias"]."""
        if self._cols is None:
            raise LadderError(f"{self!r}: backward called before forward")
        if dout.shape != self._y_shape:
            raise LadderError(
                f"{self!r}: output gradient has shape {dout.shape}, expected the output's "
                f"shape {self._y_shape} (input shape {self._x_shape})"
            )
        n, _, length = self._cols.shape
        weight = self.params["weight"]
        grad = dout.reshape(n, self.out_ch, length)  # (N, out_ch, L)
        # dW = sum_n G_n cols_n^T: N small products, then a sum over the batch
        dw = np.matmul(grad, self._cols.transpose(0, 2, 1)).sum(axis=0)
        self.grads["weight"] = dw.reshape(weight.shape)
        if "bias" in self.params:
            self.grads["bias"] = grad.sum(axis=(0, 2))
        dcols = np.matmul(weight.reshape(self.out_ch, -1).T, grad)  # (N, C*kh*kw, L)
        return col2im(dcols, self._x_shape, *self.kernel_size, self.stride, self.padding)
