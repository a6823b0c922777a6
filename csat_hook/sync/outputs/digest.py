"""What an output would write, as a digest: equal digests mean equal contents.

The sync keeps the digest of the last report each output wrote (``sync_outputs``), so a run
whose report did not change writes nothing (a periodic sync with no new answer spends no
write request).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def contents_digest(parts: Iterable[bytes]) -> str:
    """A digest of the encoded requests an output would send, in order (each part's length
    is hashed before it, so no two lists of parts share their concatenation)."""
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
