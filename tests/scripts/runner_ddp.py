"""`run_task` under `accelerate launch` with two processes; each rank records the files it opened for writing
under the output folder and the Hub connections it made, in `<record>.rank<N>.json` (outside that folder)."""

import json
import os
import sys
from pathlib import Path

from sora_hf.training.runner import finetune_main

record, task, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
output_dir = Path(argv[argv.index("--output_dir") + 1]).resolve()
hub_port = os.environ.get("HF_ENDPOINT", "").rsplit(":", 1)[-1]
events = {"writes": set(), "hub_connections": 0}


def record_write(path) -> None:
    if str(Path(os.fsdecode(path)).resolve()).startswith(str(output_dir)):
        events["writes"].add(str(Path(os.fsdecode(path)).resolve().relative_to(output_dir)))


def audit(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        path, mode, flags = args
        if (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR):
            record_write(path)
    elif event == "os.rename" and isinstance(args[1], str | bytes | os.PathLike):
        record_write(args[1])  # os.replace too: a file written under a temporary name, renamed into place
    elif event == "socket.connect" and hub_port and str(args[1]).endswith(f", {hub_port})"):
        events["hub_connections"] += 1


sys.addaudithook(audit)
finetune_main(task, argv)
rank = os.environ.get("RANK", "0")
Path(f"{record}.rank{rank}.json").write_text(json.dumps({**events, "writes": sorted(events["writes"])}))
