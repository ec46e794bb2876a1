"""Connectionist temporal classification: ``CTCLoss``, the negative log-likelihood of label
sequences under per-step class log-probabilities, summed over every alignment.

The forward kernel runs the alpha recursion (Graves et al., 2006) in log space over the
extended labels (a blank before, between and after the targets), vectorised over the batch
and the labels: one short numpy step per time step. The gradient kernel runs the beta
recursion and turns alpha * beta into each step's class posteriors, reusing the forward
kernel's alphas. Every buffer is made when a kernel is built, sized by the static shapes:
log-probs (T, N, C) and padded targets (N, S).

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> lp = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(20, 4, 6), gc.WithName("log_probs"))
    >>> tg = gc.NewMatrix(g, gc.Int64, gc.WithShape(4, 5), gc.WithName("targets"))
    >>> il = gc.NewVector(g, gc.Int64, gc.WithShape(4), gc.WithName("input_lengths"))
    >>> tl = gc.NewVector(g, gc.Int64, gc.WithShape(4), gc.WithName("target_lengths"))
    >>> gc.CTCLoss(lp, tg, il, tl).shape, gc.CTCLoss(lp, tg, il, tl, "none").shape
    ((), (4,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..shapes import Shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe
from .images import contiguous
from .loss.reduction import _check_reduction

__all__ = ["CTCLoss", "CTCLossOp", "CTCLossGradOp"]


class _Alignments:
    """The buffers and the two recursions of CTC for fixed arrays: log-probs ``lp`` (T, N, C),
    targets ``tg`` (N, S), input and target lengths ``il``, ``tl`` (N,); L = 2S + 1 extended
    labels, the blank at the even positions.

    ``forward()`` checks the operands' values and leaves each example's log-likelihood in
    ``ll`` (-inf when no alignment fits); ``posteriors()`` then leaves in ``post`` (N, T, C)
    each class's posterior at each step, summed over the extended labels (0 past an example's
    input length, and for an example with no alignment).
    """

    def __init__(self, lp: np.ndarray, tg: np.ndarray, il: np.ndarray, tl: np.ndarray,
                 who: str) -> None:
        t_len, n, c = lp.shape
        s = tg.shape[1]
        ext = 2 * s + 1
        dt = lp.dtype
        self.arrays = (lp, tg, il, tl)
        self.who = who
        self.lp2, self.lp_refresh = contiguous(lp, (t_len, n * c))
        self.slots = np.arange(s)
        self.valid = np.empty((n, s), np.bool_)  # target slots within the target length
        self.bad = np.empty((n, s), np.bool_)
        self.bad2 = np.empty((n, s), np.bool_)
        self.labels = np.empty((n, s), np.int64)  # the targets, blank past each length
        self.lab = np.zeros((n, ext), np.int64)  # extended labels
        self.row_base = (np.arange(n) * c)[:, None]
        self.gather = np.empty((n, ext), np.int64)  # flat positions in a (N*C) row of lp
        self.lpe = np.empty((t_len, n, ext), dt)  # each extended label's log-prob, per step
        self.lpe2 = self.lpe.reshape(t_len, n * ext)
        # 0 where the skip s-2 -> s is allowed (s a target unlike the one before), else -inf
        self.skip = np.full((n, ext), -np.inf, dt)
        self.same = np.empty((n, max(s - 1, 0)), np.bool_)
        self.alpha = np.empty((t_len, n, ext), dt)
        self.alpha1 = self.alpha.reshape(-1)
        self.tmp = np.empty((n, ext), dt)
        self.last = np.empty(n, np.int64)  # each example's last step
        self.pos = np.empty((2, n), np.int64)  # the final states: last blank, last target
        self.state = np.empty((2, n), np.int64)
        self.base = np.arange(n) * ext
        self.one = np.empty(n, np.int64)
        self.final = np.empty((2, n), dt)
        self.empty = np.empty(n, np.bool_)  # no targets: one final state
        self.ll = np.empty(n, dt)
        # backward
        self.beta = np.empty((n, ext), dt)  # beta at step t, without step t's log-prob
        self.nxt = np.empty((n, ext), dt)
        self.rows = np.empty(n, np.bool_)
        self.ends = np.empty((n, ext), dt)  # 0 at the final states, -inf elsewhere
        self.post_l = np.empty((n, t_len, ext), dt)
        self.q = np.empty((n, 1, 1), dt)
        self.onehot = np.zeros((n, ext, c), dt)  # extended label -> class
        self.hot = np.empty((n, ext), np.int64)
        self.hot_base = (np.arange(n * ext) * c).reshape(n, ext)
        self.post = np.empty((n, t_len, c), dt)

    def _check_and_label(self) -> None:
        lp, tg, il, tl = self.arrays
        t_len, _, c = lp.shape
        s = tg.shape[1]
        if il.size and (il.min() < 1 or il.max() > t_len):
            raise ValueError(
                f"{self.who}: input lengths must lie in [1, {t_len}] (the log-probs' time "
                f"steps), got values from {int(il.min())} to {int(il.max())}"
            )
        if tl.size and (tl.min() < 0 or tl.max() > s):
            raise ValueError(
                f"{self.who}: target lengths must lie in [0, {s}] (the targets' width), got "
                f"values from {int(tl.min())} to {int(tl.max())}"
            )
        np.less(self.slots, tl[:, None], out=self.valid)
        np.less(tg, 1, out=self.bad)
        np.greater_equal(tg, c, out=self.bad2)
        np.logical_or(self.bad, self.bad2, out=self.bad)
        np.logical_and(self.bad, self.valid, out=self.bad)
        if self.bad.any():
            i, j = np.argwhere(self.bad)[0]
            raise ValueError(
                f"{self.who}: target {int(tg[i, j])} (example {i}, position {j}) is not a "
                f"class in [1, {c}): class 0 is the blank, and the log-probs have {c} classes"
            )
        np.multiply(tg, self.valid, out=self.labels)  # padding read as blanks: in range
        self.lab[:, 1::2] = self.labels
        if self.same.size:  # the skip s-2 -> s joins two different targets only
            np.equal(self.labels[:, 1:], self.labels[:, :-1], out=self.same)
            odd = self.skip[:, 3::2]
            odd.fill(0.0)
            np.copyto(odd, -np.inf, where=self.same)
        # flat positions of the final states at each example's last step in alpha
        _, _, il, tl = self.arrays
        np.subtract(il, 1, out=self.last)
        np.add(self.base, tl, out=self.state[0])
        np.add(self.state[0], tl, out=self.state[0])  # 2 * tl: the last blank
        np.minimum(tl, 1, out=self.one)
        np.subtract(self.state[0], self.one, out=self.state[1])  # the last target (or blank)
        np.equal(tl, 0, out=self.empty)
        np.multiply(self.last, self.lab.size, out=self.pos[0])
        np.add(self.pos[0], self.state[0], out=self.pos[0])
        np.multiply(self.last, self.lab.size, out=self.pos[1])
        np.add(self.pos[1], self.state[1], out=self.pos[1])

    def forward(self) -> None:
        if self.lp_refresh is not None:
            self.lp_refresh()
        self._check_and_label()
        alpha, lpe, skip, tmp = self.alpha, self.lpe, self.skip, self.tmp
        np.add(self.lab, self.row_base, out=self.gather)
        # mode="clip": in range by construction, and "raise" would buffer the whole output
        np.take(self.lp2, self.gather.reshape(-1), axis=1, out=self.lpe2, mode="clip")
        alpha[0].fill(-np.inf)
        alpha[0, :, :2] = lpe[0, :, :2]
        for t in range(1, alpha.shape[0]):
            prev, cur = alpha[t - 1], alpha[t]
            # stay, advance by one, or skip a blank between two different targets
            np.logaddexp(prev[:, 1:], prev[:, :-1], out=cur[:, 1:])
            cur[:, 0] = prev[:, 0]
            np.add(prev[:, :-2], skip[:, 2:], out=tmp[:, 2:])
            np.logaddexp(cur[:, 2:], tmp[:, 2:], out=cur[:, 2:])
            np.add(cur, lpe[t], out=cur)
        np.take(self.alpha1, self.pos, out=self.final, mode="clip")
        np.copyto(self.final[1], -np.inf, where=self.empty)  # the same state, counted once
        np.logaddexp(self.final[0], self.final[1], out=self.ll)

    def posteriors(self) -> None:
        alpha, lpe, skip, tmp = self.alpha, self.lpe, self.skip, self.tmp
        beta, nxt, ends, rows = self.beta, self.nxt, self.ends, self.rows
        ends.fill(-np.inf)
        ends1 = ends.reshape(-1)
        np.put(ends1, self.state[0], 0.0)
        np.put(ends1, self.state[1], 0.0)
        t_len = alpha.shape[0]
        beta.fill(-np.inf)
        for t in range(t_len - 1, -1, -1):
            if t < t_len - 1:
                np.add(beta, lpe[t + 1], out=nxt)
                np.logaddexp(nxt[:, :-1], nxt[:, 1:], out=beta[:, :-1])
                beta[:, -1] = nxt[:, -1]
                np.add(nxt[:, 2:], skip[:, 2:], out=tmp[:, :-2])
                np.logaddexp(beta[:, :-2], tmp[:, :-2], out=beta[:, :-2])
            np.equal(self.last, t, out=rows)  # examples whose input ends at step t
            np.copyto(beta, ends, where=rows[:, None])
            np.add(alpha[t], beta, out=self.post_l[:, t, :])
        # divide by the likelihood; an example with none (-inf) gets posteriors 0, not NaN
        q = self.q.reshape(-1)
        np.copyto(q, self.ll)
        np.isinf(q, out=rows)
        np.copyto(q, np.inf, where=rows)
        np.subtract(self.post_l, self.q, out=self.post_l)
        np.exp(self.post_l, out=self.post_l)
        self.onehot.fill(0.0)
        np.add(self.hot_base, self.lab, out=self.hot)
        np.put(self.onehot.reshape(-1), self.hot, 1.0)
        np.matmul(self.post_l, self.onehot, out=self.post)

    def same_arrays(self, xs: Sequence[np.ndarray]) -> bool:
        """Whether ``xs`` are the arrays this was made for (the same memory and layout)."""
        return all(
            a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            for a, b in zip(self.arrays, xs, strict=True)
        )


def _check_int(role: str, t: TypeInfo, ndim: int, what: str) -> None:
    if t.dtype.np.kind not in "iu":
        raise DtypeError(
            f"CTCLoss: {role} {describe(t)} must be integers ({what}); convert them with an "
            f"Int64 input node"
        )
    if len(t.shape) != ndim:
        raise ShapeError(f"CTCLoss: {role} {describe(t)} must be {ndim}-D: {what}")


class CTCLossOp(Op):
    """The CTC loss of each example, ``-log p(targets | log_probs)``, then reduced: the mean
    of each loss divided by its target length (at least 1), the sum, or none.

    Operands: log-probs (T, N, C) (blank: class 0), padded targets (N, S), input lengths (N,)
    and target lengths (N,), the last three integers.

    Example:
        >>> CTCLossOp("mean")
        CTCLoss(reduction='mean')
    """

    name = "CTCLoss"
    arity = 4

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction
        self._who = "CTCLoss"

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        lp, tg, il, tl = ins
        if not lp.dtype.is_float or len(lp.shape) != 3:
            raise (DtypeError if not lp.dtype.is_float else ShapeError)(
                f"CTCLoss: log_probs {describe(lp)} must be a float (T, N, C) array of "
                f"log-probabilities (steps, batch, classes), e.g. LogSoftMax(logits) with "
                f"the classes last"
            )
        _check_int("targets", tg, 2, "(N, S) class indices, padded past each target length")
        _check_int("input_lengths", il, 1, "(N,) steps per example")
        _check_int("target_lengths", tl, 1, "(N,) targets per example")
        if lp.shape[2] is None or tg.shape[1] is None:
            raise ShapeError(
                f"CTCLoss: the classes of log_probs {describe(lp)} and the width of targets "
                f"{describe(tg)} must be known; only the steps and the batch may be None"
            )
        n = lp.shape[1]
        for t, d in ((tg, tg.shape[0]), (il, il.shape[0]), (tl, tl.shape[0])):
            if n is not None and d is not None and d != n:
                raise ShapeError(
                    f"CTCLoss: {describe(t)} has {d} examples but log_probs {describe(lp)} has "
                    f"{n} (axis 1 is the batch: log_probs are (T, N, C))"
                )
        return ((n,) if self.reduction == "none" else ()), lp.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        lp, tg, il, tl = xs
        al = _Alignments(lp, tg, il, tl, who=self._who)
        ctx.saved[id(self)] = (self, al)
        n = lp.shape[1]
        if self.reduction == "none":

            def run_none() -> None:
                al.forward()
                np.negative(al.ll, out=out)

            return run_none

        per = np.empty(n, out.dtype)
        div = np.empty(n, out.dtype)
        mean = self.reduction == "mean"

        def run() -> None:
            al.forward()
            np.negative(al.ll, out=per)
            if mean:  # each loss by its target length (at least 1), then the batch mean
                np.maximum(tl, 1, out=div)
                np.multiply(div, n, out=div)
                np.divide(per, div, out=per)
            np.sum(per, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        if not wants[0]:
            return [None] * 4
        op = CTCLossGradOp(self.reduction, self)
        op._who = self._who
        # the loss node is an operand so its kernel (which saves the alphas) runs first
        return [apply_op(op, *node.children, g, node), None, None, None]


class CTCLossGradOp(Op):
    """Gradient of CTCLoss for the log-probs: ``-posterior(t, n, c) * w_n`` with ``w_n`` the
    upstream gradient (divided by N times the target length for a mean). This is the true
    gradient for any log-probs; PyTorch's adds ``exp(log_probs)``, which cancels once it
    passes through the log-softmax that made them.

    Operands: the loss's four operands, the upstream gradient and the loss node (an ordering
    operand: its kernel saves the alphas this kernel reuses). Not differentiable again:
    a second derivative would differentiate through both recursions, which no graph-op
    expansion of reasonable size states, so ``Grad`` refuses rather than return a wrong zero.

    Example:
        >>> CTCLossGradOp("sum").differentiable
        False
    """

    name = "CTCLossGrad"
    arity = 6
    shape_only = (5,)
    differentiable = False

    def __init__(self, reduction: str, source: Op | None = None) -> None:
        self.reduction = reduction
        self._source = source
        self._who = "CTCLoss"

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        lp, tg, il, tl, g, _ = xs
        entry = ctx.saved.get(id(self._source)) if self._source is not None else None
        saved = entry[1] if entry is not None and entry[0] is self._source else None
        if saved is not None and saved.same_arrays(xs[:4]):
            al, reuse = saved, True
        else:
            al, reuse = _Alignments(lp, tg, il, tl, self._who), False
        n = lp.shape[1]
        w = np.empty((n, 1, 1), out.dtype)
        w1 = w.reshape(n)
        div = np.empty(n, out.dtype)
        dst = out.transpose(1, 0, 2)  # (N, T, C), as the posteriors
        mean = self.reduction == "mean"

        def run() -> None:
            if not reuse:
                al.forward()
            al.posteriors()
            np.copyto(w1, g)
            if mean:
                np.maximum(tl, 1, out=div)
                np.multiply(div, n, out=div)
                np.divide(w1, div, out=w1)
            np.negative(w1, out=w1)
            np.multiply(al.post, w, out=dst)

        return run


def CTCLoss(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    reduction: str = "mean",
) -> Node:
    """Connectionist temporal classification loss (Gorgonia's ``CTCLoss``, PyTorch's
    ``ctc_loss`` with ``blank=0``): ``-log`` of the probability of each example's targets,
    summed over every alignment of them to the steps.

    ``log_probs`` (T, N, C) are per-step class log-probabilities (e.g. ``LogSoftMax(z)``),
    class 0 the blank; ``targets`` (N, S) integer class indices in [1, C), padded past each
    example's ``target_lengths`` (N,) with anything; ``input_lengths`` (N,) the steps of each
    example, in [1, T]. All three are integer nodes (inputs, usually). ``reduction``: "mean"
    (default: each loss divided by its target length, at least 1, then averaged over the
    batch, as PyTorch), "sum", or "none" (the (N,) losses). An example whose targets cannot be
    aligned in its steps has an infinite loss and a zero gradient. Bad lengths or targets
    raise ``ValueError`` naming the node when the machine runs.

    The gradient for the log-probs is exact; it is not differentiable again (``Grad``
    refuses a second derivative through it).

    Example:
        >>> import math, numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> lp = gc.NodeFromAny(g, np.log(np.full((2, 1, 2), 0.5)), gc.WithName("lp"))
        >>> tg = gc.NodeFromAny(g, np.array([[1]]), gc.WithName("targets"))
        >>> il = gc.NodeFromAny(g, np.array([2]), gc.WithName("input_lengths"))
        >>> tl = gc.NodeFromAny(g, np.array([1]), gc.WithName("target_lengths"))
        >>> loss = gc.CTCLoss(lp, tg, il, tl)  # 3 alignments (1-, -1, 11) of 1/4 each
        >>> gc.NewTapeMachine(g).run_all(); round(float(loss.value), 4), round(-math.log(0.75), 4)
        (0.2877, 0.2877)
    """
    op = CTCLossOp(_check_reduction("CTCLoss", reduction))
    node = apply_op(op, log_probs, targets, input_lengths, target_lengths)
    op._who = f"CTCLoss node {node.name!r} (targets {node.children[1].name!r})"
    return node
