"""Runs the PyTorch module `runner export` writes (the `.py` beside the weights, generated from
the layer list) on the synthetic test set.

usage: torch_generated.py MODEL.py DATA_DIR  -> prints the confusion matrix as JSON
(rows: true class, columns: predicted), as `runner eval --json` does.
"""
import json
import os
import sys

import numpy as np
import torch

script = os.path.abspath(sys.argv[1])
os.chdir(os.path.dirname(script))
scope = {}
exec(open(script).read(), scope)
model = scope["model"]
raw = open(f"{sys.argv[2]}/t10k-images-idx3-ubyte", "rb").read()
x = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
with torch.no_grad():
    predicted = model(torch.from_numpy(x)).argmax(1).tolist()
labels = open(f"{sys.argv[2]}/t10k-labels-idx1-ubyte", "rb").read()[8:]
confusion = [[0] * 10 for _ in range(10)]
for t, p in zip(labels, predicted):
    confusion[t][p] += 1
print(json.dumps(confusion))
