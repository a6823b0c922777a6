"""Drill: does any one-character edit of a real survey reference still verify?

    python benchmarks/token_tamper_drill.py [--tokens 240] [--seed 7]

Signs references for every combination of helpdesk, dialog and agent lengths it is given
(so the payload's base64 length covers 0, 2 and 3 mod 4), then tries every one-character edit
of each: each position replaced by every base64url character and by characters from outside
the alphabet (``+/=``, whitespace, ``.``, ``%``, Unicode look-alikes, a zero-width space),
each position deleted, every such character inserted at every position, each character
doubled. Each distinct edited string is verified by ``csat_hook.tokens.verify`` and, as the
peer measured in the same run, by the decoder the service shipped before (a2b_base64 with
the padding appended, which ignores the unused low bits of the last character, accepts
``=`` padding and the ``+/`` alphabet). Prints tries and how many verified for both, the old
decoder's worst case (spellings of one survey), and the verification rate of both.
"""

from __future__ import annotations

import argparse
import binascii
import hmac
import itertools
import random
import string
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from csat_hook import tokens

SECRET = "drill-token-secret-0123456789"
ALPHABET = string.ascii_letters + string.digits + "-_"
# Outside the alphabet: the other base64 alphabet, padding, whitespace a paste may carry, the
# separator, and characters that look like alphabet ones (Cyrillic А/о, fullwidth 0, Greek Ο)
# or are invisible.
OUTSIDE = "+/=. \t\n%\u0410\u043e\uff10\u039f\u200b\u00a0"
EDIT_CHARACTERS = ALPHABET + OUTSIDE


def one_character_edits(token: str) -> set[str]:
    """Every distinct string one substitution, deletion, insertion or doubling away."""
    edits: set[str] = set()
    for i, original in enumerate(token):
        edits.add(token[:i] + token[i + 1 :])  # delete
        edits.add(token[:i] + original + token[i:])  # double
        for c in EDIT_CHARACTERS:
            if c != original:
                edits.add(token[:i] + c + token[i + 1 :])  # substitute
    for i in range(len(token) + 1):
        for c in EDIT_CHARACTERS:
            edits.add(token[:i] + c + token[i:])  # insert
    edits.discard(token)
    return edits


def reference_tokens(count: int, seed: int) -> list[str]:
    """``count`` real references over every helpdesk × dialog × agent length combination."""
    rng = random.Random(seed)
    helpdesks = ["x", "hd", "zen", "chatwoot", "helpscout-eu"]
    dialog_lengths = range(1, 13)
    agent_lengths = range(1, 9)
    issued = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    combos = list(itertools.product(helpdesks, dialog_lengths, agent_lengths))
    rng.shuffle(combos)
    out = []
    for n in range(count):
        helpdesk, dialog_length, agent_length = combos[n % len(combos)]
        ref = tokens.SurveyRef(
            helpdesk,
            "".join(rng.choice(string.digits + "-#") for _ in range(dialog_length)),
            "".join(rng.choice(string.ascii_lowercase + "@.|%") for _ in range(agent_length)),
            issued - timedelta(seconds=rng.randrange(10**8)),
            nonce=f"{rng.randrange(36**4):04x}",
        )
        out.append(tokens.sign(SECRET, ref))
    return out


# --- the peer: verify() as shipped before canonical references --------------------------------

_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _old_b64decode(text: str) -> bytes:
    data = text.encode("ascii").translate(_FROM_URLSAFE)
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)


def old_verify(token: str, secrets: Sequence[str]) -> bool:
    """``tokens.verify`` as it was (True where it returned a reference)."""
    token = token.strip()
    if not token or len(token) > tokens.MAX_TOKEN_LENGTH or token.count(".") != 1:
        return False
    encoded_payload, encoded_tag = token.split(".")
    try:
        payload = _old_b64decode(encoded_payload)
        tag = _old_b64decode(encoded_tag)
    except (ValueError, UnicodeEncodeError):
        return False
    if not any(hmac.compare_digest(tag, tokens._tag(s.encode(), payload)) for s in secrets):
        return False
    try:
        fields = [tokens._unescape(f) for f in payload.decode("utf-8").split("|")]
        version, helpdesk, dialog_id, agent, issued, nonce = fields
        issued_at = datetime.fromtimestamp(int(issued, 36), tz=UTC)
    except (ValueError, UnicodeDecodeError, OverflowError):
        return False
    return version == tokens.VERSION and bool(
        tokens.SurveyRef(helpdesk, dialog_id, agent, issued_at, nonce)
    )


new_verify = tokens.verifies  # the product's own check


def drill(
    references: list[str], check: Callable[[str, Sequence[str]], bool]
) -> Iterator[tuple[str, int, int]]:
    """(token, edits tried, edits that verified) per reference."""
    for token in references:
        edits = one_character_edits(token)
        yield token, len(edits), sum(check(edit, [SECRET]) for edit in edits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=240)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    references = reference_tokens(args.tokens, args.seed)
    by_class: dict[int, int] = {}
    for token in references:
        by_class[len(token.split(".")[0]) % 4] = by_class.get(len(token.split(".")[0]) % 4, 0) + 1
    print(
        f"{len(references)} references, payload length mod 4: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(by_class.items()))
        + f"; lengths {min(map(len, references))}-{max(map(len, references))} characters"
    )
    assert all(new_verify(t, [SECRET]) and old_verify(t, [SECRET]) for t in references)
    checks = (("canonical verify (now)", new_verify), ("old decoder (peer)", old_verify))
    for label, check in checks:
        started = time.perf_counter()
        rows = list(drill(references, check))
        seconds = time.perf_counter() - started
        tried = sum(r[1] for r in rows)
        verified = sum(r[2] for r in rows)
        print(
            f"{label}: {len(rows)} tokens × their one-character edits = {tried:,} tried, "
            f"{verified:,} verified ({tried / seconds:,.0f} verifications/s)"
        )
        for remainder in sorted(by_class):
            of_class = [r for r in rows if len(r[0].split(".")[0]) % 4 == remainder]
            print(
                f"  payload length {remainder} mod 4: {sum(r[2] for r in of_class):,} verified; "
                f"up to {1 + max(r[2] for r in of_class)} spellings of one survey one edit "
                "apart verify"
            )
    # The sync verifies every new answer's reference: the cost of a valid one, both ways,
    # alternated, the best of fifteen (the machine may be shared).
    valid = (references * (1 + 20_000 // len(references)))[:20_000]
    best = {label: float("inf") for label, _ in checks}
    for _ in range(15):
        for label, check in checks:
            started = time.perf_counter()
            assert all(check(token, [SECRET]) for token in valid)
            best[label] = min(best[label], time.perf_counter() - started)
    for label, seconds in best.items():
        print(f"{label}: a valid reference in {seconds / len(valid) * 1e6:.2f} µs (best of 15)")


if __name__ == "__main__":
    main()
