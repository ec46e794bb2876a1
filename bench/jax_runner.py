"""JAX on the CPU with a whole epoch compiled by XLA: the fastest CPU peer of the MLP workloads.

:class:`JaxScanRunner` writes one training step (gather the batch, forward, loss, gradients by
``jax.value_and_grad``, Gorgonia's RMSProp) and runs the epoch as ``jax.lax.scan`` over the
batches inside one ``jax.jit``: XLA sees every step of the epoch at once, fuses the
elementwise work around the products and runs no Python between steps. Parameters and the
RMSProp cache are donated to the call, so XLA updates them in place. Same initial weights,
same data order (the batch indices are an input of the scan) and the same losses as the
other runners: ``-mean(sum(y * log_softmax(z), 1))`` and the per-pixel binary cross-entropy
from the logits. The first epoch of a new length compiles (the harness's warm-up epoch).

Needs ``jax`` (``pip install jax==0.10.2``, CPU); the harness skips it with a note where it
is missing. float64 switches on ``jax_enable_x64`` in the worker process that runs it.

Example:
    >>> from bench.common import ARCHS, init_weights
    >>> arch = ARCHS["mlp"]
    >>> r = JaxScanRunner(arch, np.float32, init_weights(arch, np.float32))  # doctest: +SKIP
    >>> r.predict(np.zeros((2, 784), np.float32), 100).sum(1).round(5)  # doctest: +SKIP
    array([1., 1.], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.common import EPS, LEARN_RATE, RHO, Arch

__all__ = ["JaxScanRunner", "jax_available"]


def jax_available() -> bool:
    """True when ``import jax`` works (the JAX baseline is optional)."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _import_jax() -> Any:
    try:
        import jax
    except ImportError as exc:
        raise ImportError(
            "the JAX baseline needs jax: `pip install jax==0.10.2` into a venv of your own "
            "(see bench/README.md)"
        ) from exc
    return jax


class JaxScanRunner:
    """The MLP or autoencoder in JAX, one ``jit``-compiled ``lax.scan`` per epoch.

    Only fully connected archs (``bench.common.Arch``); the conv workloads compare against
    PyTorch eager. Threads: XLA's default (one per core).

    Example:
        >>> JaxScanRunner.name
        'jax'
    """

    name = "jax"

    def __init__(self, arch: Arch, dtype: np.dtype | type, weights: list[np.ndarray]) -> None:
        if not isinstance(arch, Arch):
            raise TypeError(f"JaxScanRunner: only fully connected archs, got {arch!r}")
        jax = _import_jax()
        self.dtype = np.dtype(dtype)
        if self.dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        self._jax, self._jnp = jax, jnp
        self.arch = arch
        self._params = [jnp.asarray(np.asarray(w, self.dtype)) for w in weights]
        self._cache = [jnp.zeros_like(p) for p in self._params]
        self._device: tuple[np.ndarray, np.ndarray, Any, Any] | None = None
        self._epoch = jax.jit(self._epoch_fn, donate_argnums=(0, 1), static_argnums=(5,))
        self._forward = jax.jit(self._probs)

    # -- the model, written once for jit --------------------------------------------------------

    def _logits(self, params: list[Any], x: Any) -> Any:
        jnp = self._jnp
        a = x
        last = self.arch.n_layers - 1
        for i in range(self.arch.n_layers):
            a = a @ params[2 * i] + params[2 * i + 1]
            if i < last:
                a = jnp.maximum(a, 0)
        return a

    def _loss(self, params: list[Any], x: Any, t: Any) -> Any:
        jnp = self._jnp
        z = self._logits(params, x)
        if self.arch.head == "softmax_ce":
            logp = self._jax.nn.log_softmax(z, axis=1)
            return -jnp.mean(jnp.sum(t * logp, axis=1))
        # softplus(z) - t*z, stable for large |z|
        return jnp.mean(jnp.maximum(z, 0) - t * z + jnp.log1p(jnp.exp(-jnp.abs(z))))

    def _probs(self, params: list[Any], x: Any) -> Any:
        z = self._logits(params, x)
        if self.arch.head == "softmax_ce":
            return self._jax.nn.softmax(z, axis=1)
        return self._jax.nn.sigmoid(z)

    def _epoch_fn(
        self, params: list[Any], cache: list[Any], x: Any, y: Any, idx: Any, same: bool
    ) -> tuple[list[Any], list[Any], Any]:
        jax, jnp = self._jax, self._jnp
        grad_fn = jax.value_and_grad(self._loss)
        lr, rho, eps = LEARN_RATE, RHO, EPS

        def step(carry: tuple[list[Any], list[Any]], i: Any) -> tuple[Any, Any]:
            ps, cs = carry
            xb = jnp.take(x, i, axis=0)
            yb = xb if same else jnp.take(y, i, axis=0)
            loss, gs = grad_fn(ps, xb, yb)
            cs = [rho * c + (1 - rho) * g * g for c, g in zip(cs, gs, strict=True)]
            ps = [p - lr * g / jnp.sqrt(c + eps) for p, g, c in zip(ps, gs, cs, strict=True)]
            return (ps, cs), loss

        (params, cache), losses = jax.lax.scan(step, (params, cache), idx)
        return params, cache, losses

    # -- Runner API ----------------------------------------------------------------------------

    def _on_device(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        # The training set goes to XLA's buffers once, not at every epoch.
        d = self._device
        if d is None or d[0] is not x or d[1] is not y:
            xd = self._jnp.asarray(x)
            yd = xd if y is x else self._jnp.asarray(y)
            d = self._device = (x, y, xd, yd)
        return d[2], d[3]

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One epoch of RMSProp steps over ``x[order]`` in full batches; the mean batch loss."""
        steps = len(order) // batch
        if steps == 0:
            raise ValueError(f"JaxScanRunner.train_epoch: {len(order)} samples < one batch")
        if x.dtype != self.dtype or x.shape[1] != self.arch.sizes[0]:
            raise ValueError(
                f"JaxScanRunner.train_epoch: x must be (n, {self.arch.sizes[0]}) {self.dtype}, "
                f"got {x.shape} {x.dtype}"
            )
        xd, yd = self._on_device(x, y)
        idx = np.ascontiguousarray(order[: steps * batch], np.int32).reshape(steps, batch)
        self._params, self._cache, losses = self._epoch(
            self._params, self._cache, xd, yd, idx, y is x
        )
        return float(np.mean(np.asarray(losses, np.float64)))

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax probabilities (MLP) or sigmoid outputs (autoencoder), ``(n, out)``."""
        out = np.empty((x.shape[0], self.arch.sizes[-1]), self.dtype)
        fwd, params = self._forward, self._params
        for s in range(0, x.shape[0], batch):
            out[s : s + batch] = fwd(params, x[s : s + batch])
        return out

    def weights(self) -> list[np.ndarray]:
        """Copies of ``[W1, b1, W2, b2, ...]`` as numpy arrays."""
        return [np.array(p) for p in self._params]
