"""runner_ddp.py (each rank's writes under the output folder and Hub connections, in `<record>.rank<N>.json`), plus
each rank's dataset builds and writes under the caches, in `<record>.cache.rank<N>.json`.

    accelerate launch ... tests/scripts/ranks_fresh_cache.py RECORD TASK [finetune flags]

The caches are the ones this process uses: `~/.cache/sora_hf` (give each test its own HOME) and HF_DATASETS_CACHE.
"""

import json
import os
import runpy
import sys
import time
from pathlib import Path

from sora_hf.data import tasks

record = sys.argv[1]
rank = os.environ.get("RANK", "0")
caches = [Path("~/.cache/sora_hf").expanduser().resolve(), Path(os.environ["HF_DATASETS_CACHE"]).resolve()]
events = {"builds": [], "cache_writes": set()}


def audit(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        path, mode, flags = args
        writing = (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR)
        resolved = Path(os.fsdecode(path)).resolve()
        if writing and any(resolved.is_relative_to(cache) for cache in caches):
            events["cache_writes"].add(str(resolved))


def recorded(build):
    def wrapper(*args, **kwargs):
        started = time.time()
        dataset = build(*args, **kwargs)
        events["builds"].append({"started": started, "finished": time.time()})
        return dataset

    return wrapper


for builder in tasks.BUILDERS.values():
    builder.build = recorded(builder.build)
sys.addaudithook(audit)
runpy.run_path(str(Path(__file__).with_name("runner_ddp.py")), run_name="__main__")
events["finished"] = time.time()
Path(f"{record}.cache.rank{rank}.json").write_text(
    json.dumps({**events, "cache_writes": sorted(events["cache_writes"])})
)
