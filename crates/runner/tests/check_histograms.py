"""Reads the histograms of a kiln run with TensorBoard's own EventAccumulator.

usage: check_histograms.py RUN_DIR
Prints JSON: {tag: [{"step", "num", "min", "max", "edges"}...]} for train/, where "edges" is
the fraction of the values in the first and last buckets (saturation, for sigmoid outputs).
"""
import json
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    acc = EventAccumulator(os.path.join(sys.argv[1], "train"), size_guidance={"histograms": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["histograms"]:
        rows = []
        for event in acc.Histograms(tag):
            h = event.histogram_value
            if sum(h.bucket) != h.num:
                print(f"{tag} step {event.step}: buckets hold {sum(h.bucket)} of {h.num}")
                sys.exit(1)
            edges = (h.bucket[0] + h.bucket[-1]) / h.num if h.num else 0.0
            rows.append(
                {"step": event.step, "num": h.num, "min": h.min, "max": h.max, "edges": edges}
            )
        out[tag] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
