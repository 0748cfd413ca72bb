"""Compares every scalar of two kiln run folders with TensorBoard's own EventAccumulator.

usage: same_scalars.py RUN_A RUN_B   -> prints "same N" or exits 1 naming the first difference.
A resumed run must have logged what an uninterrupted one did: same tags, same steps, each step
once (the events a stopped process wrote after its checkpoint are cut), and the same training
values to the bit. Test-set values may differ in the last bits of float32 (seen once, 3 ulp,
under load, while the weights were identical): flex's inference path is not bit-stable
across processes under load (bench/NOTES.md has the history).
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run, sub):
    ea = EventAccumulator(f"{run}/{sub}", size_guidance={"scalars": 0})
    ea.Reload()
    return {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}


def main():
    a, b = sys.argv[1], sys.argv[2]
    n = 0
    for sub in ("train", "test"):
        sa, sb = scalars(a, sub), scalars(b, sub)
        if sorted(sa) != sorted(sb):
            print(f"{sub}: tags differ: {sorted(sa)} vs {sorted(sb)}")
            sys.exit(1)
        for tag in sa:
            same = sa[tag] == sb[tag] or (
                sub == "test"
                and [s for s, _ in sa[tag]] == [s for s, _ in sb[tag]]
                and all(abs(x - y) <= 1e-6 * max(1.0, abs(x)) for (_, x), (_, y) in zip(sa[tag], sb[tag]))
            )
            if not same:
                diff = next((x, y) for x, y in zip(sa[tag], sb[tag]) if x != y) if len(sa[tag]) == len(sb[tag]) else (len(sa[tag]), len(sb[tag]))
                print(f"{sub}/{tag} differs: {diff}")
                sys.exit(1)
            n += len(sa[tag])
    print(f"same {n}")


main()
