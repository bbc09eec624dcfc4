"""PyTorch and ONNX Runtime peers for the DRIVE supermask U-Net (CPU only, speed references).

`train` times software TO of the paper's DRIVE U-Net (edge-popup topology optimization over
fixed random signed-constant weights, 6-bit activations) the way `edgecli bench train --task
drive` trains it: 4500 training patches of 64x64, batches of 64 random 48x48 crops with random
left-right / top-bottom mirrors and quarter turns, Adam lr 1e-3 (per-batch cosine to 0) on the
scores with weight decay 5e-4 (L2, as the Swift trainer), 2-class per-pixel cross-entropy.
`onnx` writes the masked U-Net as a plain float ONNX graph (masked weights, batch norm folded
into the convolutions, fake quantization removed) for a full DRIVE image padded to
[1, 1, 592, 576], quantizes it to int8 with onnxruntime.quantization (static, calibrated on
DRIVE test images or random inputs) and times ONNX Runtime on it, float and int8.
`check` prints the layers, their channels and weight counts, and tests shapes and gradients.

The network: every conv has no bias and a supermask (scores, top-k mask keeping half of each
layer, straight-through gradient to the scores) over fixed weights +-std, std =
sqrt(2) / sqrt(fan_in (1 - sparsity)), as the peer shared/bench/torch_reference.py; every conv
reads 6-bit unsigned codes (the input quantizer has the fixed range [0, 1], the others the EMA
of the batch maximum with momentum 0.1, clamp then round, straight-through inside the range).
Double conv = (conv3x3 pad 1 -> BatchNorm2d(affine=False) -> ReLU -> fq) twice. Encoder 1->32->32,
then max-pool 2 and 32->64->64, 64->128->128, 128->256->256, bottom 256->256->256; decoder, four
times: bilinear x2 (align_corners) of the codes below, concat with the skip, fq, double conv
512->256->128, 256->128->64, 128->64->32, 64->32->32; head 1x1 conv 32->2.

Setup (once, outside the project):
    python3 -m venv /tmp/torchref && /tmp/torchref/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/torchref/bin/pip install numpy onnx onnxruntime sympy
  (where that index is out of reach, a local CPU wheel works too: pip install /path/torch-*+cpu-*.whl)
Run:
    /tmp/torchref/bin/python scripts/drive_unet_torch.py check        (or --check)
    /tmp/torchref/bin/python scripts/drive_unet_torch.py train --epochs 1 --threads 2 [--batches 10] [--data DIR | --synthetic]
    /tmp/torchref/bin/python scripts/drive_unet_torch.py onnx --threads 1,2 --runs 20 [--load CKPT] [--out DIR]
Prints JSON lines: per epoch {"epoch", "train_s", "batches", "ms_per_batch", ...}; per ORT figure
{"engine", "threads", "ort_int8_ms_per_image" | "ort_fp32_ms_per_image", ...}.
"""
import argparse, gzip, json, math, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVE = os.environ.get("DRIVE_DIR", os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "drive"))
EPOCH_BATCHES = 4500 // 64  # 70: a full epoch of the 4500 training patches, last partial batch dropped
IMAGE_H, IMAGE_W, PAD_H, PAD_W = 584, 565, 592, 576


# ---------------------------------------------------------------------------------------- data

def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def drive_grey(d, split):
    rgb = idx(f"{d}/{split}-images-idx4-ubyte.gz").astype(np.float32)
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) / 255.0  # [N, 584, 565]


def patches(d, n, size, rng):
    """n random size x size patches of the DRIVE training images (grey, vessel labels); None without DRIVE."""
    try:
        grey = drive_grey(d, "train")
        vessels = idx(f"{d}/train-vessels-idx3-ubyte.gz")
    except OSError:
        return None
    k = rng.integers(0, grey.shape[0], n)
    t = rng.integers(0, grey.shape[1] - size + 1, n)
    l = rng.integers(0, grey.shape[2] - size + 1, n)
    x = np.stack([grey[a, b:b + size, c:c + size] for a, b, c in zip(k, t, l)])
    y = np.stack([vessels[a, b:b + size, c:c + size] > 127 for a, b, c in zip(k, t, l)])
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def synthetic(n, size, rng):
    x = rng.random((n, 1, size, size), dtype=np.float32)
    return torch.from_numpy(x), torch.from_numpy((x[:, 0] > 0.9).astype(np.int64))


