"""Train Sora on easy-vqa (64x64 image + question -> one of 13 answers) from text, image or both.

    python examples/run_easy_vqa.py --modalities fused --output_dir runs/easy-vqa5-fused \
        --patch_embedding_type convolutional --label_sampling_power 0.5 --num_train_epochs 6 --learning_rate 5e-4 \
        --warmup_steps 0.05 --weight_decay 0.01 --per_device_train_batch_size 64 --bf16 --seed 42 --use_cpu
    python examples/run_easy_vqa.py --modalities text ...    # the question alone
    python examples/run_easy_vqa.py --modalities image ...   # the image alone

`--bf16` pays only on CPUs with native bf16 (e.g. avx512_bf16/AMX, as `sora_hf.precision` measures); elsewhere the
run falls back to fp32 with a warning (`SORA_FORCE_BF16=1` keeps bf16).

74% of the answers are yes/no, so with plain shuffling the model settles on the question's yes/no prior and never
learns the image; `--label_sampling_power` draws rare answers more often (1: every answer equally often; 0.673 ->
0.784 test accuracy, fused, linear patches, first-token pooling). The convolutional patch stem learns the shapes and
the bilinear fusion pooler (`--fusion_pooling bilinear`, the default) the yes/no questions, which need the product
of a question feature and an image feature.

Every setting trains the same model (same config, seed and hyperparameters); only the inputs differ. Writes the
model and its SoraProcessor, `multimodal_results.json` (test accuracy, wall time), `confusion_matrix.png`,
`loss_curve.png` and README.md. `--card model_cards/sora-easy-vqa.md --compare runs/a runs/b` writes a card whose
table compares finished runs (the fused one last).
"""

from multimodal_comparison import multimodal_main

DESCRIPTION = (
    "A Sora sequence classifier with a vision tower (a stride-2 convolutional stem to 8x8 patches of a 64x64 "
    "image, then 2 Transformer layers) whose patch tokens are fused with the question's tokens in the encoder "
    "(early fusion, modality-type embeddings); the classifier pools the first token plus the product of the "
    "question and image means (bilinear pooling). Trained from "
    "random initialisation on easy-vqa's train images; test accuracy on its 1,000 held-out test images, for the "
    "same model fed the question alone, the image alone, or both:"
)

if __name__ == "__main__":
    multimodal_main("easy_vqa", DESCRIPTION)
