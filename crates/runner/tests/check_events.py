"""Reads a kiln run folder with TensorBoard's own EventAccumulator and checks it.

usage: check_events.py RUN_DIR EXPECTED.json
EXPECTED: {"epochs": N, "steps_per_epoch": S,
           "train": {"epoch_loss": [...], "epoch_accuracy": [...], "learning_rate": [...]},
           "test": {"epoch_loss": [...], "epoch_accuracy": [...]}}
Values are compared to those `runner` printed, within the rounding of the printout.
"""
import json
import math
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def fail(msg):
    print(f"check_events: {msg}")
    sys.exit(1)


def main():
    run_dir, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    epochs = expected["epochs"]
    required = {
        "train": {"epoch_loss", "epoch_accuracy", "learning_rate", "batch_loss"},
        "test": {"epoch_loss", "epoch_accuracy"},
    }
    for split, tags_needed in required.items():
        acc = EventAccumulator(os.path.join(run_dir, split), size_guidance={"scalars": 0})
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        if not tags_needed <= tags:
            fail(f"{split}/ lacks tags {sorted(tags_needed - tags)} (has {sorted(tags)})")
        for tag, values in expected[split].items():
            events = acc.Scalars(tag)
            steps = [e.step for e in events]
            if steps != list(range(1, epochs + 1)):
                fail(f"{split}/{tag}: steps {steps}, expected 1..{epochs}")
            # runner prints losses and accuracies with 4 decimals, rates with 4 significant digits.
            for e, v in zip(events, values):
                tol = 6e-4 * abs(v) if tag == "learning_rate" else 6e-5
                if abs(e.value - v) > tol:
                    fail(f"{split}/{tag} step {e.step}: {e.value} in the event file, {v} printed")
            if tag == "epoch_accuracy" and not all(0.0 <= e.value <= 1.0 for e in events):
                fail(f"{split}/{tag}: accuracy outside [0, 1]")
        if split == "train":
            batch = acc.Scalars("batch_loss")
            total = epochs * expected["steps_per_epoch"]
            if [e.step for e in batch] != list(range(1, total + 1)):
                fail(f"train/batch_loss: {len(batch)} points, expected steps 1..{total}")
            if not all(math.isfinite(e.value) and e.value >= 0 for e in batch):
                fail("train/batch_loss: a value is negative or not finite")
    print("ok")


if __name__ == "__main__":
    main()