def augment(x, y, crop, gen):
    """A random crop x crop window of each sample, mirrored left-right / top-bottom and turned
    by a random number of quarter turns (labels with their samples); torch ops only."""
    n, _, h, w = x.shape
    top = torch.randint(0, h - crop + 1, (n,), generator=gen)
    left = torch.randint(0, w - crop + 1, (n,), generator=gen)
    rows = (top[:, None] + torch.arange(crop))[:, :, None]        # [n, crop, 1]
    cols = (left[:, None] + torch.arange(crop))[:, None, :]       # [n, 1, crop]
    b = torch.arange(n)[:, None, None]
    xs, ys = x[b, 0, rows, cols].unsqueeze(1), y[b, rows, cols]   # [n, 1, c, c], [n, c, c]
    r = torch.randint(0, 2, (3, n), generator=gen).bool()
    turns = torch.randint(0, 4, (n,), generator=gen)

    def pick(cond, a, b_):
        return torch.where(cond.view(-1, *([1] * (a.dim() - 1))), b_, a)

    xs = pick(r[0], xs, xs.flip(3)); ys = pick(r[0], ys, ys.flip(2))
    xs = pick(r[1], xs, xs.flip(2)); ys = pick(r[1], ys, ys.flip(1))
    xo, yo = xs, ys
    for k in (1, 2, 3):
        xs = pick(turns == k, xs, torch.rot90(xo, k, (2, 3)))
        ys = pick(turns == k, ys, torch.rot90(yo, k, (1, 2)))
    return xs.contiguous(), ys.contiguous()


# ------------------------------------------------------------------------------------- network

class TopK(torch.autograd.Function):
    """Keeps the top (1 - sparsity) fraction of the (non-negative) scores; gradients pass straight through."""

    @staticmethod
    def forward(ctx, scores, sparsity):
        flat = scores.flatten()
        keep = flat.numel() - int(sparsity * flat.numel())
        mask = torch.zeros_like(flat)
        mask[flat.topk(keep, sorted=False).indices] = 1.0
        return mask.view_as(scores)

    @staticmethod
    def backward(ctx, g):
        return g, None


class FakeQuant(nn.Module):
    """Unsigned b-bit fake quantizer: q = round(clamp(x, 0, r) / r * (2^b - 1)) * r / (2^b - 1);
    r fixed, or the EMA of the batch maximum (momentum 0.1, the first batch sets it) updated in
    training before quantizing the batch; straight-through gradient inside [0, r]."""

    def __init__(self, bits=6, fixed=None, momentum=0.1):
        super().__init__()
        self.levels, self.fixed, self.momentum = 2 ** bits - 1, fixed, momentum
        self.register_buffer("range", torch.tensor(fixed if fixed is not None else 0.0))
        self.register_buffer("seen", torch.tensor(fixed is not None))

    def forward(self, x):
        if self.fixed is None and self.training:
            with torch.no_grad():
                m = x.max()
                if bool(self.seen):
                    self.range.mul_(1 - self.momentum).add_(self.momentum * m)
                else:
                    self.range.copy_(m); self.seen.fill_(True)
        r = self.range.clamp_min(1e-12)
        xc = torch.minimum(x.clamp_min(0), r)
        q = torch.floor(xc * (self.levels / r) + 0.5) * (r / self.levels)  # half away from zero (xc >= 0)
        return xc + (q - xc).detach()


class MaskedConv(nn.Module):
    def __init__(self, cin, cout, k, sparsity=0.5):
        super().__init__()
        shape = (cout, cin, k, k)
        fan_in = cin * k * k
        std = math.sqrt(2.0) / math.sqrt(fan_in * (1 - sparsity))
        # random signs (torch.sign of a normal draw would leave the rare exact 0.0 at 0)
        self.register_buffer("weight", torch.where(torch.randn(shape) < 0, -std, std))
        self.scores = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.scores, a=math.sqrt(5))
        self.sparsity, self.pad = sparsity, k // 2

    def effective(self):
        return self.weight * TopK.apply(self.scores.abs(), self.sparsity)

    def forward(self, x):
        return F.conv2d(x, self.effective(), padding=self.pad)


class Double(nn.Module):
    def __init__(self, cin, mid, cout, bits):
        super().__init__()
        self.c1, self.c2 = MaskedConv(cin, mid, 3), MaskedConv(mid, cout, 3)
        self.b1, self.b2 = nn.BatchNorm2d(mid, affine=False), nn.BatchNorm2d(cout, affine=False)
        self.q1, self.q2 = FakeQuant(bits), FakeQuant(bits)

    def forward(self, x):
        x = self.q1(F.relu(self.b1(self.c1(x))))
        return self.q2(F.relu(self.b2(self.c2(x))))


