"""Syslog over a byte stream (RFC 6587): cut the stream into messages.

Two framings exist. Octet counting ("LEN SP MSG", also what RFC 5425 mandates
over TLS) is transparent: a message may hold any octet. Non-transparent framing
ends each message with LF. The framing is chosen once per connection from its
first octet: a digit means octet counting, because a non-transparent syslog
message starts with "<" (its PRI).

Non-transparent mode also accepts NUL as a trailer. Some legacy senders end
messages with NUL instead of LF (RFC 6587 section 3.4.2 mentions them); a
syslog message never legitimately holds a NUL, so treating it as a trailer
costs nothing, whereas refusing it would turn such a sender's whole stream into
one over-long message and drop the connection. Empty messages (a blank line, a
NUL after a LF) carry nothing and are skipped.

The decoder is pure and incremental: feed it whatever each recv() returned.
"""

from __future__ import annotations

from typing import Final

OCTET_COUNTING: Final = "octet-counting"
NON_TRANSPARENT: Final = "non-transparent"
DEFAULT_MAX_MESSAGE: Final = 64 * 1024

_DIGITS: Final = frozenset(b"0123456789")


class FramingError(ValueError):
    """The stream cannot be cut into messages; the connection must be closed.

    `offset` is the stream position (octets from the first one received) where
    the fault lies. `frames` holds the messages completed by the failing
    `feed()` call before the fault: they are good and must still be delivered.
    """

    def __init__(self, reason: str, offset: int, frames: list[bytes] | None = None) -> None:
        super().__init__(f"{reason} (at stream offset {offset})")
        self.reason = reason
        self.offset = offset
        self.frames: list[bytes] = frames if frames is not None else []


class FrameDecoder:
    """Incremental RFC 6587 decoder for one connection."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        if max_message < 1:
            raise ValueError(f"max_message must be at least 1, got {max_message}")
        self.max_message = max_message
        self.mode: str | None = None
        self._max_digits = len(str(max_message))
        self._buf = b""
        # Stream offset of self._buf[0], for error positions.
        self._offset = 0
        self._failed: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets held that do not yet form a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Messages completed by `data`, in stream order; raises FramingError on a fault."""
        if self._failed is not None:
            raise FramingError(f"decoder already failed: {self._failed.reason}", self._failed.offset)
        if not data:
            return []
        if self.mode is None:
            self.mode = OCTET_COUNTING if data[0] in _DIGITS else NON_TRANSPARENT
        try:
            if self.mode == OCTET_COUNTING:
                return self._feed_counted(data)
            return self._feed_lines(data)
        except FramingError as exc:
            self._failed = exc
            self._buf = b""
            raise

    def close(self) -> list[bytes]:
        """End of stream: the last message if the framing lets the close end it.

        A non-transparent message needs no trailer when the sender closes the
        connection after it. An octet-counted frame cut short is a fault.
        """
        if self._failed is not None or not self._buf:
            self._buf = b""
            return []
        tail, self._buf = self._buf, b""
        if self.mode == OCTET_COUNTING:
            raise FramingError(f"stream ended inside an octet-counted frame ({len(tail)} octets pending)", self._offset)
        return self._finish_lines([tail], self._offset)

    def _feed_counted(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        frames: list[bytes] = []
        pos = 0
        size = len(buf)
        max_digits = self._max_digits
        while pos < size:
            sp = buf.find(b" ", pos, pos + max_digits + 1)
            if sp < 0:
                head = buf[pos : pos + max_digits + 1]
                if not head.isdigit() or head[0] == 0x30:
                    raise self._bad_count(buf, pos, frames)
                if len(head) > max_digits:
                    raise FramingError(
                        f"octet count longer than {max_digits} digits exceeds the maximum message size "
                        f"{self.max_message}",
                        self._offset + pos,
                        frames,
                    )
                break
            head = buf[pos:sp]
            if not head.isdigit() or head[0] == 0x30:
                raise self._bad_count(buf, pos, frames)
            length = int(head)
            if length > self.max_message:
                raise FramingError(
                    f"octet count {length} exceeds the maximum message size {self.max_message}",
                    self._offset + pos,
                    frames,
                )
            end = sp + 1 + length
            if end > size:
                break
            frames.append(buf[sp + 1 : end])
            pos = end
        self._buf = buf[pos:]
        self._offset += pos
        return frames

    def _bad_count(self, buf: bytes, pos: int, frames: list[bytes]) -> FramingError:
        seen = buf[pos : pos + 16]
        if seen[:1] == b"0":
            return FramingError(f"octet count starts with 0: {seen!r}", self._offset + pos, frames)
        return FramingError(f"expected an octet count (digits, then a space), got {seen!r}", self._offset + pos, frames)

    def _feed_lines(self, data: bytes) -> list[bytes]:
        if b"\0" in data:
            data = data.replace(b"\0", b"\n")
        buf = self._buf + data if self._buf else data
        lines = buf.split(b"\n")
        tail = lines.pop()
        if len(tail) > self.max_message:
            raise FramingError(
                f"no LF within the maximum message size {self.max_message}",
                self._offset + len(buf) - len(tail),
                self._finish_lines(lines, self._offset),
            )
        start = self._offset
        self._buf = tail
        self._offset += len(buf) - len(tail)
        return self._finish_lines(lines, start)

    def _finish_lines(self, lines: list[bytes], start: int) -> list[bytes]:
        frames: list[bytes] = []
        pos = start
        max_message = self.max_message
        for line in lines:
            step = len(line) + 1
            if line[-1:] == b"\r":
                line = line[:-1]
            if len(line) > max_message:
                raise FramingError(
                    f"message of {len(line)} octets exceeds the maximum message size {max_message}", pos, frames
                )
            if line:
                frames.append(line)
            pos += step
        return frames
