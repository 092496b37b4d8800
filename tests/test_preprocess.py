"""Preprocessing: label map, word splitting with offsets, alignment, windows, batches."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerctl.data.sentence import Sentence
from nerctl.core.errors import InputError
from nerctl.modeling.encoding import (IGNORE_INDEX, Encoder, PieceTokenizer, batch_plan, collate, merge_windows, padded_length, plan_windows, tagging_plan)
from nerctl.data.sentence import split_words
from nerctl.data.tags import LabelMap


def sentence(*pairs):
    return Sentence(tuple(w for w, _ in pairs), tuple(t for _, t in pairs))


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_model):
    from nerctl.modeling.model import load_tokenizer

    return load_tokenizer(str(tiny_model))


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    """Loaded with the tokenizers library only, as predict loads a run's tokenizer."""
    return PieceTokenizer.from_folder(tiny_model)


def test_piece_tokenizer_from_folder_matches_transformers(tokenizer, hf_tokenizer):
    sentences = [["Have", "you", "seen", "Titanicx", "?"], [], ["\u200b", "caf\u00e9", "\U0001f3ac"]]
    via_transformers = PieceTokenizer.from_transformers(hf_tokenizer)
    assert tokenizer.encode_words(sentences) == via_transformers.encode_words(sentences)
    assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.unk_id, tokenizer.pad_id) == (
        hf_tokenizer.cls_token_id, hf_tokenizer.sep_token_id, hf_tokenizer.unk_token_id, hf_tokenizer.pad_token_id)
    encoded = hf_tokenizer(sentences[0], is_split_into_words=True, add_special_tokens=False)
    assert tokenizer.encode_words(sentences[:1]) == [(encoded["input_ids"], encoded.word_ids())]


def test_a_tokenizer_files_truncation_and_padding_do_not_reach_the_windows(tiny_model, tokenizer, tmp_path):
    """MiniLM's tokenizer.json truncates at 128 pieces and pads to 128: a longer sentence's later words
    got no pieces (so [UNK]) before nerctl dropped both; the caller's tokenizer keeps its own."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    limited = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    limited.enable_truncation(8)
    limited.enable_padding(length=8)
    for name in ("special_tokens_map.json", "vocab.txt"):
        (tmp_path / name).write_bytes((tiny_model / name).read_bytes())
    limited.save(str(tmp_path / "tokenizer.json"))
    words = ["what", "movies", "star", "bruce", "willis"] * 4
    expected = tokenizer.encode_words([words])
    assert max(w for w in expected[0][1] if w is not None) == len(words) - 1  # the unlimited one sees all 20
    assert PieceTokenizer.from_folder(tmp_path).encode_words([words]) == expected
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert PieceTokenizer.from_transformers(hf).encode_words([words]) == expected
    assert hf.backend_tokenizer.truncation["max_length"] == 8


def test_the_embedded_minilms_tokenizer_gives_every_word_of_a_long_sentence_its_pieces():
    """Its tokenizer.json is the one that truncates at 128 pieces: 330 pieces, every word its own."""
    from nerctl.modeling.model import load_tokenizer, resolve_model

    words = "have you seen the dark knight with christian bale .".split() * 30
    for tokenizer in (PieceTokenizer.from_folder(resolve_model("minilm")),
                      PieceTokenizer.from_transformers(load_tokenizer(resolve_model("minilm")))):
        pieces = tokenizer.word_pieces([words])[0]
        assert all(pieces) and pieces[-2] == pieces[8] and sum(map(len, pieces)) > 128


def test_word_pieces_of_distinct_words_equal_each_sentence_tokenized_whole(tokenizer, tmp_path):
    """The WordPiece shortcut (each distinct word tokenized once) gives what tokenizing sentence by sentence
    gives; tokenizers whose pieces may depend on a word's place take the sentence-by-sentence path."""
    from conftest import byte_bpe_tokenizer
    from nerctl.modeling.encoding import _group_pieces

    sentences = [["Have", "you", "seen", "Titanicx", "?"], [], ["\u200b", "caf\u00e9", "\U0001f3ac", "you"],
                 ["U.S.A.", "don't", "\u65e5\u672c", "have", "HAVE"], ["you"] * 3]
    whole = [_group_pieces(ids, word_ids, len(words))
             for words, (ids, word_ids) in zip(sentences, tokenizer.encode_words(sentences))]
    assert tokenizer.words_apart and tokenizer.word_pieces(sentences) == whole
    assert whole[2][0] == [] and whole[3][0] != whole[3][2]  # a word without pieces; several distinct ones
    byte_bpe_tokenizer(tmp_path).save_pretrained(str(tmp_path))
    assert not PieceTokenizer.from_folder(tmp_path).words_apart


