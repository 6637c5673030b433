"""Output capping: head and tail kept, the middle counted and marked, bytes never break decoding."""

from repoloop.sandbox.output import CappedBuffer


def test_small_output_is_kept_whole():
    b = CappedBuffer(100)
    b.write(b"hello ")
    b.write(b"world")
    assert b.text() == "hello world"
    assert b.cut == 0


def test_large_output_keeps_head_and_tail_with_marker():
    b = CappedBuffer(20)
    for i in range(1000):
        b.write(f"{i:05d}\n".encode())
    text = b.text()
    assert text.startswith("00000\n0000")  # first 10 bytes
    assert text.endswith("\n00998\n00999\n"[-10:])  # last 10 bytes
    assert b.total == 6000
    assert b.cut == 6000 - 20
    assert "5980 bytes cut" in text


def test_tail_follows_chunk_boundaries():
    b = CappedBuffer(10)
    b.write(b"abcde")
    b.write(b"X" * 100)
    b.write(b"12345")
    assert b.head == b"abcde"
    assert bytes(b.tail) == b"12345"
    assert b.cut == 100


def test_binary_and_split_utf8_decode_with_replacement():
    b = CappedBuffer(1000)
    b.write(b"\xff\xfe\x00ok ")
    b.write("é".encode()[:1])  # half a character
    text = b.text()
    assert "ok" in text and "\ufffd" in text