class UNet(nn.Module):
    def __init__(self, bits=6, base=32, depth=4):
        super().__init__()
        self.qin = FakeQuant(bits, fixed=1.0)
        chans = [base << i for i in range(depth)]                    # 32, 64, 128, 256
        self.enc = nn.ModuleList(Double(ci, c, c, bits) for ci, c in zip([1] + chans[:-1], chans))
        self.bottom = Double(chans[-1], chans[-1], chans[-1], bits)
        dec, qcat, c = [], [], chans[-1]
        for level in reversed(range(depth)):
            cat = c + chans[level]
            out = chans[level - 1] if level > 0 else base
            dec.append(Double(cat, cat // 2, out, bits)); qcat.append(FakeQuant(bits)); c = out
        self.dec, self.qcat = nn.ModuleList(dec), nn.ModuleList(qcat)
        self.head = MaskedConv(c, 2, 1)

    def forward(self, x):
        x = self.qin(x)
        skips = []
        for i, e in enumerate(self.enc):
            x = e(F.max_pool2d(x, 2) if i > 0 else x)
            skips.append(x)
        x = self.bottom(F.max_pool2d(x, 2))
        for d, q, s in zip(self.dec, self.qcat, reversed(skips)):
            up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            x = d(q(torch.cat([up, s], 1)))
        return self.head(x)

    def convs(self):
        """(name, conv) in graph order, named as the Swift graph names them (enc1.conv1 ... dec1.conv2, head)."""
        def swift(n):
            p = n.split(".")
            if p[0] == "head":
                return "head"
            level = {"enc": lambda i: f"enc{i + 1}", "dec": lambda i: f"dec{len(self.dec) - i}"}
            stem = level[p[0]](int(p[1])) if p[0] in level else p[0]
            return f"{stem}.conv{p[-1][1]}"
        return [(swift(n), m) for n, m in self.named_modules() if isinstance(m, MaskedConv)]


# ---------------------------------------------------------------------------------------- check

def check(a):
    torch.manual_seed(a.seed)
    net = UNet()
    total = kept = 0
    for name, m in net.convs():
        co, ci, kh, kw = m.weight.shape
        n = m.weight.numel()
        k = int(TopK.apply(m.scores.abs(), m.sparsity).sum())
        assert int(m.effective().ne(0).sum()) == k
        total += n; kept += k
        print(json.dumps({"layer": name, "in": ci, "out": co, "kernel": kh, "weights": n, "kept": k}))
        assert k == n - int(0.5 * n)
    expected = (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256
                + 2 * 256 * 256 + 512 * 256 + 256 * 128 + 256 * 128 + 128 * 64 + 128 * 64 + 64 * 32
                + 64 * 32 + 32 * 32) * 9 + 32 * 2
    assert total == expected, (total, expected)
    assert len(net.convs()) == 19
    net.train()
    x = torch.rand(2, 1, 48, 48)
    y = (torch.rand(2, 48, 48) > 0.9).long()
    out = net(x)
    assert out.shape == (2, 2, 48, 48), out.shape
    F.cross_entropy(out, y).backward()
    assert all(m.scores.grad is not None and m.scores.grad.abs().sum() > 0 for _, m in net.convs())
    net.eval()
    with torch.no_grad():
        full = net(torch.rand(1, 1, 64, 64))
        assert full.shape == (1, 2, 64, 64)
        plain = float_forward(net, torch.rand(1, 1, 32, 32))
        assert plain.shape == (1, 2, 32, 32)
    print(json.dumps({"check": "ok", "conv_layers": 19, "total_weights": total, "kept_weights": kept,
                      "scores": sum(p.numel() for p in net.parameters())}))


# ---------------------------------------------------------------------------------------- train

def train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    data, note = None, "synthetic"
    if not a.synthetic:
        data = patches(a.data, a.patches, 64, rng)
        if data is None:
            print(f"DRIVE not found in {a.data}: synthetic patches", file=sys.stderr)
        else:
            note = "drive"
    if data is None:
        data = synthetic(a.patches, 64, rng)
    x, y = data
    net = UNet()
    net.train()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=a.lr, weight_decay=5e-4)
    per_epoch = len(x) // a.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=per_epoch * a.epochs)
    gen = torch.Generator().manual_seed(a.seed)
    timed = min(a.batches or per_epoch, per_epoch)
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(len(x), generator=gen)
        for w in range(a.warmup if epoch == 1 else 0):   # untimed warm-up batches (first epoch only)
            step(net, opt, sched, x, y, perm[w * a.batch:(w + 1) * a.batch], a.crop, gen)
        t0 = time.perf_counter()
        loss = 0.0
        for b in range(timed):
            loss = step(net, opt, sched, x, y, perm[b * a.batch:(b + 1) * a.batch], a.crop, gen)
        train_s = time.perf_counter() - t0
        ms = 1e3 * train_s / timed
        rec = {"epoch": epoch, "train_s": round(train_s, 3), "batches": timed, "ms_per_batch": round(ms, 2),
               "epoch_batches": per_epoch, "seconds_per_epoch": round(ms * per_epoch / 1e3, 3),
               "extrapolated": timed < per_epoch, "threads": a.threads, "batch": a.batch,
               "patches": len(x), "data": note, "loss": round(loss, 4)}
        print(json.dumps(rec), flush=True)
    if a.save:
        torch.save(net.state_dict(), a.save)


def step(net, opt, sched, x, y, idx_, crop, gen):
    xb, yb = augment(x[idx_], y[idx_], crop, gen)
    loss = F.cross_entropy(net(xb), yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


# ------------------------------------------------------------------------------- float graph

def folded(m, bn):
    """The masked conv's weights with an (affine-free) batch norm folded in: (w', b')."""
    w = m.effective().detach()
    if bn is None:
        return w, None
    inv = 1.0 / torch.sqrt(bn.running_var + bn.eps)
    return w * inv.view(-1, 1, 1, 1), -bn.running_mean * inv


def float_forward(net, x):
    """The exported graph's arithmetic in torch (no fake quantization, folded batch norm)."""
    def dbl(d, x):
        for c, b in ((d.c1, d.b1), (d.c2, d.b2)):
            w, bias = folded(c, b)
            x = F.relu(F.conv2d(x, w, bias, padding=1))
        return x
    skips = []
    for i, e in enumerate(net.enc):
        x = dbl(e, F.max_pool2d(x, 2) if i > 0 else x)
        skips.append(x)
    x = dbl(net.bottom, F.max_pool2d(x, 2))
    for d, s in zip(net.dec, reversed(skips)):
        x = dbl(d, torch.cat([F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True), s], 1))
    return F.conv2d(x, net.head.effective())


def onnx_graph(net, h, w):
    import onnx
    from onnx import helper, TensorProto, numpy_helper
    nodes, inits, names = [], [], iter(range(10 ** 6))
    n = helper.make_node

    def fresh(p):
        return f"{p}{next(names)}"

    def conv(x, c, b, name):
        wt, bias = folded(c, b)
        ins = [x, name + ".w"]
        inits.append(numpy_helper.from_array(wt.numpy().astype(np.float32), name + ".w"))
        if bias is not None:
            inits.append(numpy_helper.from_array(bias.numpy().astype(np.float32), name + ".b"))
            ins.append(name + ".b")
        k = wt.shape[2]
        out = fresh("c")
        nodes.append(n("Conv", ins, [out], kernel_shape=[k, k], pads=[k // 2] * 4, name=name))
        return out

    def relu(x):
        out = fresh("r"); nodes.append(n("Relu", [x], [out])); return out

    def pool(x):
        out = fresh("p"); nodes.append(n("MaxPool", [x], [out], kernel_shape=[2, 2], strides=[2, 2])); return out

    def dbl(d, x, name):
        x = relu(conv(x, d.c1, d.b1, name + ".conv1"))
        return relu(conv(x, d.c2, d.b2, name + ".conv2"))

    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up_scales"))
    x, skips = "x", []
    for i, e in enumerate(net.enc):
        x = dbl(e, pool(x) if i > 0 else x, f"enc{i + 1}")
        skips.append(x)
    x = dbl(net.bottom, pool(x), "bottom")
    for j, (d, s) in enumerate(zip(net.dec, reversed(skips))):
        up, cat = fresh("u"), fresh("cat")
        nodes.append(n("Resize", [x, "", "up_scales"], [up], mode="linear", coordinate_transformation_mode="align_corners"))
        nodes.append(n("Concat", [up, s], [cat], axis=1))
        x = dbl(d, cat, f"dec{len(net.dec) - j}")
    nodes.append(n("Conv", [x, "head.w"], ["logits"], kernel_shape=[1, 1], name="head"))
    inits.append(numpy_helper.from_array(net.head.effective().detach().numpy().astype(np.float32), "head.w"))
    g = helper.make_graph(nodes, "drive_unet",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, h, w])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, h, w])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


# ----------------------------------------------------------------------------------------- ORT

def full_images(d, n, rng):
    """n DRIVE test images (grey, zero-padded to 592 x 576), or random ones without DRIVE."""
    try:
        g = drive_grey(d, "test")[:n]
        x = np.zeros((len(g), 1, PAD_H, PAD_W), np.float32)
        x[:, 0, :IMAGE_H, :IMAGE_W] = g
        return x, "drive"
    except OSError:
        return rng.random((n, 1, PAD_H, PAD_W), dtype=np.float32), "random"


def ort_bench(a):
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization.shape_inference import quant_pre_process

    torch.manual_seed(a.seed)
    net = UNet()
    if a.load:
        net.load_state_dict(torch.load(a.load))
    net.eval()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    images, note = full_images(a.data, max(a.calib, 1) + 1, rng)
    if not a.load:
        # a fresh net's batch norms know nothing: a few training-mode passes on patches of the
        # images give them running statistics of the right scale (speed does not depend on it)
        net.train()
        with torch.no_grad():
            for t in range(4):
                net(torch.from_numpy(images[:1, :, 128 + 64 * t:320 + 64 * t, 128:320]))
        net.eval()
    f32 = os.path.join(a.out, "drive_unet_fp32.onnx")
    onnx.save(onnx_graph(net, PAD_H, PAD_W), f32)
    probe = images[-1:]

    def ort_session(path, threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    ref = ort_session(f32, max(a.threads)).run(None, {"x": probe})[0]
    with torch.no_grad():
        tref = float_forward(net, torch.from_numpy(probe)).numpy()
    print(json.dumps({"onnx_vs_torch_float_max_abs_diff": float(np.abs(ref - tref).max()),
                      "logit_max_abs": float(np.abs(tref).max()), "inputs": note}), flush=True)

    class Calib(CalibrationDataReader):
        def __init__(self, x):
            self.it = iter([{"x": x[i:i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.it, None)

    pre = os.path.join(a.out, "drive_unet_fp32_pre.onnx")
    quant_pre_process(f32, pre)
    models = [("ort-fp32", "fp32", f32)]
    for fmt in a.format.split(","):
        i8 = os.path.join(a.out, f"drive_unet_int8_{fmt}.onnx")
        t0 = time.perf_counter()
        quantize_static(pre, i8, Calib(images[:a.calib]),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        print(json.dumps({"quantized": fmt, "seconds": round(time.perf_counter() - t0, 1),
                          "file_bytes": os.path.getsize(i8)}), flush=True)
        models.append(("ort-int8", fmt, i8))
    for engine, fmt, path in models:
        for threads in a.threads:
            s = ort_session(path, threads)
            for _ in range(a.warmup):
                out = s.run(None, {"x": probe})[0]
            t = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                out = s.run(None, {"x": probe})[0]
                t.append(time.perf_counter() - t0)
            key = "ort_int8_ms_per_image" if engine == "ort-int8" else "ort_fp32_ms_per_image"
            rec = {"engine": engine, "format": fmt, "threads": threads, key: round(1e3 * float(np.median(t)), 2),
                   "runs": a.runs, "min_ms": round(1e3 * min(t), 2), "image": [PAD_H, PAD_W]}
            if engine == "ort-int8":
                rec["argmax_agreement_vs_fp32"] = round(float((out.argmax(1) == ref.argmax(1)).mean()), 4)
            print(json.dumps(rec), flush=True)


def main():
    argv = ["check" if v == "--check" else v for v in sys.argv[1:]]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="layers, channels, weight counts; shape and gradient tests")
    c.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("train", help="time software TO epochs")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--batches", type=int, default=0, help="time only the first N batches of each epoch (0 = all)")
    t.add_argument("--warmup", type=int, default=0, help="untimed batches before the first epoch's timing")
    t.add_argument("--patches", type=int, default=4500)
    t.add_argument("--crop", type=int, default=48)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--data", default=DRIVE)
    t.add_argument("--synthetic", action="store_true", help="random patches even where DRIVE is present")
    t.add_argument("--save", help="write the trained state_dict here (for onnx --load)")
    t.add_argument("--seed", type=int, default=1)
    o = sub.add_parser("onnx", help="export, quantize and time ONNX Runtime on a full image")
    o.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    o.add_argument("--runs", type=int, default=20)
    o.add_argument("--warmup", type=int, default=3)
    o.add_argument("--calib", type=int, default=4, help="calibration images")
    o.add_argument("--format", default="qdq", help="qdq (the faster here), qoperator, or both as qdq,qoperator")
    o.add_argument("--load", help="a state_dict from train --save (default: a fresh net)")
    o.add_argument("--data", default=DRIVE)
    o.add_argument("--out", default="/tmp/drive-unet-onnx")
    o.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.cmd == "check":
        check(a)
    elif a.cmd == "train":
        train(a)
    else:
        torch.set_num_threads(max(a.threads))
        ort_bench(a)


if __name__ == "__main__":
    main()
