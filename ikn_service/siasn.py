"""Employee master data from BKN's SIASN (behind BKN's WSO2 API gateway).

Two tokens are needed: the gateway's OAuth2 client-credentials token (sent as
``Authorization: Bearer``) and the Keycloak SSO token of the public-siasn realm (sent as
``Auth: bearer``). Field names of the answers are NOT confirmed against BKN's documents
(see docs/integrations.md); they are read in one place, :func:`employee_of`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ikn_core.domain import Role
from ikn_store.people import Person, person_of, upsert_people

SSO_TOKEN_PATH = "/auth/realms/public-siasn/protocol/openid-connect/token"
GATEWAY_TOKEN_PATH = "/oauth2/token"
UNIT_PATH = "/apisiasn/1.0/unor/{unit}/pns"  # UNCONFIRMED path for a unit's employees
HIGHER_ROLES = frozenset({Role.DELEGATE, Role.FACILITY_MANAGER, Role.ADMIN})


class SiasnError(Exception):
    """SIASN refused or failed; the message names what, never a secret."""


@dataclass(frozen=True, slots=True)
class Credentials:
    gateway_url: str
    sso_url: str
    client_id: str
    client_secret: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(gateway_url={self.gateway_url!r}, sso_url={self.sso_url!r})"


@dataclass(frozen=True, slots=True)
class Employee:
    nip: str
    name: str
    unit: str
    position: str
    supervisor_nip: str | None
    active: bool


def employee_of(raw: Mapping[str, Any]) -> Employee:
    """One employee from SIASN's JSON (field names unconfirmed, see docs/integrations.md)."""
    return Employee(
        nip=str(raw["nipBaru"]),
        name=str(raw["nama"]),
        unit=str(raw["unorId"]),
        position=str(raw.get("jabatanNama") or ""),
        supervisor_nip=str(raw["atasanNip"]) if raw.get("atasanNip") else None,
        active="aktif" in str(raw.get("kedudukanPnsNama", "Aktif")).lower(),  # "PPPK Aktif" too
    )


async def _token(session: aiohttp.ClientSession, url: str, data: dict[str, str], auth: str) -> str:
    async with session.post(url, data=data, headers={"Authorization": auth}) as resp:
        if resp.status in (400, 401, 403):
            raise SiasnError(f"token refused by {url} (HTTP {resp.status}): check the credentials")
        if resp.status >= 300:
            raise SiasnError(f"token endpoint {url} failed (HTTP {resp.status})")
        return str((await resp.json())["access_token"])


async def fetch_employees(
    creds: Credentials, units: Iterable[str], timeout_s: float = 30.0
) -> list[Employee]:
    """All employees of ``units`` from SIASN."""
    auth = aiohttp.encode_basic_auth(creds.client_id, creds.client_secret)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        gateway = await _token(
            session,
            creds.gateway_url + GATEWAY_TOKEN_PATH,
            {"grant_type": "client_credentials"},
            auth,
        )
        sso = await _token(
            session,
            creds.sso_url + SSO_TOKEN_PATH,
            {"grant_type": "password", "username": creds.username, "password": creds.password},
            auth,
        )
        headers = {"Authorization": f"Bearer {gateway}", "Auth": f"bearer {sso}"}
        out: list[Employee] = []
        for unit in units:
            url = creds.gateway_url + UNIT_PATH.format(unit=unit)
            async with session.get(url, headers=headers) as resp:
                if resp.status >= 300:
                    raise SiasnError(f"SIASN unit list failed (HTTP {resp.status}) for a unit")
                body = await resp.json()
            out.extend(employee_of(r) for r in body.get("data") or [])
        return out


def people_of(
    employees: list[Employee], agency: str, existing: Mapping[str, Person]
) -> list[Person]:
    """Map active employees to people: supervisors are those named as a supervisor; an
    existing higher role (delegate, facility manager, admin) is kept."""
    bosses = {e.supervisor_nip for e in employees if e.supervisor_nip}
    out = []
    for e in employees:
        if not e.active:
            continue
        old = existing.get(e.nip)
        role = Role.SUPERVISOR if e.nip in bosses else Role.EMPLOYEE
        if old is not None and old.role in HIGHER_ROLES:
            role = old.role
        home = old.home_building_id if old else None
        out.append(Person(e.nip, e.name, agency, e.unit, role, home))
    return out


@dataclass(frozen=True, slots=True)
class Changes:
    added: list[Person]
    changed: list[tuple[Person, list[str]]]
    deactivated: list[str]


def diff(new: list[Person], existing: Mapping[str, Person], agency: str) -> Changes:
    """What a sync would do: added, changed (with field names), deactivated ids."""
    seen = {p.id for p in new}
    added = [p for p in new if p.id not in existing]
    changed = []
    for p in new:
        old = existing.get(p.id)
        if old is not None and old != p:
            fields = [
                f for f in ("name", "agency", "unit", "role") if getattr(old, f) != getattr(p, f)
            ]
            changed.append((p, fields))
    gone = sorted(i for i, p in existing.items() if i not in seen and p.agency == agency)
    return Changes(added, changed, gone)


async def sync(
    conn: Any, employees: list[Employee], agency: str, today: Any, dry_run: bool = False
) -> Changes:
    """Upsert ``agency``'s people from ``employees``; those no longer returned (or no longer
    active) get ``employment_end = today`` (never deleted). ``dry_run``: report only."""
    rows = await conn.fetch(
        "SELECT * FROM people WHERE agency = $1 AND employment_end IS NULL", agency
    )
    existing = {r["id"]: person_of(r) for r in rows}
    new = people_of(employees, agency, existing)
    changes = diff(new, existing, agency)
    if dry_run:
        return changes
    async with conn.transaction():
        await upsert_people(conn, changes.added + [p for p, _ in changes.changed])
        await conn.execute(  # someone who left and came back is active again
            "UPDATE people SET employment_end = NULL WHERE id = ANY($1::text[])",
            [p.id for p in changes.added],
        )
        await conn.execute(
            "UPDATE people SET employment_end = $2 WHERE id = ANY($1::text[])",
            changes.deactivated,
            today,
        )
    return changes


def summary(changes: Changes) -> str:
    """Counts only (no personal data), for the log and the command's last line."""
    return (
        f"{len(changes.added)} added, {len(changes.changed)} changed, "
        f"{len(changes.deactivated)} deactivated"
    )
