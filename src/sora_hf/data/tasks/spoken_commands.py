"""Spoken commands: 24 short smart-home commands synthesized with espeak-ng + sox at 16 kHz, many voices.

A voice is an espeak-ng English accent (7) plus a voice variant (~100: `espeak-ng --voices=variant`), spoken at a
random rate (130-210 words/minute) and pitch (20-80). Splits are by variant: sha1(variant) % 10 in {0, 1} is test,
2 is validation, the rest is train, so the test split only holds variants never heard in training. Every variant
says every command twice, with its own accent, rate and pitch each time (3,888 / 480 / 480 clips with the 101
variants of espeak-ng 1.51).

Each clip also carries a question about it (which device? which action? is it about the <device>?) and its
answer, for the audio + text task; `command` is the audio-only label. The audio is written once to
`~/.cache/sora_hf/spoken_commands/v<VERSION>/` (silence trimmed, 16-bit mono WAV); `audio_path` points there and
`read_audio(path)` loads it as float32 in [-1, 1].
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from datasets import ClassLabel, DatasetDict, Features, Value

from ...atomic_files import atomic_file
from ..installed_packages import require_program
from ._common import to_dataset_dict

VERSION = "1"
SAMPLING_RATE = 16000
CACHE_DIR = Path("~/.cache/sora_hf/spoken_commands").expanduser()
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
# (phrase, action, device)
COMMANDS = (
    ("turn on the light", "on", "light"),
    ("turn off the light", "off", "light"),
    ("turn on the fan", "on", "fan"),
    ("turn off the fan", "off", "fan"),
    ("turn on the heater", "on", "heater"),
    ("turn off the heater", "off", "heater"),
    ("open the door", "open", "door"),
    ("close the door", "close", "door"),
    ("lock the door", "lock", "door"),
    ("unlock the door", "unlock", "door"),
    ("open the window", "open", "window"),
    ("close the window", "close", "window"),
    ("play the music", "play", "music"),
    ("stop the music", "stop", "music"),
    ("next song", "next", "music"),
    ("previous song", "previous", "music"),
    ("turn the volume up", "up", "volume"),
    ("turn the volume down", "down", "volume"),
    ("raise the blinds", "up", "blinds"),
    ("lower the blinds", "down", "blinds"),
    ("start the timer", "start", "timer"),
    ("stop the timer", "stop", "timer"),
    ("call my phone", "call", "phone"),
    ("answer the phone", "answer", "phone"),
)
DEVICES = tuple(dict.fromkeys(device for _, _, device in COMMANDS))
ACTIONS = tuple(dict.fromkeys(action for _, action, _ in COMMANDS))
ANSWERS = (*DEVICES, *ACTIONS, "yes", "no")
FEATURES = Features(
    {
        "audio_path": Value("string"),
        "command": ClassLabel(names=[phrase for phrase, _, _ in COMMANDS]),
        "accent": Value("string"),
        "variant": Value("string"),
        "rate": Value("int32"),
        "pitch": Value("int32"),
        "question": Value("string"),
        "answer": ClassLabel(names=list(ANSWERS)),
    }
)


def _hash(key: str) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)


def split_of_variant(variant: str) -> str:
    """test for sha1 % 10 in {0, 1}, validation for 2, train otherwise: whole variants go to one split."""
    bucket = _hash(variant) % 10
    return "test" if bucket < 2 else "validation" if bucket == 2 else "train"


def voice_variants() -> list[str]:
    """The variant names espeak-ng ships (`espeak-ng --voices=variant`, file column `!v/<name>`), sorted."""
    espeak = require_program("espeak-ng", "espeak-ng")
    listing = subprocess.run([espeak, "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = {line.split()[4].split("/", 1)[1] for line in listing.splitlines()[1:] if "!v/" in line}
    return sorted(names)


def question_and_answer(command: int, rng: random.Random) -> tuple[str, str]:
    """One of three questions about a command, and its answer."""
    _, action, device = COMMANDS[command]
    kind = rng.randrange(3)
    if kind == 0:
        return "which device is it for?", device
    if kind == 1:
        return "what should the device do?", action
    asked = device if rng.random() < 0.5 else rng.choice([d for d in DEVICES if d != device])
    return f"is it about the {asked}?", "yes" if asked == device else "no"


def synthesize(phrase: str, accent: str, variant: str, rate: int, pitch: int, path: Path) -> None:
    """espeak-ng speaks `phrase`; sox resamples to 16 kHz mono 16-bit (no dither) and trims the silences."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    espeak = subprocess.run(
        ["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(rate), "-p", str(pitch), "--stdout", phrase],
        capture_output=True,
        check=True,
    )
    # -D: no dither, so the same command gives the same bytes on every build.
    sox = ["sox", "-D", "-t", "wav", "-", "-r", str(SAMPLING_RATE), "-c", "1", "-b", "16", "-t", "wav"]
    trim = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
    with atomic_file(path) as temporary:  # a killed build leaves no half-written clip
        subprocess.run([*sox, temporary, *trim], input=espeak.stdout, capture_output=True, check=True)
        if read_audio(temporary).size < SAMPLING_RATE // 10:  # trimmed to almost nothing: keep it untrimmed
            subprocess.run([*sox, temporary], input=espeak.stdout, capture_output=True, check=True)


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """A 16-bit mono WAV file as float32 samples in [-1, 1]."""
    with wave.open(str(path), "rb") as f:
        if f.getnchannels() != 1 or f.getsampwidth() != 2:
            raise ValueError(f"{path} is not 16-bit mono audio; regenerate it with rebuild=True.")
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def build(cache_dir: str | os.PathLike | None = None, max_workers: int = 2) -> DatasetDict:
    """Synthesize the missing clips (cached), then list every clip with its labels, split by voice variant."""
    require_program("espeak-ng", "espeak-ng")
    require_program("sox", "sox")
    root = Path(cache_dir).expanduser() if cache_dir is not None else CACHE_DIR
    root = root / f"v{VERSION}"
    jobs, rows = [], []
    for variant in voice_variants():
        split = split_of_variant(variant)
        for command, (phrase, _, _) in enumerate(COMMANDS):
            for take in range(2):
                rng = random.Random(_hash(f"{variant}|{command}|{take}"))
                accent = rng.choice(ACCENTS)
                rate, pitch = rng.randint(130, 210), rng.randint(20, 80)
                question, answer = question_and_answer(command, rng)
                path = root / split / variant / f"{command:02d}-{take}-{accent}-{rate}-{pitch}.wav"
                jobs.append((phrase, accent, variant, rate, pitch, path))
                row = {
                    "audio_path": str(path),
                    "command": command,
                    "accent": accent,
                    "variant": variant,
                    "rate": rate,
                    "pitch": pitch,
                    "question": question,
                    "answer": ANSWERS.index(answer),
                }
                rows.append((split, row))
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        list(pool.map(lambda job: synthesize(*job), jobs))
    return to_dataset_dict(rows, FEATURES)
