"""The CTC vocabulary and target cleaning that the authors' 32-way CTC head expects."""

from models.vocab import CTC_VOCAB, clean_ctc_text, ctc_ids_to_text, text_to_ctc_ids


def test_vocabulary_order_is_wav2vec2_base():
    assert len(CTC_VOCAB) == 32
    assert CTC_VOCAB[:5] == ("<pad>", "<s>", "</s>", "<unk>", "|")
    assert "".join(CTC_VOCAB[5:]) == "ETAONIHSRDLUMWCFGYPBVK'XJQZ"


def test_cleaning_drops_unknown_characters_and_collapses_spaces():
    assert clean_ctc_text("  Hello,   world!  It's 5 o'clock. ") == "HELLO WORLD IT'S O'CLOCK"
    assert clean_ctc_text("") == ""


def test_ids_use_the_word_delimiter_for_spaces():
    ids = text_to_ctc_ids("hi you")
    assert ids == [11, 10, 4, 22, 8, 16]
    assert ctc_ids_to_text(ids) == "HI YOU"
