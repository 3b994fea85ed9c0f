"""The OpenAPI 3.1 document of the JSON API, served at ``/api/openapi.json``.

Written by hand next to the routes; a test checks that every ``/api/v1`` route
the app registers is described here and nothing else is."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ivr.web.state import PUBLIC, Route

logger = logging.getLogger(__name__)

_JSON = {"application/json": {"schema": {"type": "object"}}}
_LIST = {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}


def _op(summary: str, roles: str, *, body: bool = False, many: bool = False,
        params: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"Roles: {roles}.",
        "responses": {
            "200": {"description": "OK", "content": _LIST if many else _JSON},
            "401": {"description": "not signed in"},
            "403": {"description": "role not allowed, or missing CSRF token"},
        },
    }
    if params:
        operation["parameters"] = [
            {"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
            for p in params
        ]
    if body:
        operation["requestBody"] = {"content": _JSON}
    return operation


def _path_params(path: str) -> list[dict[str, Any]]:
    return [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in path.split("/")
        if part.startswith("{")
    ]


FILTERS = ("from", "to", "area", "topic", "status", "number", "agent", "code")

PATHS: dict[str, dict[str, dict[str, Any]]] = {
    "/api/v1/me": {"get": _op("The signed-in user and its CSRF token", "any")},
    "/api/v1/wallboard": {"get": _op("Live queues, callers, agents, alerts", "supervisor, admin")},
    "/api/v1/agents/{agent_id}/{action}": {
        "post": _op("Pause, unpause or log off an agent (action)", "supervisor, admin", body=True)
    },
    "/api/v1/spy": {
        "post": _op(
            "Listen, whisper or barge in: {agent_id, mode, phone}", "supervisor, admin", body=True
        )
    },
    "/api/v1/stats": {
        "get": _op(
            "Statistics for a period; deadlines: cases on time, late, open within and "
            "past the deadline per unit, per ward (areas) and per topic and in total, "
            "with the on-time rate",
            "supervisor, admin",
            params=("from", "to"),
        )
    },
    "/api/v1/stats/monthly": {
        "get": _op(
            "The on-time report of the cases received in a month (month: YYYY-MM, default "
            "the last one) per unit, ward and topic; hotline: one hotline's (a hotline's "
            "supervisor always gets theirs)",
            "supervisor, admin",
            params=("month", "hotline"),
        )
    },
    "/api/v1/agent": {"get": _op("The agent's own queues and state", "agent")},
    "/api/v1/agent/{action}": {
        "post": _op("login, logout, pause {reason}, unpause", "agent", body=True)
    },
    "/api/v1/calls": {"get": _op("Search calls", "any", many=True, params=FILTERS)},
    "/api/v1/calls/{uniqueid}": {"get": _op("One call with recordings and transcript", "any")},
    "/api/v1/callers/{number}": {"get": _op("A caller's earlier calls and open cases", "any")},
    "/api/v1/cases": {
        "get": _op(
            "Search cases (q: words in summary or transcript)",
            "any",
            many=True,
            params=(*FILTERS, "q"),
        ),
        "post": _op("Open a case", "any", body=True),
    },
    "/api/v1/cases/{code}": {
        "get": _op("One case with history", "any"),
        "post": _op("Update: summary, topic/severity, unit, status with note", "any", body=True),
    },
    "/api/v1/cases/{code}/hold": {
        "post": _op(
            "Set or release legal hold: {hold: true|false, reason}", "supervisor, admin", body=True
        )
    },
    "/api/v1/cases/{code}/consent": {
        "post": _op(
            "Record the citizen's consent to publication: {consent: true|false, note}",
            "agent, supervisor, admin",
            body=True,
        )
    },
    "/api/v1/cases/{code}/publish": {
        "post": _op(
            "Publish an answered case with consent: {title, text, answer} (400 with the reason"
            " otherwise); returns its public id",
            "supervisor, admin",
            body=True,
        )
    },
    "/api/v1/cases/{code}/unpublish": {
        "post": _op("Take a case off the public page", "supervisor, admin", body=True)
    },
    "/api/v1/knowledge": {
        "get": _op(
            "Search the knowledge base (q: words, accents optional; title matches first)",
            "any",
            many=True,
            params=("q", "topic"),
        ),
        "post": _op(
            "Add an article {title, summary, documents, fees, place, processing_time, "
            "legal_basis, topic, hotline_id, published}",
            "supervisor, admin",
            body=True,
        ),
    },
    "/api/v1/knowledge/{article_id}": {
        "get": _op("One article", "any"),
        "post": _op(
            "Update an article (published false unpublishes it)", "supervisor, admin", body=True
        ),
    },
    "/api/v1/cases/{code}/knowledge-answer": {
        "post": _op(
            "Answer from the knowledge base and close: {article_id, answer (excerpt)}",
            "any",
            body=True,
        )
    },
    "/api/v1/cases/{code}/forwards": {
        "get": _op("The case's forwards with their history", "any", many=True),
        "post": _op(
            "Forward to units: {units: [{unit_code, working_days, share_transcript, "
            "share_recording, note} or a unit code]}",
            "any",
            body=True,
        ),
    },
    "/api/v1/cases/{code}/final-answer": {
        "get": _op("The final answer prefilled from the units' answers", "any"),
        "post": _op(
            "Approve the final answer {answer, close}: the citizen's SMS, then closed",
            "supervisor, admin",
            body=True,
        ),
    },
    # The written channels in the console (issue 14, ivr/web/written_work.py).
    "/api/v1/written-work": {
        "get": _op(
            "Open cases from SMS, email, Zalo, the web form and Open311, with counts per "
            "channel (order: due or newest)",
            "any",
            params=("channel", "order"),
        )
    },
    "/api/v1/written-work/counts": {
        "get": _op("Open written cases per channel, of the user's hotlines", "any")
    },
    "/api/v1/cases/{code}/thread": {
        "get": _op("The case's messages both ways (delivery status) and attachments", "any")
    },
    "/api/v1/cases/{code}/replies": {
        "post": _op("Reply to the citizen on the case's channel: {text}", "any", body=True)
    },
    "/api/v1/forwards": {"get": _op("The unit user's forwards", "unit", many=True)},
    "/api/v1/forwards/{forward_id}": {
        "get": _op("One forward with the case as the unit may read it", "any, unit")
    },
    "/api/v1/forwards/{forward_id}/{action}": {
        "post": _op(
            "received, in_progress, answer {answer, attachment_ids}, return {reason}, "
            "extension {days, reason}",
            "unit, supervisor, admin",
            body=True,
        )
    },
    "/api/v1/forwards/{forward_id}/attachments": {
        "post": _op(
            "Upload a file for the answer (multipart field 'file'); gives its id",
            "unit, supervisor, admin",
            body=True,
        )
    },
    "/api/v1/attachments/{attachment_id}": {
        "get": _op("Download an attachment (to who may read its forward)", "any, unit")
    },
    "/api/v1/forwards/{forward_id}/extension/{decision}": {
        "post": _op(
            "grant {due_date, note} or refuse {note} an extension", "supervisor, admin", body=True
        )
    },
    "/api/v1/wallboard/overdue-forwards": {
        "get": _op(
            "Open forwards escalated past their deadline, of the user's hotlines",
            "supervisor, admin",
            many=True,
        )
    },
    "/api/v1/users": {
        "get": _op("Users", "admin", many=True),
        "post": _op("Add a user {username, password, role, agent_id}", "admin", body=True),
    },
    "/api/v1/audit": {
        "get": _op(
            "The audit log, newest first",
            "admin",
            many=True,
            params=("actor", "action", "from", "to"),
        )
    },
    "/api/v1/config": {
        "get": _op("The config file's text, and whether this process can apply it", "admin"),
        "post": _op(
            "Check, save and apply a new config text {text, base}; 422 lists each problem with "
            "file, line and field; 409 when the file changed since base (the GET's)",
            "admin",
            body=True,
        ),
    },
    "/api/v1/config/changes": {
        "get": _op(
            "The config changes made in the console, newest first: who, when, why, what",
            "supervisor",
            many=True,
        )
    },
    "/api/v1/config/changes/apply": {
        "post": _op(
            "Apply a previewed config change {token, reason}; 409 when the config changed "
            "since the preview, 410 when the preview expired",
            "supervisor",
            body=True,
        )
    },
    "/api/v1/jobs": {
        "get": _op(
            "Transcription jobs not done, failed first with the reason", "supervisor", many=True
        )
    },
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, operations in PATHS.items():
        paths[path] = {}
        for method, operation in operations.items():
            paths[path][method] = {**operation, "parameters": [
                *_path_params(path), *operation.get("parameters", [])]}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hotline console API",
            "version": "1",
            "description": "Session cookie from POST /login; every POST needs the "
            "X-CSRF-Token header (GET /api/v1/me returns it).",
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "hotline_session"}
            }
        },
        "security": [{"session": []}],
        "paths": paths,
    }


async def serve_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


ROUTES = [Route("GET", "/api/openapi.json", serve_openapi, PUBLIC, "openapi")]
