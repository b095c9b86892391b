"""Transcripts for the synthetic demo corpus: only about half of them carry an emotion cue.

Word count is drawn independently of the class, so neither text length nor (after the
class-dependent speaking rate) duration gives the class away.
"""

from __future__ import annotations

import numpy as np

# Phrases that point at a class; the rest of every sentence is neutral filler.
EMOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "hap": (
        "I am so happy",
        "this is wonderful",
        "what a lovely surprise",
        "I can't stop smiling",
        "that is fantastic news",
        "we did it at last",
        "I love it",
        "this made my day",
        "how exciting",
        "I'm thrilled",
    ),
    "ang": (
        "I am furious",
        "how dare you",
        "this is outrageous",
        "stop lying to me",
        "I'm sick of this",
        "get out of my way",
        "you never listen",
        "that is unacceptable",
        "leave me alone",
        "I hate this",
    ),
    "neu": (
        "that is fine",
        "okay I see",
        "nothing special",
        "as usual",
        "it is what it is",
        "I suppose so",
        "let me check",
        "either way works",
        "noted",
        "sure",
    ),
    "sad": (
        "I miss her so much",
        "I feel so lonely",
        "nothing matters anymore",
        "I lost everything",
        "I'm so sorry",
        "it breaks my heart",
        "I can't go on",
        "everyone left",
        "I wish it were different",
        "I'm tired of everything",
    ),
}

FILLER: tuple[str, ...] = (
    "the meeting is on tuesday",
    "we should take the bus",
    "the report is on the desk",
    "my brother lives downtown",
    "it might rain later",
    "the store closes at nine",
    "she parked the car outside",
    "there are three chairs in the room",
    "he called this morning",
    "the train leaves from platform two",
    "we need more paper",
    "the window is open",
    "I read the letter",
    "they moved last spring",
    "the keys are in the drawer",
    "the coffee is ready",
    "my phone needs charging",
    "the flight was on time",
    "we walked to the corner",
    "the door was painted blue",
    "tomorrow is monday",
    "the dog sleeps by the fire",
    "I checked the schedule",
    "the lights are on",
    "she wrote down the address",
    "the box is heavy",
    "we talked about the weather",
    "the bank is across the street",
    "he fixed the old clock",
    "the soup needs salt",
)

EMOTION_SHARE = 0.5  # share of sentences with an emotion phrase


def make_sentence(
    label: str, rng: np.random.Generator, min_words: int = 3, max_words: int = 16
) -> str:
    """A sentence for class `label` ('xxx' etc. get filler only) with a class-independent length."""
    target = int(rng.integers(min_words, max_words + 1))
    parts: list[str] = []
    if label in EMOTION_PHRASES and rng.random() < EMOTION_SHARE:
        parts.append(str(rng.choice(EMOTION_PHRASES[label])))
    words = sum(len(p.split()) for p in parts)
    while words < target:
        clause = str(rng.choice(FILLER))
        parts.insert(int(rng.integers(0, len(parts) + 1)), clause)
        words += len(clause.split())
    sentence = " ".join(parts)
    return sentence[0].upper() + sentence[1:] + str(rng.choice([".", ".", "!", "?"]))
