"""The administrators' console pages (administrators only; anyone else 403, a visitor
the sign-in page): importing spaces or people from a file (``/console/import``,
through ``ikn_service.spaces.import_file`` as ``ikn import``: the whole file checked,
then written in one transaction or not at all, every problem listed with its line)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from aiohttp import web

from ikn_core.io import ImportProblem, ImportRejectedError
from ikn_service.spaces import FORMATS, import_file
from ikn_store.io import Written
from web.pages import ADMINS, person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
WHAT = ("spaces", "people")


def admin_only(request: web.Request) -> None:
    if person_of(request).role not in ADMINS:
        raise web.HTTPForbidden(reason="Not a page of your role")


def uploaded(form: Any, name: str = "file") -> tuple[str, bytes]:
    """The file the form sent as ``name``: its name and bytes (400 naming the field when
    none was sent)."""
    field = form.get(name)
    if not isinstance(field, web.FileField):
        raise web.HTTPBadRequest(reason=f"{name}: choose a file to send")
    return field.filename or "", field.file.read()


def _import_page(
    request: web.Request,
    *,
    what: str = "spaces",
    written: list[Written] | None = None,
    problems: tuple[ImportProblem, ...] = (),
    refused: str = "",
    status: int = 200,
) -> web.Response:
    response = render(
        request,
        "import.html",
        what=what,
        whats=WHAT,
        written=written,
        problems=problems,
        refused=refused,
    )
    response.set_status(status)
    return response


@routes.get("/console/import")
@signed_in
async def import_form(request: web.Request) -> web.StreamResponse:
    """The form: what to import (spaces or people) and the file (CSV or JSON)."""
    admin_only(request)
    return _import_page(request)


def _format(chosen: str, filename: str) -> str:
    """As ``ikn import``: the form's choice, else the file's extension, else JSON."""
    if chosen in FORMATS:
        return chosen
    if chosen:
        raise web.HTTPBadRequest(reason="format: csv or json")
    suffix = PurePosixPath(filename).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "json"


@routes.post("/console/import")
@signed_in
async def import_upload(request: web.Request) -> web.StreamResponse:
    """Import the file: the counts written, or every problem and nothing written (422)."""
    admin_only(request)
    form = await request.post()
    what = str(form.get("what", ""))
    if what not in WHAT:
        raise web.HTTPBadRequest(reason="what: spaces or people")
    filename, data = uploaded(form)
    fmt = _format(str(form.get("format", "")), filename)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _import_page(request, what=what, refused="not-text", status=422)
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            written = await import_file(conn, "spaces" if what == "spaces" else "people", text, fmt)
    except ImportRejectedError as exc:
        return _import_page(request, what=what, problems=exc.problems, status=422)
    return _import_page(request, what=what, written=written)
