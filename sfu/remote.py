"""A signaling node's RPC connection to one SFU worker process (:mod:`sfu.rpc`).

:class:`RemoteWorker` sends calls and matches their answers, hands each pushed subscribe offer
to the callback registered for its peer, and reports once, through ``on_lost``, when the
connection is gone: closed, refused, or a call unanswered within ``call_timeout_s`` (a worker
that cannot answer is treated as dead, since its media cannot be trusted either). Each
connection presents a token minted for it (``Authorization: Bearer``); a worker that refuses it
(HTTP 401) is reported like one that cannot be reached, with the reason in the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from . import rpc
from .transport import MediaError

log = logging.getLogger(__name__)

SendOffer = Callable[[str, int, dict[str, dict[str, str]]], None]
#: Told a subscribe connection's video layer changes, {producer id: layer} (sfu.congestion).
SendLayers = Callable[[dict[str, str]], None]


class WorkerLost(Exception):
    """The worker's connection is gone (or a call timed out); what it held is lost."""


class WorkerFailed(Exception):
    """The worker answered ``internal``: the call failed there for an unexpected reason."""


class RemoteWorker:
    """One RPC connection.

    Args:
        worker_id: the worker's registered id (part of the URL; another process is refused).
        url: its RPC base URL, ``ws://host:port``.
        on_lost: called once with ``(self, reason)`` when the connection is gone.
        token: mints the bearer token for ``worker_id``, once per :meth:`connect`.
        call_timeout_s: a call unanswered this long loses the connection.
        tls: verifies a ``wss://`` worker's certificate (None: the system's CAs); unused for
            ``ws://``.
    """

    def __init__(
        self,
        worker_id: str,
        url: str,
        on_lost: Callable[[RemoteWorker, str], None],
        *,
        token: rpc.MintToken,
        call_timeout_s: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.url = url
        self.on_lost = on_lost
        self.token = token
        self.call_timeout_s = call_timeout_s
        self.tls = tls
        #: Subscribe offers are handed to these, by the node's peer id.
        self.offers: dict[str, SendOffer] = {}
        #: Video layer changes of subscribe connections go to these, by the node's peer id.
        self.layers: dict[str, SendLayers] = {}
        self.lost = False
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._calls: dict[int, asyncio.Future[Any]] = {}

    async def connect(self, timeout_s: float = 2.0) -> None:
        """Open the connection.

        Raises:
            WorkerLost: it could not be opened within ``timeout_s`` (refused, wrong worker,
                token refused).
        """
        try:
            self._ws = await connect(
                self.url.rstrip("/") + rpc.PATH + self.worker_id,
                additional_headers={"Authorization": rpc.bearer(self.token(self.worker_id))},
                open_timeout=timeout_s,
                compression=None,
                max_size=1 << 20,
                ping_interval=5,
                ping_timeout=5,
                **({"ssl": self.tls} if self.tls and self.url.startswith("wss:") else {}),
            )
        except InvalidStatus as exc:
            self.lost = True
            if exc.response.status_code == 401:
                raise WorkerLost(
                    f"worker {self.worker_id} at {self.url} refused this node's token (HTTP 401): "
                    "the node and the worker need the same --secrets (see the worker's log)"
                ) from exc
            raise WorkerLost(f"worker {self.worker_id} at {self.url}: {exc}") from exc
        except Exception as exc:  # refused, timed out, ...
            self.lost = True
            raise WorkerLost(f"worker {self.worker_id} at {self.url}: {exc!r}") from exc
        self._reader = asyncio.get_running_loop().create_task(self._read(self._ws))

    async def call(self, method: str, **args: Any) -> Any:
        """Call a :class:`sfu.worker.Worker` method on the worker.

        Returns its return value.

        Raises:
            MediaError: the worker refused the request (a protocol error code).
            WorkerFailed: it failed there unexpectedly (``internal``).
            WorkerLost: the connection is gone, or no answer came within the timeout.
        """
        ws = self._ws
        if self.lost or ws is None:
            raise WorkerLost(f"worker {self.worker_id} is lost")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        try:
            await ws.send(rpc.call(call_id, method, args))
            async with asyncio.timeout(self.call_timeout_s):
                return await future
        except TimeoutError:
            self._lose(f"{method} unanswered for {self.call_timeout_s} s")
            raise WorkerLost(f"worker {self.worker_id}: {method} timed out") from None
        except ConnectionClosed as exc:
            self._lose(f"connection closed: {exc}")
            raise WorkerLost(f"worker {self.worker_id}: connection closed") from exc
        finally:
            self._calls.pop(call_id, None)

    async def _read(self, ws: ClientConnection) -> None:
        reason = "connection closed"
        try:
            async for data in ws:
                try:
                    frame = rpc.unpack(data)
                except rpc.RpcFrameError as exc:
                    log.warning("sfu worker %s sent a bad frame: %s", self.worker_id, exc)
                    continue
                self._dispatch(frame)
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc})"
        except Exception as exc:
            reason = f"connection failed: {exc!r}"
        self._lose(reason)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame["t"]
        if kind == "offer":
            send_offer = self.offers.get(str(frame.get("peer")))
            if send_offer is not None:
                send_offer(frame["sdp"], int(frame["version"]), frame["producers"])
            return
        if kind == "layers":
            send_layers = self.layers.get(str(frame.get("peer")))
            if send_layers is not None:
                send_layers(dict(frame["producers"]))
            return
        future = self._calls.get(frame.get("id", -1))
        if future is None or future.done():
            return
        if kind == "result":
            future.set_result(frame.get("value"))
        elif kind == "error":
            code, message = str(frame.get("code")), str(frame.get("message"))
            if code == "internal":
                future.set_exception(WorkerFailed(message))
            else:
                future.set_exception(MediaError(code, message))

    def _lose(self, reason: str) -> None:
        if self.lost:
            return
        self.lost = True
        for future in self._calls.values():
            if not future.done():
                future.set_exception(WorkerLost(f"worker {self.worker_id}: {reason}"))
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())
        self.on_lost(self, reason)

    async def close(self) -> None:
        """Close the connection without reporting it lost (the node is stopping)."""
        self.lost = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
