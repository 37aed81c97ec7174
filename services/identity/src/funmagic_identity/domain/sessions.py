"""Rules of a session's refresh tokens. Pure: no I/O.

A refresh rotates the token: the old one is retired and its successor issued. A retired token that comes
back is normally a leak (someone else holds a copy) and ends the session. Tabs of one browser share the
refresh cookie, though, and when two of them find the access token expired together they both refresh with
it: one rotates, the other arrives an instant later with the token just retired. That one is superseded, not
leaked — its tab gets the new cookies from the winner's answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["REFRESH_SUPERSEDED_WITHIN", "reuse_is_a_leak"]

# How long after a rotation its retired token still counts as a concurrent refresh of another tab.
REFRESH_SUPERSEDED_WITHIN = timedelta(seconds=30)


def reuse_is_a_leak(*, retired_at: datetime, last_rotation_at: datetime, now: datetime) -> bool:
    """A retired refresh token used again is a leak unless it is the one the session's last rotation
    retired (its successor not used yet) and that rotation was moments ago."""
    superseded = retired_at == last_rotation_at and now - retired_at <= REFRESH_SUPERSEDED_WITHIN
    return not superseded
