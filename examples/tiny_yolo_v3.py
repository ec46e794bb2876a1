"""Gorgonia's tiny-yolo-v3-coco, the golgi way: Tiny YOLOv3's forward pass, built from darknet's
``.cfg`` file, with darknet ``.weights`` when given.

Twin of Gorgonia's ``examples/tiny-yolo-v3-coco``. ``examples/data/yolov3-tiny.cfg`` describes
the network block by block, as darknet does; this program reads it and builds each block with
golgi layers on graph nodes:

- ``[convolutional]``: ``ConsConv`` (no bias when batch-normalised), ``ConsBatchNorm``, then
  leaky ReLU (slope 0.1) or nothing (``linear``);
- ``[maxpool]``: ``gc.MaxPool2D``; darknet's stride-1 pool keeps the size by padding only the
  right and bottom edges, which is a pool padded on every side with its first row and column
  sliced off;
- ``[upsample]``: ``gc.Upsample2D`` (nearest neighbour); ``[route]``: the output of earlier
  blocks, several joined along the channels with ``gc.Concat``;
- ``[yolo]``: an output of the model. Its 255 channels are, for each of 3 anchor boxes, the
  box offsets, the objectness and 80 class scores; decoding them into boxes (sigmoids,
  exponentials times the anchors, a threshold, non-maximum suppression) is numpy after the
  forward pass, as in Gorgonia's program.

``G.Model(inputs, outputs)`` names the image input and the two heads, and ``G.predict`` runs
it in eval mode (batch norm with its running statistics). With ``--weights yolov3-tiny.weights``
(darknet's file, 35 MB, not shipped) the weights and batch-norm statistics are read from it,
and ``--image`` takes a picture (PNG, or JPEG with Pillow) to find the 80 COCO classes in;
``--out`` draws the boxes (matplotlib). Without weights the network has random ones: the
program still builds and runs the whole network on a synthetic picture, times the forward
pass and prints the output shapes, but its "detections" mean nothing.

What differs from Gorgonia's program, and why:
- Gorgonia folds each batch norm into its convolution when it loads the weights; here the
  batch norm is a layer with darknet's statistics as its running mean and variance (same
  numbers up to rounding, and the network stays the one the file describes).
- Gorgonia's YOLO layer is a graph op; here the decoding is plain numpy on the two output
  arrays: it has no gradient to take and reads better as array code.
- The picture is resized to the network's size keeping its aspect ratio, padded with grey
  (darknet's letterbox); Gorgonia reads a picture already 416x416.

Flags: ``--cfg`` (examples/data/yolov3-tiny.cfg), ``--weights``, ``--image``, ``--out``,
``--size`` (416; a multiple of 32), ``--threshold`` (0.5), ``--save-weights PATH`` (write the
network's weights as a darknet file), ``--seed`` (0), ``--quick`` (a 160x160 input). The last
line is ``result: forward_s=<seconds for one image>`` (the median of three runs).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import golgi as G
import graphcore as gc

CFG = Path(__file__).resolve().parent / "data" / "yolov3-tiny.cfg"
COCO = (
    "person bicycle car motorbike aeroplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
    "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
    "chair sofa pottedplant bed diningtable toilet tvmonitor laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
)
COCO = [name.replace("_", " ") for name in COCO.split()]


def parse_cfg(path: Path) -> list[dict[str, str]]:
    """Darknet's format: ``[type]`` headers, ``key=value`` lines, ``#`` comments."""
    blocks: list[dict[str, str]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            blocks.append({"type": line[1:-1].strip()})
        elif "=" in line and blocks:
            key, value = line.split("=", 1)
            blocks[-1][key.strip()] = value.strip()
        else:
            raise ValueError(f"{path}:{number}: expected [section] or key=value, got {raw!r}")
    if not blocks or blocks[0]["type"] != "net":
        raise ValueError(f"{path}: the first section must be [net]")
    return blocks


@dataclass
class Head:
    """A [yolo] block: its output node, the anchors (pixels) of its boxes, the classes."""

    name: str
    node: gc.Node
    anchors: np.ndarray
    classes: int


@dataclass
class Darknet:
    """The built network: the model, its convolutions in file order, its heads."""

    model: G.Model
    convs: list[tuple[G.Conv, G.BatchNorm | None]] = field(default_factory=list)
    heads: list[Head] = field(default_factory=list)


def maxpool(x: gc.Node, size: int, stride: int) -> gc.Node:
    """Darknet's max-pool: windows from the top-left corner, -inf past the right and bottom."""
    if stride == size:
        return gc.MaxPool2D(x, size, stride=stride)
    if stride == 1:
        # padded on every side by size - 1, the first windows start size - 1 too early
        # (darknet's start at -(size - 1) // 2): drop them
        cut = (size - 1) - (size - 1) // 2
        h, w = x.shape[2], x.shape[3]
        return gc.MaxPool2D(x, size, pad=size - 1, stride=1)[:, :, cut : cut + h, cut : cut + w]
    raise ValueError(f"[maxpool] size={size} stride={stride}: only stride 1 or stride = size")


def build(blocks: list[dict[str, str]], image: gc.Node) -> Darknet:
    """The network of ``blocks`` (after [net]) on ``image`` (None, 3, H, W)."""
    outputs: list[gc.Node] = []  # every block's output, for the routes
    convs: list[tuple[G.Conv, G.BatchNorm | None]] = []
    heads: list[Head] = []
    x = image
    for i, b in enumerate(blocks[1:]):
        kind = b["type"]
        if kind == "convolutional":
            size, bn = int(b["size"]), int(b.get("batch_normalize", 0)) == 1
            pad = (size - 1) // 2 if int(b.get("pad", 0)) else 0
            conv = G.ConsConv(
                x, G.WithShape(int(b["filters"])), G.WithKernelShape(size, size),
                G.WithPad(pad, pad), G.WithStride(int(b["stride"])), G.WithBias(not bn),
                G.WithName(f"conv{i}"),
            )  # fmt: skip
            x = conv.fwd(x)
            norm = None
            if bn:  # darknet's epsilon is 1e-6
                norm = G.ConsBatchNorm(x, G.WithEps(1e-6), G.WithName(f"bn{i}"))
                x = norm.fwd(x)
            if b["activation"] == "leaky":
                x = gc.LeakyRelu(x, 0.1)
            elif b["activation"] != "linear":
                raise ValueError(f"block {i}: activation {b['activation']!r} is not supported")
            convs.append((conv, norm))
        elif kind == "maxpool":
            x = maxpool(x, int(b["size"]), int(b["stride"]))
        elif kind == "upsample":
            x = gc.Upsample2D(x, int(b["stride"]))
        elif kind == "route":
            picked = [int(v) for v in b["layers"].split(",")]
            parts = [outputs[p if p >= 0 else i + p] for p in picked]
            x = parts[0] if len(parts) == 1 else gc.Concat(1, *parts)
        elif kind == "yolo":
            pairs = np.array([int(v) for v in b["anchors"].split(",")]).reshape(-1, 2)
            mask = [int(v) for v in b["mask"].split(",")]
            heads.append(Head(f"yolo{i}", x, pairs[mask].astype(np.float64), int(b["classes"])))
        else:
            raise ValueError(f"block {i}: [{kind}] is not supported")
        outputs.append(x)
    model = G.Model(inputs=image, outputs={h.name: h.node for h in heads})
    return Darknet(model, convs, heads)


def weight_arrays(net: Darknet) -> list[tuple[str, gc.Node | np.ndarray]]:
    """Darknet's order per convolution: biases (or batch norm's beta, gamma, running mean,
    running variance), then the filters (out, in, kh, kw), all float32."""
    order: list[tuple[str, gc.Node | np.ndarray]] = []
    for conv, norm in net.convs:
        if norm is None:
            order.append((f"{conv.name}/b", conv.params["b"]))
        else:
            order += [(f"{norm.name}/beta", norm.params["beta"]),
                      (f"{norm.name}/gamma", norm.params["gamma"]),
                      (f"{norm.name}/running_mean", norm.running_mean),
                      (f"{norm.name}/running_var", norm.running_var)]  # fmt: skip
        order.append((f"{conv.name}/W", conv.params["W"]))
    return order


def load_weights(net: Darknet, path: Path) -> None:
    """Read a darknet ``.weights`` file: a header, then float32 arrays in ``weight_arrays``
    order. The header is major, minor, revision (int32) and the images seen (int64 from
    version 0.2 on, int32 before)."""
    raw = path.read_bytes()
    major, minor, _ = np.frombuffer(raw, np.int32, 3)
    header = 20 if major * 10 + minor >= 2 else 16
    data = np.frombuffer(raw, np.float32, offset=header)
    order = weight_arrays(net)
    need = sum(int(np.prod(t.shape)) for _, t in order)
    if data.size != need:
        raise ValueError(
            f"{path}: {data.size:,} weights after the header, the .cfg's network needs "
            f"{need:,}; is it the .weights file of this .cfg (yolov3-tiny)?"
        )
    at = 0
    for _, target in order:
        n = int(np.prod(target.shape))
        values = data[at : at + n].reshape(target.shape)
        at += n
        if isinstance(target, gc.Node):
            gc.Let(target, values.astype(target.dtype.np))  # copied into the weight's buffer
        else:
            np.copyto(target, values)  # batch norm statistics, in place


def save_weights(net: Darknet, path: Path) -> None:
    """Write the network's weights as a darknet ``.weights`` file (version 0.2.0)."""
    parts = [np.array([0, 2, 0], np.int32).tobytes(), np.zeros(1, np.int64).tobytes()]
    for _, t in weight_arrays(net):
        parts.append(np.asarray(t.value if isinstance(t, gc.Node) else t, np.float32).tobytes())
    path.write_bytes(b"".join(parts))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warning for large |z|


def decode(raw: np.ndarray, head: Head, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One image's head output (A*(5+C), gh, gw) -> boxes (n, 4: x0, y0, x1, y1 in pixels of
    the network's input) and class scores (n, C) = objectness * class probability."""
    a, c = len(head.anchors), head.classes
    gh, gw = raw.shape[1:]
    t = raw.reshape(a, 5 + c, gh, gw).transpose(0, 2, 3, 1).astype(np.float64)  # (a, gh, gw, .)
    cols, rows = np.meshgrid(np.arange(gw), np.arange(gh))
    cx = (sigmoid(t[..., 0]) + cols) / gw * size
    cy = (sigmoid(t[..., 1]) + rows) / gh * size
    w = np.exp(np.minimum(t[..., 2], 20.0)) * head.anchors[:, 0, None, None]
    h = np.exp(np.minimum(t[..., 3], 20.0)) * head.anchors[:, 1, None, None]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).reshape(-1, 4)
    scores = (sigmoid(t[..., 4:5]) * sigmoid(t[..., 5:])).reshape(-1, c)
    return boxes, scores


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def detect(
    outs: dict[str, np.ndarray], net: Darknet, size: int, threshold: float, overlap: float = 0.45
) -> list[tuple[int, float, np.ndarray]]:
    """(class, score, box) above ``threshold`` in image 0, after per-class non-maximum
    suppression (a box is dropped if it overlaps a better one of its class by > ``overlap``)."""
    decoded = [decode(outs[h.name][0], h, size) for h in net.heads]
    boxes = np.concatenate([b for b, _ in decoded])
    scores = np.concatenate([s for _, s in decoded])
    found = []
    for cls in np.flatnonzero((scores > threshold).any(axis=0)):
        idx = np.flatnonzero(scores[:, cls] > threshold)
        idx = idx[np.argsort(-scores[idx, cls])]
        while idx.size:
            best, idx = idx[0], idx[1:]
            found.append((int(cls), float(scores[best, cls]), boxes[best]))
            idx = idx[iou(boxes[best], boxes[idx]) <= overlap]
    return sorted(found, key=lambda d: -d[1])


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int]:
    """(H, W, 3) in [0, 1] -> (3, size, size): scaled to fit (nearest pixel), grey padding.
    Returns the image and the scale and offsets that map its boxes back."""
    h, w = img.shape[:2]
    scale = min(size / h, size / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    rows = np.minimum((np.arange(nh) / scale).astype(int), h - 1)
    cols = np.minimum((np.arange(nw) / scale).astype(int), w - 1)
    out = np.full((size, size, 3), 0.5, np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = img[rows][:, cols, :3]
    return out.transpose(2, 0, 1), scale, left, top


def synthetic_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A picture to run on without a file: a gradient, three rectangles and a disc."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.6 - 0.3 * xx], axis=-1)
    for _ in range(3):
        x0, y0 = rng.integers(0, size * 3 // 4, 2)
        w, h = rng.integers(size // 8, size // 3, 2)
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 1, 3)
    disc = (xx - 0.6) ** 2 + (yy - 0.35) ** 2 < 0.02
    img[disc] = (0.9, 0.8, 0.1)
    return img.astype(np.float32)


def draw(img: np.ndarray, found: list, scale: float, left: int, top: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6 * img.shape[0] / img.shape[1]))
    ax.imshow(img)
    for cls, score, (x0, y0, x1, y1) in found:
        x0, x1 = (x0 - left) / scale, (x1 - left) / scale
        y0, y1 = (y0 - top) / scale, (y1 - top) / scale
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="red", lw=2))
        ax.text(x0, y0, f"{COCO[cls]} {score:.2f}", color="white", fontsize=9,
                bbox={"facecolor": "red", "alpha": 0.7, "pad": 1})
    ax.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", type=Path, default=CFG, help="darknet .cfg file")
    ap.add_argument("--weights", type=Path, help="darknet .weights file (default: random)")
    ap.add_argument("--image", type=Path, help="a picture (default: a synthetic one)")
    ap.add_argument("--out", type=Path, help="draw the detections into this PNG")
    ap.add_argument("--size", type=int, default=416, help="input height and width (x32)")
    ap.add_argument("--threshold", type=float, default=0.5, help="score to count a detection")
    ap.add_argument("--save-weights", type=Path, help="write the weights as a darknet file")
    ap.add_argument("--seed", type=int, default=0, help="random weights and picture")
    ap.add_argument("--quick", action="store_true", help="a 160x160 input")
    args = ap.parse_args(argv)
    size = 160 if args.quick else args.size
    if size % 32:
        raise SystemExit(f"--size {size}: the network needs a multiple of 32 (five 2x2 pools)")

    blocks = parse_cfg(args.cfg)
    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    image = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 3, size, size), gc.WithName("image"))
    net = build(blocks, image)
    net.model.summary(flops=True)
    if args.weights:
        load_weights(net, args.weights)
        print(f"loaded {args.weights}")
    else:
        print("random weights (give --weights yolov3-tiny.weights for darknet's)")
    if args.save_weights:
        save_weights(net, args.save_weights)
        print(f"wrote {args.save_weights}")

    rng = np.random.default_rng(args.seed)
    if args.image:
        import matplotlib.image

        picture = np.asarray(matplotlib.image.imread(args.image), np.float32)
        picture = picture / 255.0 if picture.max() > 1.0 else picture
    else:
        picture = synthetic_image(size, rng)
    x, scale, left, top = letterbox(picture, size)

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        outs = G.predict(net.model, x[None])
        times.append(time.perf_counter() - t0)
    for h in net.heads:
        print(f"{h.name}: {outs[h.name].shape}  (anchors {h.anchors.astype(int).tolist()})")
    print(f"checksum: {sum(float(np.abs(o).sum()) for o in outs.values()):.6g}")

    found = detect(outs, net, size, args.threshold)
    print(f"{len(found)} detections with score > {args.threshold}"
          + ("" if args.weights else " (random weights: they mean nothing)"))
    for cls, score, box in found[:10]:
        print(f"  {COCO[cls]:<14} {score:.2f}  box {np.round(box).astype(int).tolist()}")
    if args.out:
        draw(picture, found, scale, left, top, args.out)

    forward = float(np.median(times))
    print(f"result: forward_s={forward:.3f}")
    return forward


if __name__ == "__main__":
    main()
