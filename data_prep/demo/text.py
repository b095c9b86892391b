"""Transcripts for the synthetic demo corpus: only about half of them carry an emotion cue.

Word count is drawn independently of the class, so neither text length nor (after the
class-dependent speaking rate) duration gives the class away.
"""

from __future__ import annotations

import re

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
    label: str, rng: np.random.Generator, min_words: int = 3, max_words: int = 10
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


# One hand-written paraphrase per phrase: the demo's stand-in for back-translation (no
# translation model is available offline). Same meaning, same emotion, other words.
PARAPHRASES: dict[str, str] = {
    # hap
    "I am so happy": "I'm really glad",
    "this is wonderful": "this is great",
    "what a lovely surprise": "what a nice surprise",
    "I can't stop smiling": "I keep smiling",
    "that is fantastic news": "that's great news",
    "we did it at last": "we finally did it",
    "I love it": "I really like it",
    "this made my day": "this really made my day",
    "how exciting": "that's so exciting",
    "I'm thrilled": "I'm delighted",
    # ang
    "I am furious": "I'm so angry",
    "how dare you": "how can you dare",
    "this is outrageous": "this is scandalous",
    "stop lying to me": "quit lying to me",
    "I'm sick of this": "I'm fed up with this",
    "get out of my way": "move out of my way",
    "you never listen": "you don't ever listen",
    "that is unacceptable": "that's not acceptable",
    "leave me alone": "let me be",
    "I hate this": "I can't stand this",
    # neu
    "that is fine": "that's okay",
    "okay I see": "all right I understand",
    "nothing special": "nothing in particular",
    "as usual": "like always",
    "it is what it is": "that's how it is",
    "I suppose so": "I guess so",
    "let me check": "let me have a look",
    "either way works": "both ways are fine",
    "noted": "understood",
    "sure": "of course",
    # sad
    "I miss her so much": "I miss her terribly",
    "I feel so lonely": "I'm so alone",
    "nothing matters anymore": "nothing is important now",
    "I lost everything": "everything is gone",
    "I'm so sorry": "I'm very sorry",
    "it breaks my heart": "my heart is broken",
    "I can't go on": "I can't continue",
    "everyone left": "they all went away",
    "I wish it were different": "I wish things were otherwise",
    "I'm tired of everything": "I'm weary of it all",
    # filler
    "the meeting is on tuesday": "we meet on tuesday",
    "we should take the bus": "let's go by bus",
    "the report is on the desk": "the report lies on the desk",
    "my brother lives downtown": "my brother has a place downtown",
    "it might rain later": "it could rain later on",
    "the store closes at nine": "the shop shuts at nine",
    "she parked the car outside": "she left the car outside",
    "there are three chairs in the room": "the room has three chairs",
    "he called this morning": "he phoned this morning",
    "the train leaves from platform two": "the train departs from platform two",
    "we need more paper": "we are short of paper",
    "the window is open": "somebody left the window open",
    "I read the letter": "I have read the letter",
    "they moved last spring": "they moved house last spring",
    "the keys are in the drawer": "the drawer has the keys",
    "the coffee is ready": "coffee is ready",
    "my phone needs charging": "my phone has to be charged",
    "the flight was on time": "the plane arrived on time",
    "we walked to the corner": "we went to the corner on foot",
    "the door was painted blue": "someone painted the door blue",
    "tomorrow is monday": "it is monday tomorrow",
    "the dog sleeps by the fire": "the dog is asleep near the fire",
    "I checked the schedule": "I looked at the timetable",
    "the lights are on": "the lights are switched on",
    "she wrote down the address": "she noted the address",
    "the box is heavy": "the box weighs a lot",
    "we talked about the weather": "we chatted about the weather",
    "the bank is across the street": "the bank is on the other side of the street",
    "he fixed the old clock": "he repaired the old clock",
    "the soup needs salt": "the soup wants more salt",
}

_PHRASE = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in sorted(PARAPHRASES, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_LOWER_KEYS = {p.lower(): q for p, q in PARAPHRASES.items()}


def paraphrase(sentence: str) -> str:
    """The paraphrase of a demo sentence: every known phrase replaced by its rewording."""
    out = _PHRASE.sub(lambda m: _LOWER_KEYS[m.group(0).lower()], sentence)
    return out[:1].upper() + out[1:]
