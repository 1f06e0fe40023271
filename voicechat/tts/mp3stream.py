"""MP3 that arrives from a service in pieces of any size, regrouped into whole frames.

The bytes of the frames pass through unchanged; what is dropped is what must not reach a
turn's stream: an ID3v2 tag at the start, a Xing/Info/VBRI header frame (it describes one
file, not the turn), bytes that are no frame, and an incomplete last frame.
"""

from __future__ import annotations

from voicechat.pipeline.audio import frame_at

_ID3_HEADER = 10


def _id3_size(head: bytes) -> int:
    """The size of the ID3v2 tag ``head`` starts with (its 10-byte header read)."""
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    footer = _ID3_HEADER if head[5] & 0x10 else 0
    return _ID3_HEADER + size + footer


def is_info_frame(frame: bytes) -> bool:
    """A Xing/Info (LAME, ffmpeg) or VBRI (Fraunhofer) header frame: silence with file data."""
    return b"Xing" in frame[4:40] or b"Info" in frame[4:40] or frame[36:40] == b"VBRI"


class FrameAligner:
    """``feed`` bytes as they arrive, get back the whole frames they complete."""

    def __init__(self) -> None:
        self._buf = b""
        self._started = False  # the first audio frame was seen
        self.sample_rate: int | None = None  # of the first audio frame
        self.dropped = 0  # bytes that were no audio frame

    def feed(self, data: bytes) -> bytes:
        buf = self._buf + data
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            if not self._started and buf[pos : pos + 3] == b"ID3":
                if len(buf) - pos < _ID3_HEADER:
                    break
                size = _id3_size(buf[pos : pos + _ID3_HEADER])
                if len(buf) - pos < size:
                    break
                pos += size
                self.dropped += size
                continue
            frame = frame_at(buf, pos)
            if frame is None or (self._started and frame.sample_rate != self.sample_rate):
                pos += 1  # not a frame here (or a false sync inside garbage): resync
                self.dropped += 1
                continue
            if len(buf) - pos < frame.length:
                break
            chunk = buf[pos : pos + frame.length]
            pos += frame.length
            if not self._started and is_info_frame(chunk):
                self.dropped += frame.length
                continue
            self._started = True
            self.sample_rate = frame.sample_rate
            out.append(chunk)
        self._buf = buf[pos:]
        return b"".join(out)

    def flush(self) -> None:
        """The stream ended: whatever is left is no whole frame and is dropped."""
        self.dropped += len(self._buf)
        self._buf = b""
