"""Entry point of the `sora-hf` console script, kept outside the `sora_hf` package so `--help` answers at once.

`import sora_hf` imports torch and transformers and registers Sora with the Auto classes (seconds). The
command line needs none of that to parse its arguments or print help, so this module puts the `sora_hf`
package in `sys.modules` without running its `__init__`, imports `sora_hf.cli` (light: the sub-commands import
their heavy modules inside `run`), and runs the package's `__init__` only once a command is about to run,
so every command still sees a fully imported and registered `sora_hf`.
"""

import importlib.util
import sys


def main(argv: list[str] | None = None) -> int:
    """`sora-hf ...`: parse with the package's `__init__` deferred, run it just before the command."""
    if "sora_hf" in sys.modules:  # already imported (in-process callers): nothing to defer
        from sora_hf.cli import main as cli_main

        return cli_main(argv)
    spec = importlib.util.find_spec("sora_hf")
    package = importlib.util.module_from_spec(spec)  # `__path__` set, `__init__` not run yet
    sys.modules["sora_hf"] = package
    from sora_hf.cli import main as cli_main

    return cli_main(argv, before_run=lambda: spec.loader.exec_module(package))


if __name__ == "__main__":
    raise SystemExit(main())
