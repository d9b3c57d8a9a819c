"""`SoraTrainer`: transformers' `Trainer` with Sora's model cards and loss-curve plots.

Extra training losses (adversarial, distillation) plug in here as small composed classes; none exist yet.
"""

from transformers import Trainer

from ..hub import write_model_card
from .plots import LossCurveCallback


class SoraTrainer(Trainer):
    """A `Trainer` whose model card is written by `sora_hf.hub.write_model_card` and which plots its loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not any(isinstance(callback, LossCurveCallback) for callback in self.callback_handler.callbacks):
            self.add_callback(LossCurveCallback())

    def create_model_card(self, **kwargs) -> None:
        """Write README.md (with model-index results) to `output_dir`; `push_to_hub` uploads it."""
        if self.is_world_process_zero():
            write_model_card(self, self.args.output_dir, **kwargs)
