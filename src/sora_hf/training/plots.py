"""PNG plots of what a user looks at after training: loss curves (and, later, confusion matrices)."""

from pathlib import Path

from transformers import TrainerCallback


def plot_loss_curve(log_history: list[dict], path: str | Path, title: str = "training loss") -> Path | None:
    """Plot training (and evaluation) loss against the step from a Trainer's `state.log_history`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    evaluation = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    if not train and not evaluation:
        return None
    figure, axis = plt.subplots(figsize=(6, 3.5))
    if train:
        axis.plot(*zip(*train), label="train")
    if evaluation:
        axis.plot(*zip(*evaluation), marker="o", label="evaluation")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


class LossCurveCallback(TrainerCallback):
    """Rewrite `<output_dir>/loss_curve.png` at every save and at the end of training."""

    def _plot(self, args, state) -> None:
        if state.is_world_process_zero:
            plot_loss_curve(state.log_history, Path(args.output_dir) / "loss_curve.png")

    def on_save(self, args, state, control, **kwargs):
        self._plot(args, state)

    def on_train_end(self, args, state, control, **kwargs):
        self._plot(args, state)
