"""graphcore basics: build ``z = x + y``, look at the graph, run it, and take a gradient.

Twin of Gorgonia's ``examples/simple`` (and its ``Example_basic``): two Float64 scalars, one
``Add``, a tape machine, ``Let(x, 2.0)``, ``Let(y, 2.5)``, run, read ``z`` (4.5).

Differences from Gorgonia's program:
- There is no ``g.AddNode`` step: ``NewScalar(g, ...)`` already puts the node in ``g``.
- Errors are exceptions, so there is no ``err`` to check after each call.
- The Graphviz text is printed only with ``--dot`` (Gorgonia always prints it).
- It goes one step further and asks for the gradient of ``z * z`` with ``Grad``, the reason to
  build a graph in the first place.

Run it: ``python examples/simple.py [--dot]``; ``--quick`` is accepted (the program is already
instant). The last line is ``result: z=4.5``.
"""

from __future__ import annotations

import argparse

import graphcore as gc


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dot", action="store_true", help="print the graph as Graphviz text")
    ap.add_argument("--quick", action="store_true", help="(no effect: already instant)")
    args = ap.parse_args(argv)

    # Define the expression. Nothing is computed yet: x and y are placeholders, z an Add node.
    g = gc.NewGraph()
    x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
    y = gc.NewScalar(g, gc.Float64, gc.WithName("y"))
    z = gc.Add(x, y)
    print(f"z is a node, not yet a number: {z.describe()}")
    if args.dot:
        print(gc.ToDot(g))  # render with `dot -Tsvg`

    # A tape machine compiles the graph once into a list of steps; Let binds the inputs.
    machine = gc.NewTapeMachine(g)
    gc.Let(x, 2.0)
    gc.Let(y, 2.5)
    machine.run_all()
    print(f"z = x + y = {float(z.value)}")

    # Gradients are more nodes in the same graph. Grad returns d(cost)/dx and d(cost)/dy;
    # a new machine over the grown graph computes values and gradients in one run.
    cost = gc.Mul(z, z)  # (x + y)^2: d/dx = d/dy = 2(x + y) = 9
    dx, dy = gc.Grad(cost, x, y)
    machine = gc.NewTapeMachine(g)
    machine.run_all()
    print(f"cost = z*z = {float(cost.value)}, dcost/dx = {float(dx.value)}, "
          f"dcost/dy = {float(dy.value)}")

    result = float(z.value)
    print(f"result: z={result}")
    return result


if __name__ == "__main__":
    main()
