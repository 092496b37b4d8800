"""The BIO reader: both formats, encodings, and errors that name file and line."""
import pytest

from nerctl.data.formats.bio import read_bio
from nerctl.core.errors import InputError
from conftest import write_file


def test_reads_mit_format_sentences_and_lines(tmp_path):
    path = write_file(tmp_path, b"O\twhat\nB-ACTOR\tbruce\nI-ACTOR\twillis\n\nB-TITLE\tjaws\n", "data.bio")
    sentences = read_bio(path)
    assert [s.words for s in sentences] == [("what", "bruce", "willis"), ("jaws",)]
    assert [s.tags for s in sentences] == [("O", "B-ACTOR", "I-ACTOR"), ("B-TITLE",)]
    assert [s.line for s in sentences] == [1, 5]


def test_reads_conll_format_tag_in_last_column(tmp_path):
    path = write_file(tmp_path, b"-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n", "data.bio")
    (sentence,) = read_bio(path)
    assert sentence.words == ("EU", "rejects")
    assert sentence.tags == ("B-ORG", "O")


def test_bom_crlf_and_trailing_spaces_are_tolerated(tmp_path):
    path = write_file(tmp_path, "\ufeffO\twhat  \r\nB-TITLE\tjaws\r\n\r\n\r\nO\tok\r\n".encode("utf-8"), "data.bio")
    sentences = read_bio(path)
    assert [s.words for s in sentences] == [("what", "jaws"), ("ok",)]


def test_explicit_format_overrides_detection(tmp_path):
    # "O O" could be either format; forcing conll reads the tag from the last column.
    path = write_file(tmp_path, b"B-X O\n", "data.bio")
    assert read_bio(path, "conll")[0].tags == ("O",)
    assert read_bio(path, "mit")[0].tags == ("B-X",)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"O\twhat\nB-TITLE\n", "data.bio:2: expected a word and a tag"),
        (b"O\twhat\nX-FOO\tjaws\n", "data.bio:2: 'X-FOO' is not a tag"),
        (b"what\tjaws\n", "data.bio: cannot tell the format"),
        (b"O\twhat\n\xff\xfe\tbad\n", "data.bio:2: not valid UTF-8"),
        (b"O\twhat\n\x00\x01\x02\n", "data.bio:2: NUL byte"),
        (b"", "data.bio: no sentences found"),
        (b"\n\n  \n", "data.bio: no sentences found"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message):
    with pytest.raises(InputError) as err:
        read_bio(write_file(tmp_path, content, "data.bio"))
    assert message in str(err.value)


def test_bad_tag_in_forced_format_names_the_line(tmp_path):
    path = write_file(tmp_path, b"O\twhat\n\nb-title\tjaws\n", "data.bio")
    with pytest.raises(InputError, match=r"data.bio:3: 'b-title' is not a tag"):
        read_bio(path, "mit")


def test_missing_path_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_bio(tmp_path / "nope.bio")
    with pytest.raises(InputError, match="is a directory"):
        read_bio(tmp_path)
