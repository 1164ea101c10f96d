"""Reading a user's data file: encodings and compression handled, bad bytes named by file and line."""

import pytest


def test_latin1_gzip_and_lone_surrogates_name_the_file_and_line(tmp_path):
    import gzip

    from midalign.data import ContrastiveDataMode
    from midalign.data.jsonl import DataFormatError, read_rows

    latin = tmp_path / "latin.json"
    latin.write_bytes('{"prefix": "a", "text": "b"}\n{"prefix": "caf\xe9", "text": "b"}\n'.encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin.json:2: not UTF-8 \(byte 0xe9"):
        read_rows(str(latin), ContrastiveDataMode.TASK.fields)
    gz = tmp_path / "rows.json"
    gz.write_bytes(gzip.compress(b'{"prefix": "a", "text": "b"}\n'))
    with pytest.raises(DataFormatError, match="rows.json: a gzip file"):
        read_rows(str(gz), ContrastiveDataMode.TASK.fields)
    sur = tmp_path / "sur.json"
    sur.write_text('{"prefix": "a", "text": "b"}\n{"prefix": "x\\ud800y", "text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"sur.json:2: field 'prefix' holds a lone surrogate"):
        read_rows(str(sur), ContrastiveDataMode.TASK.fields)