def test_piece_tokenizer_from_a_folder_without_tokenizer_files_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot load the tokenizer"):
        PieceTokenizer.from_folder(tmp_path)


def test_label_map_is_deterministic_o_first_then_sorted():
    a = [sentence(("x", "B-TITLE"), ("y", "I-TITLE")), sentence(("z", "B-ACTOR"))]
    first = LabelMap.from_sentences(a)
    assert first.labels == ("O", "B-ACTOR", "B-TITLE", "I-ACTOR", "I-TITLE")
    assert LabelMap.from_sentences(list(reversed(a))) == first


def test_label_map_round_trips_and_rejects_unseen_labels(tmp_path):
    labels = LabelMap(("O", "B-A", "I-A"))
    (tmp_path / "labels.json").write_text(labels.to_json())
    assert LabelMap.load(tmp_path / "labels.json") == labels
    with pytest.raises(InputError, match=r"eval.bio: 2 tag\(s\).*B-NEW, I-OTHER"):
        labels.check([sentence(("a", "B-NEW"), ("b", "I-OTHER"), ("c", "B-A"))], "eval.bio")


def test_split_words_keeps_offsets_and_splits_punctuation():
    text = "Have you seen The Dark Knight?"
    words = split_words(text)
    assert [w.text for w in words] == ["Have", "you", "seen", "The", "Dark", "Knight", "?"]
    assert all(text[w.start : w.end] == w.text for w in words)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_split_words_offsets_always_point_into_the_text(text):
    words = split_words(text)
    assert all(text[w.start : w.end] == w.text and w.text.strip() == w.text and w.text for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))


def test_alignment_labels_first_piece_only_with_cls_and_sep(tokenizer, hf_tokenizer):
    labels = LabelMap(("O", "B-TITLE", "I-TITLE"))
    encoder = Encoder(tokenizer, 64, labels)
    words = ["have", "you", "seen", "titanicx"]  # "titanicx" splits into several pieces
    (window,) = encoder.encode([words], [["O", "O", "O", "B-TITLE"]])
    ids = window.input_ids.tolist()
    assert ids[0] == hf_tokenizer.cls_token_id and ids[-1] == hf_tokenizer.sep_token_id
    pieces = hf_tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    assert ids[1:-1] == pieces["input_ids"]
    expected = [IGNORE_INDEX] + [IGNORE_INDEX if w is None else -1 for w in pieces.word_ids()] + [IGNORE_INDEX]
    # first piece of each word carries its label; every other position is ignored
    first_positions = [1 + i for i, w in enumerate(pieces.word_ids()) if i == 0 or pieces.word_ids()[i - 1] != w]
    for pos in range(len(expected)):
        if pos in first_positions:
            word = pieces.word_ids()[pos - 1]
            assert window.labels[pos] == labels.label2id[["O", "O", "O", "B-TITLE"][word]]
            assert window.word_index[pos] == word
        else:
            assert window.labels[pos] == IGNORE_INDEX and window.word_index[pos] == -1
    assert len(ids) - 2 > len(words)  # the test really had a multi-piece word


def test_word_without_pieces_gets_unk(tokenizer, hf_tokenizer):
    encoder = Encoder(tokenizer, 16)
    (window,) = encoder.encode([["what", "\u200b"]])  # a zero-width space tokenizes to nothing
    assert window.input_ids.tolist()[1:3] == [hf_tokenizer.convert_tokens_to_ids("what"), hf_tokenizer.unk_token_id]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=0, max_size=80), st.integers(2, 40))
def test_windows_fit_and_owned_ranges_partition_the_sentence(counts, budget):
    counts = [min(c, budget) for c in counts]
    plan = plan_windows(counts, budget)
    owned = []
    for start, end, own_start, own_end in plan:
        assert sum(counts[start:end]) <= budget
        assert start <= own_start <= own_end <= end
        owned.extend(range(own_start, own_end))
    assert owned == list(range(len(counts)))


