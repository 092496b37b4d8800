"""Fixtures: a tiny randomly initialised BERT and small BIO files, made by the tests.

Nothing here touches the network: the model's config and vocabulary are written
here, and the data is generated from templates with a fixed seed.
"""
from __future__ import annotations

import os
import random
import socket
from pathlib import Path
from typing import Any, Callable

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "mitmovie"
SMOKE = str(REPO / "configs" / "smoke.toml")

ACTORS = [["bruce", "willis"], ["drew", "barrymore"], ["tom", "hanks"], ["meryl", "streep"], ["brad", "pitt"]]
TITLES = [["the", "dark", "knight"], ["titanic"], ["star", "wars"], ["the", "godfather"], ["jaws"]]
DIRECTORS = [["steven", "spielberg"], ["james", "cameron"], ["christopher", "nolan"]]
YEARS = [["1980s"], ["1990"], ["2005"], ["last", "year"]]
GENRES = [["comedy"], ["horror"], ["science", "fiction"], ["drama"]]
TEMPLATES = [
    "what movies star {ACTOR}",
    "show me films with {ACTOR} from the {YEAR}",
    "who directed {TITLE}",
    "have you seen {TITLE}",
    "is {TITLE} a {GENRE} movie",
    "list {GENRE} films directed by {DIRECTOR}",
    "did {DIRECTOR} make {TITLE} in {YEAR}",
    "find a {GENRE} with {ACTOR}",
]
FILLERS = {"ACTOR": ACTORS, "TITLE": TITLES, "DIRECTOR": DIRECTORS, "YEAR": YEARS, "GENRE": GENRES}


def make_sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """Templated movie queries, tagged IOB2."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentence = []
        for token in rng.choice(TEMPLATES).split():
            if token.startswith("{"):
                kind = token[1:-1]
                for i, word in enumerate(rng.choice(FILLERS[kind])):
                    sentence.append((word, ("B-" if i == 0 else "I-") + kind))
            else:
                sentence.append((token, "O"))
        out.append(sentence)
    return out


def write_bio(path: Path, sentences, fmt: str = "mit") -> Path:
    lines = []
    for sentence in sentences:
        for word, tag in sentence:
            lines.append(f"{tag}\t{word}" if fmt == "mit" else f"{word} X X {tag}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_file(folder, content: str | bytes, name) -> Path:
    """`content` written to folder/name (a str as UTF-8, bytes as they are); the path."""
    path = Path(folder) / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def free_ports(n: int = 1) -> list[int]:
    """n distinct free ports on 127.0.0.1: all bound at once (so no two are the same), read, closed."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def train_args(tiny_model, files: dict, run_dir, *extra) -> list[str]:
    """`nerctl train` on configs/smoke.toml: the model, files["train"], files["dev"] (files["test"] if given),
    --run-dir (none if run_dir is None), then `extra`. Subprocess callers prepend [sys.executable, "-m", "nerctl"]."""
    test = ["--test-file", str(files["test"])] if "test" in files else []
    run = ["--run-dir", str(run_dir)] if run_dir is not None else []
    return ["train", "-c", SMOKE, "--model", str(tiny_model), "--train-file", str(files["train"]),
            "--eval-file", str(files["dev"]), *test, *run, *map(str, extra)]


def fixture_vocab() -> list[str]:
    words = {w for group in FILLERS.values() for item in group for w in item}
    words |= {w for t in TEMPLATES for w in t.split() if not w.startswith("{")}
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789?!.,'")
    pieces = ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    return specials + sorted(words) + [c for c in chars if c not in words] + pieces


def fixture_texts() -> list[str]:
    """The texts the fixture tokenizers learn their pieces from: every template with every filler."""
    return [" ".join(w for s in make_sentences(1, seed) for w, _ in s) for seed in range(400)]


def wordpiece_tokenizer(folder: Path, vocab: list[str] | None = None):
    """BERT's, DistilBERT's and ELECTRA's kind: WordPiece over `vocab` (default: the fixture vocabulary),
    lower-cased."""
    from transformers import BertTokenizerFast

    (folder / "vocab.txt").write_text("\n".join(vocab or fixture_vocab()) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True, model_max_length=64)


def byte_bpe_tokenizer(folder: Path):
    """RoBERTa's kind: byte-level BPE learnt on the fixture texts, without a prefix space (as RoBERTa's own)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(fixture_texts(), trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return RobertaTokenizerFast(tokenizer_object=bpe, model_max_length=64, bos_token="<s>", eos_token="</s>",
                                cls_token="<s>", sep_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                mask_token="<mask>")


def _sentencepiece(folder: Path, **ids) -> Path:
    """A SentencePiece unigram model learnt on the fixture texts; its file."""
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(fixture_texts()), model_prefix=str(folder / "spm"), vocab_size=120,
        hard_vocab_limit=False, model_type="unigram", minloglevel=2, **ids)
    return folder / "spm.model"


def xlmr_tokenizer(folder: Path):
    """XLM-R's kind: SentencePiece with fairseq's id offset, converted to a fast tokenizer (as on the hub)."""
    from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast

    slow = XLMRobertaTokenizer(vocab_file=str(_sentencepiece(folder)), model_max_length=64)
    slow.save_pretrained(str(folder))
    return XLMRobertaTokenizerFast.from_pretrained(str(folder))


def deberta_v3_tokenizer(folder: Path):
    """DeBERTa-v3's kind: an spm.model and no tokenizer.json (nerctl converts it to a fast tokenizer)."""
    from transformers import DebertaV2Tokenizer

    model = _sentencepiece(folder, pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]",
                           eos_piece="[SEP]", unk_piece="[UNK]", user_defined_symbols=["[MASK]"])
    return DebertaV2Tokenizer(vocab_file=str(model), model_max_length=64)


