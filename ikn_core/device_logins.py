"""Device logins: a file of ``device_id:password`` lines (mode 0600).

How the simulator logs each simulated device in with that device's own broker account,
as a real device does: the broker binds each client id to its user name, so one account
shared by every simulated device would make them evict each other. ``ikn seed
--sim-logins FILE`` and ``ikn demo`` write the file; ``IKN_SIM_LOGINS_FILE`` names
it to ``ikn sim``. Errors name the line, never a password.
"""

from __future__ import annotations

from collections.abc import Mapping


def parse(text: str) -> dict[str, str]:
    """The logins of a file's text (blank lines and ``#`` comments skipped)."""
    logins: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        device, sep, password = line.partition(":")
        if not sep or not device or not password:
            raise ValueError(f"line {number}: expected device_id:password (value not shown)")
        if device in logins:
            raise ValueError(f"line {number}: {device!r} a second time")
        logins[device] = password
    return logins


def render(logins: Mapping[str, str]) -> str:
    for device in logins:
        if not device or ":" in device or "\n" in device or "\n" in logins[device]:
            raise ValueError(f"device id {device!r} cannot go in a logins file")
    return "".join(f"{device}:{logins[device]}\n" for device in sorted(logins))


def read(path: str) -> dict[str, str]:
    """``parse`` of a file; ``ValueError`` if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read it: {exc}") from None
    return parse(text)
