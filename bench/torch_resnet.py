"""ResNet-20 (He et al. 2016, option B shortcuts, as kiln's zoo and experiments/cifar10_resnet20.toml
build it) trained in PyTorch on CIFAR-shaped random data, to time beside kiln.

usage: torch_resnet.py [--batch 128] [--steps 20] [--warmup 3] [--threads N]
Prints one JSON line: images/s over `steps` training steps (forward, backward, SGD with
momentum 0.9 and weight decay 1e-4) after `warmup` steps, batches sliced from one preloaded
float32 tensor, subnormals flushed, as kiln trains. Threads: all cores unless told.
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch import nn


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


def resnet(depth=20, width=16, classes=10):
    n = (depth - 2) // 6
    layers = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for stage in range(3):
        cout = width << stage
        for block in range(n):
            layers.append(Basic(cin, cout, 2 if stage > 0 and block == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    model = resnet()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    total = a.batch * (a.steps + a.warmup)
    x = torch.randn(total, 3, 32, 32)
    y = torch.randint(0, 10, (total,))
    model.train()
    start = None
    for step in range(a.steps + a.warmup):
        if step == a.warmup:
            start = time.perf_counter()
        xb = x[step * a.batch : (step + 1) * a.batch]
        yb = y[step * a.batch : (step + 1) * a.batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_s": a.batch * a.steps / seconds, "params": params,
                      "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
