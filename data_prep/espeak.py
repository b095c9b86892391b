"""eSpeak NG through its C library: the one synthesizer of the demo corpus and of
`augment_audio.py --engine espeak`.

    python -m data_prep.espeak          # check that the synthesizer loads; print its version

libespeak-ng and its data come from the pip wheel `espeakng-loader` (pinned in
requirements.txt: a pinned synthesizer gives the same demo corpus on every OS), called through
ctypes in synchronous mode: 22050 Hz int16 samples through a callback, no audio device, no
`espeak-ng` program, nothing to install with apt.

Every utterance is synthesized by a freshly loaded library with a fixed random seed, as one
run of the `espeak-ng` program would: the library keeps state from one utterance to the next
(a pitch-flutter phase, its noise generator, which 1.52 seeds from the clock), so reusing
one instance would make an utterance depend on what was spoken before it. The library is
not thread-safe: one lock serialises it within a process; `synthesize_many` runs a pool of
processes.
"""

from __future__ import annotations

import _ctypes
import ctypes
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from data_prep.cli import run
from utils.errors import MMERError

# requirements.txt pins the same version; the demo corpus records the library version it used.
WHEEL = "espeakng-loader==0.2.4"
INSTALL_HINT = f"pip install {WHEEL} (it is in requirements.txt; `make venv` installs it)"

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_ENDPAUSE = 0x1000  # a pause after the last clause, as the espeak-ng program adds
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4  # espeak_PARAMETER
_EE_OK = 0
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SynthesizerUnavailable(MMERError, RuntimeError):
    """libespeak-ng or its data cannot be found or loaded."""


class UnknownVoice(MMERError, ValueError):
    """A voice name (or its +variant) that the library does not have."""


@dataclass(frozen=True)
class Prosody:
    """espeak_SetParameter values: the espeak-ng program's -s, -a, -p and its pitch range."""

    rate: int = 175  # words per minute (-s, 80-450)
    volume: int = 100  # amplitude (-a, 0-200)
    pitch: int = 50  # base pitch (-p, 0-99)
    range: int = 50  # pitch range (0-100)


@dataclass(frozen=True)
class Request:
    """One utterance to speak. `ssml_range` wraps the text in SSML <prosody range="...">
    (x-low ... x-high, relative to `prosody.range`); `seed` seeds the library's noise."""

    text: str
    voice: str  # e.g. "en-us+f3": a voice file, optionally + a variant in voices/!v
    prosody: Prosody = Prosody()
    ssml_range: str | None = None
    seed: int = 0


def _locate() -> tuple[str, str]:
    """(library file, espeak-ng-data directory) from the pinned wheel."""
    try:
        import espeakng_loader
    except ImportError:
        raise SynthesizerUnavailable(
            f"the speech synthesizer is missing: the Python package espeakng-loader (libespeak-ng "
            f"with its voices) is not installed. {INSTALL_HINT}"
        ) from None
    try:
        library, data = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except Exception as exc:  # the wheel raises RuntimeError for missing data
        raise SynthesizerUnavailable(
            f"espeakng-loader is installed but incomplete ({exc}); reinstall it: "
            f"pip install --force-reinstall {WHEEL}"
        ) from None
    return library, data


def _unload(handle: int) -> None:
    if hasattr(_ctypes, "dlclose"):
        _ctypes.dlclose(handle)
    else:  # Windows
        _ctypes.FreeLibrary(handle)


