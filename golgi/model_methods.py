"""The Keras-style methods every golgi model has: ``fit``, ``predict``, ``evaluate``, ``save``
and ``load`` (the same calls as ``golgi.fit``, ``golgi.predict``...), and pickling that keeps
the model but not the machines training built for it.

Example:
    >>> import numpy as np, golgi as G
    >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
    >>> h = net.fit(np.ones((4, 3)), np.ones((4, 1)), loss="mse", solver="sgd", progress=False)
    >>> isinstance(net, ModelMethods), net.predict(np.ones((2, 3))).shape
    (True, (2, 1))
"""

from __future__ import annotations

from typing import Any

from . import io, training

__all__ = ["ModelMethods", "TRANSIENT"]

#: Attributes the training functions keep on a model (its trainer, with machines and compiled
#: plans; trainers ``evaluate`` made for other losses): never pickled.
TRANSIENT = ("_golgi_trainer", "_golgi_evaluators")


class ModelMethods:
    """What a golgi model can do besides mapping nodes: train, predict, evaluate, save, load,
    pickle. :class:`~golgi.term.Term` (every layer, composition and join) has these methods.

    Example:
        >>> import pickle, numpy as np, golgi as G
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
        >>> _ = net.fit(np.ones((4, 2)), np.ones((4, 1)), loss="mse", solver="sgd",
        ...             progress=False)
        >>> copy = pickle.loads(pickle.dumps(net))  # the model, not the trainer fit kept
        >>> hasattr(net, "_golgi_trainer"), hasattr(copy, "_golgi_trainer")
        (True, False)
    """

    # ----- training, Keras style: the same calls as golgi.fit, golgi.predict, ... -----------
    def fit(self, x: Any, y: Any = None, **options: Any) -> Any:
        """``golgi.fit(self, x, y, **options)``: train; returns the ``History``.

        Example:
            >>> import numpy as np, golgi as G
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
            >>> h = net.fit(np.ones((8, 2)), np.ones((8, 1)), loss="mse", solver="adam",
            ...             epochs=2, progress=False)
            >>> len(h), net.predict(np.ones((3, 2))).shape, sorted(net.evaluate(
            ...     np.ones((8, 2)), np.ones((8, 1))))
            (2, (3, 1), ['loss'])
        """
        return training.fit(self, x, y, **options)

    def predict(self, x: Any, batch_size: int = 256, input: Any = None) -> Any:
        """``golgi.predict(self, x, ...)``: the outputs in eval mode (any thread).

        Example:
            >>> import numpy as np, golgi as G
            >>> import graphcore as gc
            >>> x = gc.NewMatrix(gc.NewGraph(), gc.Float32, gc.WithShape(None, 2))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
            >>> net.predict(np.ones((5, 2), np.float32)).shape
            (5, 3)
        """
        return training.predict(self, x, batch_size=batch_size, input=input)

    def evaluate(self, x: Any, y: Any, **options: Any) -> dict[str, float]:
        """``golgi.evaluate(self, x, y, ...)``: loss and metrics in eval mode (any thread).

        Example:
            >>> import numpy as np, golgi as G
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((4, 2)), np.ones((4, 1))
            >>> _ = net.fit(X, Y, loss="mse", solver="sgd", progress=False)
            >>> sorted(net.evaluate(X, Y))
            ['loss']
        """
        return training.evaluate(self, x, y, **options)

    def save(self, path: Any, **options: Any) -> None:
        """``golgi.save(self, path, ...)``: weights, layer state (and a solver's) to ``.npz``.

        Example:
            >>> import os, tempfile, numpy as np, golgi as G
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
            >>> _ = net.fit(np.ones((4, 2)), np.ones((4, 1)), loss="mse", solver="sgd",
            ...             progress=False)
            >>> path = os.path.join(tempfile.mkdtemp(), "net.npz"); net.save(path)
            >>> sorted(net.load(path))[:2]
            ['extra', 'format']
        """
        io.save(self, path, **options)

    def load(self, path: Any, **options: Any) -> dict[str, Any]:
        """``golgi.load(self, path, ...)``: weights and layer state back, in place; returns
        the archive's metadata.

        Example:
            >>> import os, tempfile, numpy as np, golgi as G
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1), G.WithName("fc"))))
            >>> _ = net.fit(np.ones((4, 2)), np.ones((4, 1)), loss="mse", solver="sgd",
            ...             progress=False)
            >>> path = os.path.join(tempfile.mkdtemp(), "net.npz"); net.save(path)
            >>> w = net.by_name("fc/W").value.copy(); net.by_name("fc/W").value[...] = 0
            >>> _ = net.load(path); bool((net.by_name("fc/W").value == w).all())
            True
        """
        return io.load(self, path, **options)

    # ----- pickling: the model, not its machines -------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle`` keeps: the term with its layers, options and graph (weights, layer
        state); not the trainer ``fit`` keeps on it (machines, compiled plans), which the
        next ``fit`` builds again.

        Example:
            >>> import pickle, numpy as np, golgi as G
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
            >>> _ = net.fit(np.ones((4, 3)), np.ones((4, 2)), loss="mse", solver="adam",
            ...             progress=False)
            >>> copy = pickle.loads(pickle.dumps(net))
            >>> np.allclose(copy.predict(np.ones((2, 3))), net.predict(np.ones((2, 3))))
            True
        """
        state = dict(self.__dict__)
        for k in TRANSIENT:
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        cache = state.get("_cache")
        if isinstance(cache, dict):  # keyed by the id of each input node: ids change
            self._cache = {id(x): (x, out) for x, out in cache.values()}
