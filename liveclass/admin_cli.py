"""``liveclass admin``: the admin API (signaling/admin.py) from a shell.

    liveclass admin --url http://127.0.0.1:8080 rooms
    liveclass admin participants ROOM
    liveclass admin end ROOM [--reason TEXT]
    liveclass admin remove ROOM IDENTITY [--reason TEXT]

The token comes from ``--admin-token-file`` or ``LIVECLASS_ADMIN_TOKEN`` (as the server's). Prints
the API's JSON answer; exits 0 on success, 1 when the server refused or could not be reached, 2
on a configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

from .config import ADMIN_OPTIONS, ConfigError, Option, add_options, admin_token, resolve

URL = Option("url", str, "http://127.0.0.1:8080", "the node's base URL (http:// or https://)")
#: How long one call may take (s).
TIMEOUT_S = 10.0


def add_admin_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``admin`` subcommand and its actions."""
    admin = sub.add_parser(
        "admin", help="the operators' admin API: list rooms, end, remove, drain a worker"
    )
    add_options(admin, (URL, *ADMIN_OPTIONS))
    actions = admin.add_subparsers(dest="action", required=True)
    actions.add_parser("rooms", help="rooms open on the deployment and who is in them")
    participants = actions.add_parser("participants", help="participants of a room")
    participants.add_argument("room")
    end = actions.add_parser("end", help="end a room's session (as its teacher would)")
    end.add_argument("room")
    end.add_argument("--reason", default="")
    remove = actions.add_parser("remove", help="remove a participant (as staff would)")
    remove.add_argument("room")
    remove.add_argument("identity")
    remove.add_argument("--reason", default="")
    drain = actions.add_parser(
        "drain-worker",
        help="take an SFU worker out of placement: no new room; its rooms stay until they end",
    )
    drain.add_argument("worker_id")
    drain.add_argument("--undo", action="store_true", help="put it back into placement")
    admin.set_defaults(func=cmd_admin)


def api_path(args: argparse.Namespace) -> str:
    """The admin API path (and query) for the parsed action."""
    if args.action == "rooms":
        return "/admin/rooms"
    if args.action == "drain-worker":
        undo = "?undo=1" if args.undo else ""
        return f"/admin/workers/{quote(args.worker_id, safe='')}/drain{undo}"
    room = quote(args.room, safe="")
    if args.action == "participants":
        return f"/admin/rooms/{room}/participants"
    query = {"reason": args.reason}
    if args.action == "remove":
        query["identity"] = args.identity
    return f"/admin/rooms/{room}/{args.action}?{urlencode(query)}"


def cmd_admin(args: argparse.Namespace) -> int:
    try:
        values = resolve(args, (URL, *ADMIN_OPTIONS))
        token = admin_token(values)
    except ConfigError as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 2
    if not token:
        print("liveclass: the admin token is needed (--admin-token-file)", file=sys.stderr)
        return 2
    url = str(values["url"]).rstrip("/") + api_path(args)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        print(
            f"liveclass: {exc.code}: {exc.read().decode(errors='replace').strip()}", file=sys.stderr
        )
        return 1
    except OSError as exc:
        print(f"liveclass: cannot reach {values['url']}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(body), indent=2))
    return 0