class Espeak:
    """libespeak-ng from `espeakng-loader` (or an explicit library file and data directory).

    Construction loads the library once to check it, reads its version and voice list, and
    raises `SynthesizerUnavailable` with what to install when that fails.
    """

    _lock = threading.Lock()  # one library per process, not thread-safe

    def __init__(self, library: str | None = None, data: str | None = None) -> None:
        if library is None or data is None:
            found = _locate()
            library, data = library or found[0], data or found[1]
        self.library, self.data = str(library), str(data)
        self._known: dict[str, bool] = {}
        with self._lock, self._loaded() as lib:
            lib.espeak_Info.restype = ctypes.c_char_p
            self.version = lib.espeak_Info(None).decode()
        self.sample_rate = 22050

    def _loaded(self) -> _Session:
        return _Session(self.library, self.data)

    def check_voice(self, voice: str) -> None:
        """Raise `UnknownVoice` unless the library has `voice` (and its +variant).

        espeak-ng itself ignores a variant it does not have, and the espeak-ng program falls
        back to a language's default voice for a name it does not know ("en-gb+f1").
        """
        if voice in self._known:
            if not self._known[voice]:
                raise UnknownVoice(self._unknown_message(voice))
            return
        base, _, variant = voice.partition("+")
        ok = bool(base)
        if ok and variant:
            ok = (Path(self.data) / "voices" / "!v" / variant).is_file()
        if ok:
            with self._lock, self._loaded() as lib:
                ok = lib.espeak_SetVoiceByName(base.encode()) == _EE_OK
        self._known[voice] = ok
        if not ok:
            raise UnknownVoice(self._unknown_message(voice))

    def _unknown_message(self, voice: str) -> str:
        variants = sorted(p.name for p in (Path(self.data) / "voices" / "!v").iterdir())
        return (
            f"eSpeak NG {self.version} has no voice {voice!r} (a voice such as 'en-us' or 'en', "
            f"optionally +variant, one of: {' '.join(variants[:12])} ...); note that 'en-gb' is "
            f"not a voice name, 'en' is British English"
        )

    def synthesize(self, request: Request) -> np.ndarray:
        """Speak one request from a freshly loaded library: int16 samples at 22050 Hz."""
        self.check_voice(request.voice)
        p = request.prosody
        text = request.text or "."
        flags = _CHARS_UTF8 | _ENDPAUSE
        if request.ssml_range is not None:
            text = f'<speak><prosody range="{request.ssml_range}">{escape(text)}</prosody></speak>'
            flags |= _SSML
        data = text.encode("utf-8")
        chunks: list[bytes] = []

        def collect(wav, n, _events):
            if n > 0:
                chunks.append(ctypes.string_at(wav, 2 * n))
            return 0  # continue

        callback = _SYNTH_CALLBACK(collect)
        with self._lock, self._loaded() as lib:
            if hasattr(lib, "espeak_ng_SetRandSeed"):  # 1.52+ seeds its noise from the clock
                lib.espeak_ng_SetRandSeed(ctypes.c_long(request.seed))
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(request.voice.encode()) != _EE_OK:
                raise UnknownVoice(self._unknown_message(request.voice))
            for parameter, value in ((_RATE, p.rate), (_VOLUME, p.volume), (_PITCH, p.pitch)):
                lib.espeak_SetParameter(parameter, int(value), 0)
            lib.espeak_SetParameter(_RANGE, int(p.range), 0)
            status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed (status {status}) for {request}")
        return np.frombuffer(b"".join(chunks), dtype=np.int16).copy()


class _Session:
    """Load libespeak-ng, initialise it, and unload it on exit (fresh state every time)."""

    def __init__(self, library: str, data: str) -> None:
        self.library, self.data = library, data

    def __enter__(self) -> ctypes.CDLL:
        try:
            lib = ctypes.CDLL(self.library)
        except OSError as exc:
            raise SynthesizerUnavailable(
                f"cannot load libespeak-ng from {self.library} ({exc}). {INSTALL_HINT}"
            ) from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate != 22050:
            _unload(lib._handle)
            raise SynthesizerUnavailable(
                f"libespeak-ng ({self.library}) did not initialise with the data in {self.data} "
                f"(espeak_Initialize returned {rate}). {INSTALL_HINT}"
            )
        self.lib = lib
        return lib

    def __exit__(self, *exc) -> None:
        self.lib.espeak_Terminate()
        _unload(self.lib._handle)


def trim_trailing_silence(samples: np.ndarray, rate: int, keep_s: float = 0.1) -> np.ndarray:
    """Drop the pause eSpeak NG puts after the last sentence, keeping `keep_s` seconds.

    The pause is silence that every training step pays for (the CNN and attention cost grow
    with length) and that says nothing (its size: docs/data.md).
    """
    loud = np.flatnonzero(np.abs(samples) > 327)  # -40 dBFS in int16
    end = (loud[-1] + 1 if len(loud) else 0) + int(keep_s * rate)
    return samples[: min(len(samples), end)]


# a spawned worker's start-up pays off from about this many utterances on (docs/data.md)
MIN_PER_WORKER = 500

_worker: Espeak | None = None


def _init_worker(library: str, data: str) -> None:
    global _worker
    _worker = Espeak(library, data)


def _work(request: Request) -> np.ndarray:
    assert _worker is not None
    return _worker.synthesize(request)


def synthesize_many(
    engine: Espeak, requests: Sequence[Request], workers: int = 1
) -> Iterator[np.ndarray]:
    """Speak `requests` in order (int16, 22050 Hz each), in `workers` processes.

    Every voice is checked first, so an unknown one fails before any audio is made. The
    output does not depend on `workers` (each utterance starts from a fresh library).
    """
    for voice in sorted({r.voice for r in requests}):
        engine.check_voice(voice)
    workers = max(1, min(workers, len(requests) // MIN_PER_WORKER))
    if workers == 1:
        yield from map(engine.synthesize, requests)
        return
    # spawn, not fork: the caller may hold threads (torch, tqdm) that fork does not copy
    with ProcessPoolExecutor(
        workers,
        get_context("spawn"),
        initializer=_init_worker,
        initargs=(engine.library, engine.data),
    ) as pool:
        yield from pool.map(_work, requests, chunksize=8)


def main() -> int:
    try:
        engine = Espeak()
    except SynthesizerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"eSpeak NG {engine.version} ({engine.library}, data {engine.data})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
