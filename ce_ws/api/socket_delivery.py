"""How much of what the server sent a TCP peer has taken, asked of the kernel.

A reader that stops reading leaves what it was sent in the socket's buffers
(the kernel's send queue, then asyncio's), while the sends themselves may
have returned long ago: only the kernel knows whether the peer still takes
bytes. `tcpi_bytes_acked` (Linux 4.1 and later) counts what the peer
acknowledged; it stops once the peer's receive buffer is full.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from typing import Any

from ce_ws.runs.fanout import Delivery

#: `struct tcp_info` up to `tcpi_bytes_acked`: eight u8, 24 u32, then the u64 pacing rates.
_BYTES_ACKED = struct.Struct("=8B24I2QQ")


def tcp_delivery(sock: Any) -> Delivery:
    """The peer's progress on `sock`; a socket that is gone (or not TCP) waits for nothing."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _BYTES_ACKED.size)
        queued = struct.unpack(
            "i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
        )[0]
    except (OSError, AttributeError, ValueError):
        return Delivery(waiting=False, taken=0)
    if len(info) < _BYTES_ACKED.size:
        return Delivery(waiting=False, taken=0)
    return Delivery(waiting=queued > 0, taken=_BYTES_ACKED.unpack(info)[-1])