TOKENIZERS = {"wordpiece": wordpiece_tokenizer, "byte-bpe": byte_bpe_tokenizer, "xlmr-spm": xlmr_tokenizer,
              "deberta-spm": deberta_v3_tokenizer}


def tiny_family_model(folder: Path, config_class: str, model_class: str,
                      tokenizer: "str | Callable[[Path], Any]" = "wordpiece", **config) -> Path:
    """A 2-layer, 32-wide model of a transformers family with random weights and a tokenizer of TOKENIZERS
    (its own family's kind) learnt on the fixture texts, or made by `tokenizer(folder)`, saved like a hub
    folder."""
    import nerctl  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
    import tensorflow as tf
    import transformers

    pieces = TOKENIZERS[tokenizer](folder) if isinstance(tokenizer, str) else tokenizer(folder)
    pieces.save_pretrained(str(folder))
    if tokenizer == "deberta-spm":  # the hub's DeBERTa-v3 folders hold the spm.model alone
        (folder / "tokenizer.json").unlink(missing_ok=True)
    sizes = dict(vocab_size=len(pieces), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64, pad_token_id=pieces.pad_token_id)
    settings = getattr(transformers, config_class)(**{**sizes, **config})
    tf.keras.utils.set_random_seed(0)
    model = getattr(transformers, model_class)(settings)
    model(model.dummy_inputs)
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights, saved like a hub folder."""
    return tiny_family_model(tmp_path_factory.mktemp("tiny-bert"), "BertConfig", "TFBertModel")


@pytest.fixture(scope="session")
def tiny_deberta(tmp_path_factory) -> Path:
    """A tiny DeBERTa-v3-like model (relative attention, no absolute positions): LiteRT cannot convert it."""
    return tiny_family_model(tmp_path_factory.mktemp("tiny-deberta"), "DebertaV2Config", "TFDebertaV2Model",
                             "deberta-spm", relative_attention=True, pos_att_type=["p2c", "c2p"],
                             position_biased_input=False, position_buckets=256, norm_rel_ebd="layer_norm",
                             share_att_key=True)


@pytest.fixture(scope="session")
def bio_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bio")
    return {
        "train": write_bio(folder / "train.bio", make_sentences(240, seed=1)),
        "dev": write_bio(folder / "dev.bio", make_sentences(40, seed=2)),
        "test": write_bio(folder / "test.bio", make_sentences(40, seed=3)),
    }


def _tiny_training(tiny_model, bio_files, runs: Path, *extra) -> Path:
    """One tiny training run (configs/smoke.toml on the fixtures, `nerctl train` in process) with `extra`
    options on top; its folder. NERCTL_* variables are ignored, as the config's environment."""
    from typer.testing import CliRunner

    from nerctl.cli import app

    unset = {name: None for name in os.environ if name.startswith("NERCTL_")}
    result = CliRunner().invoke(app, train_args(tiny_model, bio_files, runs / "tiny", *extra), env=unset)
    assert result.exit_code == 0, result.output
    return runs / "tiny"


@pytest.fixture(scope="session")
def trained_run(tiny_model, bio_files, tmp_path_factory) -> Path:
    """One tiny training run (default CRF head, no int8 model: its engine is fp32 LiteRT), shared by the
    evaluate/predict tests."""
    return _tiny_training(tiny_model, bio_files, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def gated_run(tiny_model, bio_files, tmp_path_factory) -> Path:
    """The same training with --int8: the int8 model made at the end and kept only if dev F1 held."""
    return _tiny_training(tiny_model, bio_files, tmp_path_factory.mktemp("gated"), "--int8")


@pytest.fixture(scope="session")
def int8_run(gated_run, bio_files, tmp_path_factory) -> Path:
    """The tiny run with a model.int8.onnx whatever its dev-F1 check decided (engine tests need one)."""
    import shutil

    from nerctl.artifacts.quantize import write_int8_model
    from nerctl.artifacts.rundir import RunDir
    from nerctl.data.formats.bio import read_bio
    from nerctl.inference.tagger import Tagger

    run = tmp_path_factory.mktemp("int8") / "tiny"
    shutil.copytree(gated_run, run)
    if not RunDir(run).int8_onnx.exists():
        write_int8_model(RunDir(run), Tagger.from_run(RunDir(run)).encoder, [s.words for s in read_bio(bio_files["train"])])
    return run
