"""The numpy kernels: the reference backend, and the one that runs without numba.

:mod:`graphcore.kernels.compiled` has every kernel here under the same name and signature,
module for module: :mod:`~graphcore.kernels.reference.activations` (ReLU, the sigmoid),
:mod:`~graphcore.kernels.reference.losses` (the fused cross-entropies),
:mod:`~graphcore.kernels.reference.columns` (a convolution's im2col and col2im),
:mod:`~graphcore.kernels.reference.pooling` (max pooling and its gradient) and
:mod:`~graphcore.kernels.reference.solvers` (the solver updates). Each kernel takes its
arrays and writes its result into ``out`` (solver kernels update a
:class:`~graphcore.kernels.segments.Segment` in place). A kernel that needs scratch memory or
constants takes a ``scratch`` argument, made once by the same backend's ``<kernel>_scratch``
from the kernel's arrays, and passed along with those same arrays on every call: no kernel
allocates per call.

:mod:`~graphcore.kernels.reference.winograd_conv` is not one of those kernels: Winograd's
F(2x2, 3x3) convolution, which plans run instead of some column products
(:mod:`graphcore.machines.conv_fusion`), as the compiled module of the same name does.

The numpy forms are picked for the fewest and cheapest passes. numpy's speed per element
differs by an order of magnitude between ufuncs on this kind of machine: ``maximum`` against
a Python scalar takes 4x longer than against an array of zeros, ``sign`` is not vectorised
where ``ceil`` and ``minimum`` are, ``exp`` and ``log`` cost 15x an ``add``, and a
float-times-bool product allocates a cast buffer on every call.

Example:
    >>> import numpy as np
    >>> x = np.array([-2.0, 0.0, 3.0]); out = np.empty(3)
    >>> relu(x, out, relu_scratch(x, out)); out.tolist()
    [0.0, 0.0, 3.0]
    >>> sigmoid(x, out, sigmoid_scratch(x, out)); np.round(out, 4).tolist()
    [0.1192, 0.5, 0.9526]
"""

from .activations import (
    bias_add,
    bias_add_scratch,
    bias_relu,
    bias_relu_scratch,
    bias_sigmoid,
    bias_sigmoid_scratch,
    relu,
    relu_grad,
    relu_grad_bias,
    relu_grad_bias_scratch,
    relu_grad_scratch,
    relu_scratch,
    sigmoid,
    sigmoid_scratch,
)
from .columns import col2im, col2im_scratch, im2col, im2col_scratch
from .losses import LogSum as LogSum
from .losses import log_sum as log_sum
from .losses import (
    sigmoid_bce,
    sigmoid_bce_grad,
    sigmoid_bce_grad_scratch,
    sigmoid_bce_scratch,
    sigmoid_bce_sum,
    sigmoid_bce_sum_scratch,
    softmax_ce_grad,
    softmax_ce_grad_scratch,
    softmax_ce_sum,
    softmax_ce_sum_scratch,
)
from .losses import sigmoid_parts as sigmoid_parts
from .pooling import max_pool2d, max_pool2d_grad, max_pool2d_grad_scratch, max_pool2d_scratch
from .solvers import adagrad, adam, momentum, regularise, rmsprop, sgd

# every kernel, module by module: the names ``compiled`` defines too. (``LogSum``,
# ``log_sum`` and ``sigmoid_parts`` are helpers of the numpy loss kernels, not kernels.)
__all__ = [
    "relu", "relu_scratch", "relu_grad", "relu_grad_scratch", "sigmoid", "sigmoid_scratch",
    "bias_add", "bias_add_scratch", "bias_relu", "bias_relu_scratch", "bias_sigmoid",
    "bias_sigmoid_scratch", "relu_grad_bias", "relu_grad_bias_scratch",
    "sigmoid_bce", "sigmoid_bce_scratch", "sigmoid_bce_sum", "sigmoid_bce_sum_scratch",
    "sigmoid_bce_grad", "sigmoid_bce_grad_scratch", "softmax_ce_sum", "softmax_ce_sum_scratch",
    "softmax_ce_grad", "softmax_ce_grad_scratch", "im2col", "im2col_scratch",
    "col2im", "col2im_scratch", "max_pool2d", "max_pool2d_scratch", "max_pool2d_grad",
    "max_pool2d_grad_scratch", "regularise", "sgd", "momentum", "adagrad", "rmsprop", "adam",
]
