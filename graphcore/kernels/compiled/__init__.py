"""The numba kernels: :mod:`graphcore.kernels.reference`'s names and signatures, module for
module (:mod:`~graphcore.kernels.compiled.activations`, :mod:`~graphcore.kernels.compiled.losses`,
:mod:`~graphcore.kernels.compiled.columns`, :mod:`~graphcore.kernels.compiled.pooling`,
:mod:`~graphcore.kernels.compiled.solvers`), each fusing its numpy passes into one compiled
loop (imported only when :mod:`graphcore.accel` is on).

A numpy pass reads and writes its arrays once, so RMSProp over the talk's 222k parameters
moves ~13 MB per step in numpy where one fused loop moves ~4 MB. The loops index their
arrays flat, so they take C-contiguous float32 or float64 arrays; a ``<kernel>_scratch``
made for other arrays (strided views) says so, and the kernel then runs the reference one
(:mod:`~graphcore.kernels.compiled.layout`). Kernels that gain nothing from a loop (``relu``,
the elementwise ``sigmoid_bce``) are the reference ones.

The sigmoid and the sigmoid cross-entropy compute ``exp`` and ``log`` with polynomials
(:mod:`~graphcore.kernels.compiled.polynomial`): LLVM can only vectorise a loop without
calls.

Two modules are not kernels of the common set: :mod:`~graphcore.kernels.compiled.direct_conv`,
a direct 3x3 convolution (numba only), and :mod:`~graphcore.kernels.compiled.winograd_conv`,
Winograd's F(2x2, 3x3), which plans run instead of the column products (thin layers direct,
wider ones by Winograd: :mod:`graphcore.machines.conv_fusion`); the numpy backend has its
own Winograd (:mod:`graphcore.kernels.reference.winograd_conv`, the same class and steps).

numba compiles each loop on first use (one to three seconds per loop and dtype) and keeps it
on disk in the user's cache directory (:mod:`graphcore.kernels.jit`).

Example:
    >>> import numpy as np
    >>> y, g, out = np.array([0.0, 2.0]), np.array([5.0, 5.0]), np.empty(2)
    >>> relu_grad(y, g, out, relu_grad_scratch(y, g, out)); out.tolist()
    [0.0, 5.0]
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
from .pooling import max_pool2d, max_pool2d_grad, max_pool2d_grad_scratch, max_pool2d_scratch
from .solvers import adagrad, adam, momentum, regularise, rmsprop, sgd

# every kernel, module by module: the names ``reference`` defines
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
