"""The demo corpus: a synthetic IEMOCAP_full_release spoken by eSpeak NG, and its paraphrases
(`make demo`, scripts/demo.sh). Not part of the recipe for a real corpus."""
