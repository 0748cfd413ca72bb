"""Writes random pictures in CIFAR-10's binary layout into the folder given: five training
files and a test file of 10,000 records each (a label byte, then 3x32x32 pixel bytes). The
real CIFAR-10 is not in the package registries; training speed does not depend on content.

usage: fake_cifar.py OUT_DIR
"""
import os
import random
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(out, name), "wb") as f:
        for i in range(10000):
            f.write(bytes([i % 10]) + rng.randbytes(3072))
