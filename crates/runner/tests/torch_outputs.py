"""Runs the module `runner export` generated on raw inputs and prints its outputs.

usage: torch_outputs.py MODEL.py INPUTS.f32 C,H,W
INPUTS.f32 holds float32 examples (little-endian) of shape C,H,W, already normalised. Prints
the outputs, flattened, as a JSON list.
"""
import json
import os
import sys

import numpy as np
import torch

script, inputs, shape = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
x = np.fromfile(inputs, dtype="<f4").reshape(-1, *map(int, shape.split(",")))
# The script loads its weights by a name relative to its own folder.
os.chdir(os.path.dirname(script))
scope = {}
exec(open(script).read(), scope)
with torch.no_grad():
    out = scope["model"](torch.from_numpy(x.copy()))
print(json.dumps(out.flatten().tolist()))
