"""Prints, as JSON, the HParams each run of a sweep folder recorded, read by TensorBoard's own
EventAccumulator and the hparams plugin's protos: {run folder: {key: value, "_status": n}}.

usage: check_hparams.py SWEEP_LOG_DIR
"""
import glob
import json
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def main():
    out = {}
    for run in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*"))):
        # Run folders hold event files; the sweep's tasks/N mailboxes do not.
        if not glob.glob(os.path.join(run, "events.out.tfevents.*")):
            continue
        acc = EventAccumulator(run)
        acc.Reload()
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
        values = {k: json_format.MessageToDict(v) for k, v in start.session_start_info.hparams.items()}
        values["_status"] = end.session_end_info.status
        out[os.path.relpath(run, sys.argv[1])] = values
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
