"""Make the PyTorch-exported ONNX models the ONNX tests import (run it again to remake them).

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 onnx onnxscript
    /tmp/torchvenv/bin/python tests/data/onnx/make_models.py

Writes, next to this script:

- ``mlp.onnx``: Linear(4, 8) - BatchNorm1d(8) - ReLU - Dropout(0.2) - Linear(8, 3) - Softmax,
  legacy TorchScript exporter (``dynamo=False``), opset 17: Gemm (transB=1),
  BatchNormalization, Relu, Gemm, Softmax (the Dropout vanishes in eval mode);
- ``cnn.onnx``: Conv2d(1, 4, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(4, 8, 3) -
  BatchNorm2d(8) - ReLU - AvgPool2d(2) - Flatten - Linear(32, 10) on 1x12x12 images, legacy
  exporter, opset 17, constant folding off so the BatchNormalization stays a node of its own;
- ``cnn_dynamo.onnx``: the same network through the newer exporter (``dynamo=True``, its
  default opset 20), which folds the batch norm into the convolution and writes the flatten
  as a Reshape to [-1, 32].

Every model takes a dynamic batch (the named dimension ``batch``). The batch norms' running
statistics are set by a few training-mode passes first, so they are not the defaults.
"""

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def models(torch: Any) -> dict[str, Any]:
    """The two networks, by the name their files start with."""
    nn = torch.nn
    mlp = nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3),
        nn.Softmax(dim=-1),
    )
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32, 10),
    )
    return {"mlp": mlp, "cnn": cnn}


def warm_up(torch: Any, net: Any, shape: tuple[int, ...]) -> Any:
    """A few training-mode passes, so batch norms hold running statistics of their own."""
    net.train()
    with torch.no_grad():
        for _ in range(5):
            net(torch.randn(*shape) * 2.0 + 0.5)
    return net.eval()


def legacy(torch: Any, net: Any, x: Any, path: Path, folding: bool = True) -> None:
    torch.onnx.export(
        net, (x,), str(path), dynamo=False, opset_version=17, do_constant_folding=folding,
        input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )


def main() -> None:
    import torch  # only this script needs torch (not the tests, nor golgi)

    torch.manual_seed(0)
    nets = models(torch)
    net = warm_up(torch, nets["mlp"], (16, 4))
    legacy(torch, net, torch.randn(2, 4), HERE / "mlp.onnx")
    net = warm_up(torch, nets["cnn"], (16, 1, 12, 12))
    x = torch.randn(2, 1, 12, 12)
    legacy(torch, net, x, HERE / "cnn.onnx", folding=False)
    prog = torch.onnx.export(
        net, (x,), dynamo=True, input_names=["x"], output_names=["y"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    prog.save(str(HERE / "cnn_dynamo.onnx"))
    for name in ("mlp.onnx", "cnn.onnx", "cnn_dynamo.onnx"):
        print(name, (HERE / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
