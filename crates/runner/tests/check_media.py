"""Reads the event files `runner eval` or `predict` wrote, with TensorBoard's own reader.

usage: check_media.py FOLDER   -> prints JSON: {"images": {tag: [width, height]}, "texts": {tag: text},
"scalars": {tag: value}}
"""
import io
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ea = EventAccumulator(sys.argv[1], size_guidance={"images": 0, "tensors": 0, "scalars": 0})
ea.Reload()
tags = ea.Tags()
out = {"images": {}, "texts": {}, "scalars": {}}
for t in tags["images"]:
    e = ea.Images(t)[-1]
    png = e.encoded_image_string
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    out["images"][t] = [e.width, e.height]
for t in tags["tensors"]:
    if ea.SummaryMetadata(t).plugin_data.plugin_name != "text":
        continue  # precision-recall curves
    e = ea.Tensors(t)[-1]
    out["texts"][t] = e.tensor_proto.string_val[0].decode()
for t in tags["scalars"]:
    out["scalars"][t] = ea.Scalars(t)[-1].value
print(json.dumps(out))
