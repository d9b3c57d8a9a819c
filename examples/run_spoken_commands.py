"""Train Sora on spoken commands (espeak-ng audio, 24 commands; test voices never heard in training).

    # the command from the audio alone (unseen voices)
    python examples/run_spoken_commands.py --modalities audio --output_dir runs/commands-audio --use_cpu
    # a question about the clip (which device? which action? is it about the fan?) -> answer
    python examples/run_spoken_commands.py --label_column answer --modalities fused --label_sampling_power 1 \
        --output_dir runs/spoken5-fused --learning_rate 1e-3 --num_train_epochs 40 --per_device_train_batch_size 32 \
        --warmup_steps 0.05 --weight_decay 0.01 --bf16 --seed 42 --use_cpu    # also: text, audio

`--bf16` pays only on CPUs with native bf16 (e.g. avx512_bf16/AMX, as `sora_hf.precision` measures); elsewhere the
run falls back to fp32 with a warning (`SORA_FORCE_BF16=1` keeps bf16).

Every setting trains the same model (same config, seed and hyperparameters); only the inputs differ. Writes the
model and its SoraProcessor, `multimodal_results.json`, `confusion_matrix.png`, `loss_curve.png` and README.md.
`--card model_cards/sora-spoken-commands.md --compare runs/a runs/b` writes a card comparing finished runs.
"""

from multimodal_comparison import multimodal_main

DESCRIPTION = (
    "A Sora sequence classifier with an audio tower (64-band log-mel frames, two stride-2 convolutions, 2 "
    "Transformer layers) whose frame tokens are fused with the text tokens in the encoder (early fusion, "
    "modality-type embeddings); on fused inputs the classifier also pools the product of the question and audio "
    "means (bilinear pooling). Trained from random initialisation on clips synthesized with espeak-ng + sox; "
    "the test split holds only voice variants never heard in training. Test accuracy:"
)

if __name__ == "__main__":
    multimodal_main("spoken_commands", DESCRIPTION)
