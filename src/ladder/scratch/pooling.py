r"""Max and average pooling over (kh, kw) windows with stride S (no padding), as PyTorch.

Each channel is pooled on its own. With the window of output pixel $(p, q)$
$\Omega_{pq} = \{(pS + i,\, qS + j) : 0 \le i < k_h,\ 0 \le j < k_w\}$ and output size
$H_{\text{out}} = \lfloor (H - k_h) / S \rfloor + 1$ (floored: odd sizes drop the last rows and
columns, which then get zero gradient):

$$\text{max:}\quad y_{pq} = \max_{(h,w) \in \Omega_{pq}} x_{hw}, \qquad
\frac{\partial L}{\partial x_{hw}} = \sum_{p,q} \frac{\partial L}{\partial y_{pq}}
    \,\mathbb 1\!\left[(h, w) = \operatorname{argmax}_{\Omega_{pq}} x\right],$$

the gradient routed to the window's maximum (the first one in row-major order when several are
equal, as PyTorch's CPU kernel), summed where overlapping windows share it;

$$\text{average:}\quad y_{pq} = \frac{1}{k_h k_w} \sum_{(h,w) \in \Omega_{pq}} x_{hw}, \qquad
\frac{\partial L}{\partial x_{hw}} = \frac{1}{k_h k_w}
    \sum_{p,q \,:\, (h,w) \in \Omega_{pq}} \frac{\partial L}{\partial y_{pq}}.$$

Both use the convolution's `im2col` with every channel as its own one-channel image, so the
windows are columns, and its adjoint `col2im` to send the gradient back.
"""

from __future__ import annotations

import numpy as np

from ladder.errors import LadderError
from ladder.scratch.conv import Pair, col2im, im2col, pair, window_output_shape
from ladder.scratch.layer import Layer


class _Pool2d(Layer):
    """What both poolings share: sizes, the shape checks and the windows as columns."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = self.kernel_size if stride is None else pair(stride)
        self._x_shape: tuple[int, ...] = ()
        self._y_shape: tuple[int, ...] = ()

    def __repr__(self) -> str:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return f"{type(self).__name__}(kernel={kh}x{kw}, stride={sh}x{sw})"

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """cols (N*C, kh*kw, H_out*W_out) of x (N, C, H, W); remembers the shapes."""
        oh, ow = window_output_shape(x.shape, self.kernel_size, self.stride, 0, repr(self))
        n, c, h, w = x.shape
        self._x_shape, self._y_shape = x.shape, (n, c, oh, ow)
        return im2col(x.reshape(n * c, 1, h, w), *self.kernel_size, self.stride)

    def _unwindows(self, dcols: np.ndarray) -> np.ndarray:
        """dL/dx (N, C, H, W) from the gradient of the columns `_windows` made."""
        n, c, h, w = self._x_shape
        dx = col2im(dcols, (n * c, 1, h, w), *self.kernel_size, self.stride)
        return dx.reshape(self._x_shape)

    def _check_grad(self, dout: np.ndarray) -> None:
        if not self._x_shape:
            raise LadderError(f"{self!r}: backward called before forward")
        if dout.shape != self._y_shape:
            raise LadderError(
                f"{self!r}: output gradient has shape {dout.shape}, expected the output's "
                f"shape {self._y_shape} (input shape {self._x_shape})"
            )


class MaxPool2d(_Pool2d):
    """MaxPool2d(kernel_size, stride=kernel_size) as `torch.nn.MaxPool2d` (no padding)."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None) -> None:
        super().__init__(kernel_size, stride)
        self._argmax = np.empty((0, 1, 0), dtype=np.intp)  # (N*C, 1, L): index of each winner

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """y (N, C, H_out, W_out): the maximum of each window."""
        cols = self._windows(x)  # (N*C, kh*kw, L)
        self._argmax = cols.argmax(axis=1)[:, None, :]  # first maximum, as torch
        return np.take_along_axis(cols, self._argmax, axis=1).reshape(self._y_shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx: each output's gradient added at its window's maximum."""
        self._check_grad(dout)
        rows, _, length = self._argmax.shape
        dcols = np.zeros((rows, self.kernel_size[0] * self.kernel_size[1], length), dout.dtype)
        np.put_along_axis(dcols, self._argmax, dout.reshape(rows, 1, length), axis=1)
        return self._unwindows(dcols)


class AvgPool2d(_Pool2d):
    """AvgPool2d(kernel_size, stride=kernel_size) as `torch.nn.AvgPool2d` (no padding)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """y (N, C, H_out, W_out): the mean of each window."""
        return self._windows(x).mean(axis=1).reshape(self._y_shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx: each output's gradient shared equally by its window."""
        self._check_grad(dout)
        n, c, oh, ow = self._y_shape
        area = self.kernel_size[0] * self.kernel_size[1]
        share = dout.reshape(n * c, 1, oh * ow) / area
        return self._unwindows(np.broadcast_to(share, (n * c, area, oh * ow)))
