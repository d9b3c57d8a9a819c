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


def plot_confusion_matrix(
    references: list[int], predictions: list[int], labels: list[str], path: str | Path, title: str = ""
) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for reference, prediction in zip(references, predictions):
        matrix[reference, prediction] += 1
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if normalised[i, j] > 0.6 else "black"
            axis.text(j, i, f"{matrix[i, j]}\n{normalised[i, j]:.0%}", ha="center", va="center", color=colour)
    axis.set_xticks(range(len(labels)), labels, rotation=30)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title or "confusion matrix")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