def test_long_sentence_is_windowed_not_truncated_and_merges_back(tokenizer):
    labels = LabelMap(("O", "B-TITLE", "I-TITLE"))
    encoder = Encoder(tokenizer, 12, labels)  # 10 pieces per window
    words = ["what", "movies", "star", "bruce", "willis"] * 9
    tags = ["O", "O", "O", "B-TITLE", "I-TITLE"] * 9
    windows = encoder.encode([words, ["jaws"]], [tags, ["B-TITLE"]])
    assert len([w for w in windows if w.sentence == 0]) > 1
    assert all(len(w.input_ids) <= 12 for w in windows)
    # every word labelled exactly once, with its own tag
    seen = sorted(int(i) for w in windows if w.sentence == 0 for i in w.word_index[w.word_index >= 0])
    assert seen == list(range(len(words)))
    # scatter a per-position "word id + 1" output back: each word gets its own value
    outputs = [np.where(w.word_index >= 0, w.word_index + 1, 0).astype(np.float32) for w in windows]
    merged = merge_windows(windows, outputs, [len(words), 1])
    assert merged[0].tolist() == [float(i + 1) for i in range(len(words))]
    assert merged[1].tolist() == [1.0]


def test_batches_keep_every_window_once_and_group_lengths(tokenizer):
    encoder = Encoder(tokenizer, 64)
    rng = np.random.default_rng(0)
    sentences = [["what"] * int(n) for n in rng.integers(1, 40, size=300)]
    windows = encoder.encode(sentences)
    for generator in (None, np.random.default_rng(1)):
        plan = batch_plan(windows, 16, generator)
        flat = sorted(i for batch in plan for i in batch)
        assert flat == list(range(len(windows)))
        assert sum(len(batch) < 16 for batch in plan) <= 1  # only the cut's last batch is short
        padded = 0
        for indices in plan:
            batch = collate(windows, indices, encoder.pad_id)
            assert batch.input_ids.shape[1] == max(len(windows[i].input_ids) for i in indices)
            assert batch.attention_mask.sum() == sum(len(windows[i].input_ids) for i in indices)
            padded += batch.input_ids.size - batch.attention_mask.sum()
        # 300 windows of 39 lengths in batches of 16: a batch spans at most 2-3 lengths
        assert padded / sum(len(w.input_ids) for w in windows) < 0.05
    assert batch_plan(windows, 16, np.random.default_rng(1)) == batch_plan(windows, 16, np.random.default_rng(1))
    assert batch_plan(windows, 16, np.random.default_rng(1)) != batch_plan(windows, 16, np.random.default_rng(2))


def test_tagging_plan_pads_each_window_to_its_own_rounded_length(tokenizer):
    encoder = Encoder(tokenizer, 64)
    rng = np.random.default_rng(0)
    windows = encoder.encode([["what"] * int(n) for n in rng.integers(1, 40, size=300)])
    plan = tagging_plan(windows, 16, multiple=4)
    assert sorted(i for _, batch in plan for i in batch) == list(range(len(windows)))
    assert [padded_length(n, 4) for n in (1, 4, 5, 8, 9)] == [4, 4, 8, 8, 12]
    for length, indices in plan:
        assert 0 < len(indices) <= 16
        assert {padded_length(len(windows[i].input_ids), 4) for i in indices} == {length}
        batch = collate(windows, indices, encoder.pad_id, length)
        assert batch.input_ids.shape == (len(indices), length)
        assert batch.attention_mask.sum() == sum(len(windows[i].input_ids) for i in indices)
    # the same window gets the same padded length in any company
    alone = tagging_plan(windows[:1], 16, multiple=4)
    assert alone[0][0] == next(length for length, batch in plan if 0 in batch)


def test_tensorflow_leaves_no_autograph_files_in_the_temp_folder(tmp_path):
    """Functions autograph converts run, and their generated files are gone at once (not at exit: a killed
    process would leave them), even for a process that ends with os._exit."""
    import os
    import subprocess
    import sys

    code = ("import os; from nerctl.modeling.runtime import import_tensorflow; tf = import_tensorflow()\n"
            "@tf.function\n"
            "def f(x):\n"
            "    if tf.reduce_sum(x) > 0:\n"
            "        return x * 2\n"
            "    return -x\n"
            "print(f(tf.constant([1, 2])).numpy().tolist(), f(tf.constant([-3])).numpy().tolist(), flush=True)\n"
            "os._exit(0)\n")
    script = tmp_path / "converted.py"  # autograph reads the function's source: a file, not -c
    script.write_text(code)
    temp = tmp_path / "temp"
    temp.mkdir()
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                         env={**os.environ, "TMPDIR": str(temp)}).stdout
    assert out.split("\n")[0] == "[2, 4] [3]"
    assert not list(temp.iterdir())
