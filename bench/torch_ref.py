"""The reference experiments in PyTorch, for bench/compare.py to time beside kiln.

usage: torch_ref.py EXPERIMENT STYLE EPOCHS --data MNIST_DIR --raw TORCHVISION_ROOT [--threads N]
  EXPERIMENT: fc_adam_l2 | cnn_bn | ann5_adam | sigmoid_fullbatch (as in experiments/*.toml)
  STYLE: tuned    the data preloaded as one float32 tensor, batches sliced by a permutation,
                  subnormal floats flushed (torch.set_flush_denormal(True); --keep-denormals
                  leaves them, to measure what flushing is worth)
         tutorial the tutorials' own loop: torchvision.datasets.MNIST + ToTensor + DataLoader,
                  PyTorch's defaults (subnormals kept), as the tutorials wrote it
Prints one JSON line: per-epoch training seconds (evaluation excluded, as kiln reports them),
the wall-clock time at the end of the first optimizer step, and the final test accuracy.

Each network is the experiment file's, layer for layer: same init (torch's own defaults where
the file says "default"), optimizer and hyper-parameters, loss, batch size, float32, and the
same number of threads as kiln uses (all cores).
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FULL = 60000


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class KerasCategoricalCrossentropy(nn.Module):
    """Keras' categorical_crossentropy on softmax outputs (probabilities clipped to 1e-7)."""

    def forward(self, probs, labels):
        p = probs.clamp(1e-7, 1.0 - 1e-7)
        return -p.log().gather(1, labels.unsqueeze(1)).mean()


def build(name):
    """(model, optimizer, loss, batch size, shuffle, drop_last, input transform)"""
    if name == "fc_adam_l2":
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 250), nn.ReLU(),
            nn.Linear(250, 200), nn.ReLU(),
            nn.Linear(200, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-5)
        return model, opt, nn.CrossEntropyLoss(), 64, True, True, lambda x: x
    if name == "cnn_bn":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(6272, 70), nn.Tanh(),
            nn.Linear(70, 30), nn.Tanh(),
            nn.Linear(30, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        return model, opt, nn.CrossEntropyLoss(), 64, True, False, lambda x: x
    if name == "ann5_adam":
        sizes = [784, 256, 128, 64, 32, 10]
        layers = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            lin = nn.Linear(a, b)
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.ReLU() if i < 4 else nn.Softmax(dim=1)]
        model = nn.Sequential(nn.Flatten(), *layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, eps=1e-7)
        return model, opt, KerasCategoricalCrossentropy(), 128, True, False, lambda x: x
    if name == "sigmoid_fullbatch":
        sizes = [784, 100, 30, 10]
        layers = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            lin = nn.Linear(a, b)
            nn.init.normal_(lin.weight, mean=0.01, std=0.1)
            nn.init.zeros_(lin.bias)
            layers += [lin] + ([nn.Sigmoid()] if i < 2 else [])
        model = nn.Sequential(nn.Flatten(), *layers)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        # (x - 127.5) / 255 = x / 255 - 0.5
        return model, opt, nn.CrossEntropyLoss(), FULL, False, False, lambda x: x - 0.5
    raise SystemExit(f"unknown experiment {name}")


def tuned_batches(x, y, batch, shuffle, drop_last, gen):
    n = x.shape[0]
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    end = n - n % batch if drop_last else n
    for start in range(0, end, batch):
        idx = order[start : start + batch]
        yield x[idx], y[idx]


def evaluate(model, x, y, transform):
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, x.shape[0], 1000):
            out = model(transform(x[start : start + 1000]))
            correct += (out.argmax(1) == y[start : start + 1000]).sum().item()
    model.train()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment")
    ap.add_argument("style", choices=["tuned", "tutorial"])
    ap.add_argument("epochs", type=int)
    ap.add_argument("--data", required=True, help="folder with MNIST's four .gz files")
    ap.add_argument("--raw", required=True, help="torchvision root holding MNIST/raw")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--keep-denormals", action="store_true", help="tuned: do not flush")
    args = ap.parse_args()
    if args.style == "tuned" and not args.keep_denormals:
        # PyTorch's best setting on CPUs where subnormals cost a microcode assist (Intel); set
        # before the intra-op threads start, which copy the mode of the thread creating them.
        if not torch.set_flush_denormal(True):
            raise SystemExit("torch.set_flush_denormal(True) is not supported on this CPU")
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    model, opt, loss_fn, batch, shuffle, drop_last, transform = build(args.experiment)

    def tensors(prefix):
        images = read_idx(os.path.join(args.data, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(args.data, f"{prefix}-labels-idx1-ubyte.gz"))
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        return x, torch.from_numpy(labels.astype(np.int64))

    test_x, test_y = tensors("t10k")
    if args.style == "tuned":
        train_x, train_y = tensors("train")
        gen = torch.Generator().manual_seed(42)
        epoch_batches = lambda: tuned_batches(train_x, train_y, batch, shuffle, drop_last, gen)
    else:
        from torchvision import datasets, transforms

        train_set = datasets.MNIST(
            args.raw, train=True, download=False, transform=transforms.ToTensor()
        )
        loader = torch.utils.data.DataLoader(
            train_set, batch_size=batch, shuffle=shuffle, drop_last=drop_last
        )
        epoch_batches = lambda: iter(loader)

    first_step = None
    epoch_seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        for x, y in epoch_batches():
            opt.zero_grad()
            loss = loss_fn(model(transform(x)), y)
            loss.backward()
            opt.step()
            # As kiln does each step: read the loss back (progress, NaN check, batch_loss).
            loss_value = loss.item()
            if first_step is None:
                first_step = time.time()
        epoch_seconds.append(time.perf_counter() - started)
        accuracy = evaluate(model, test_x, test_y, transform)
    print(
        json.dumps(
            {
                "epoch_seconds": epoch_seconds,
                "first_step_wall": first_step,
                "test_accuracy": accuracy,
                "last_loss": loss_value,
            }
        )
    )


if __name__ == "__main__":
    main()
