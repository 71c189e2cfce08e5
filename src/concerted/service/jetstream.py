"""The intake log on a NATS JetStream server: ``log = "nats://127.0.0.1:4222"``.

Three file-backed streams on the server, named from a prefix (``concerted`` unless
the URL's path gives another, ``nats://host:4222/guard2``):

* ``CONCERTED_REPORTS``, subjects ``concerted.r.<target>``: the reports, each on the
  subject of its target (a hash of platform and target id), so that one target's
  reports stay in order on one subject, the unit JetStream orders, filters and places
  by. The log's offset of a report is its stream sequence. Each message carries
  ``Nats-Msg-Id``, a hash of ``(platform, report_id)``, so a repeat published inside
  the server's duplicate window is refused by the server itself;
* ``CONCERTED_INDEX``, subjects ``concerted.i.<key>``, one message a subject: the
  durable index from ``(platform, report_id)`` to the offset it was first stored at.
  The duplicate window is bounded (two minutes); the index is not: a repeat a year
  later is answered from it, never stored again. ``concerted.i._hwm`` holds the last
  offset the index covers;
* ``CONCERTED_OUTCOMES``, subjects ``concerted.o.<key>``: the decisions in arrival
  order (the decision number is the stream sequence), the latest of a report being
  the last message on its subject.

A report is published before its index entry, so a crash between the two leaves a
report the index misses: opening the log repairs that (it indexes every report after
``_hwm``, and deletes a report whose key the index already gives to an earlier
offset, which only a repeat outside the duplicate window can cause). Nothing is
acknowledged before the server acknowledged every message of the append.

Durability is the server's: a single server writes each message to its store before
acknowledging it, which survives the crash of this process or of the server's; to
survive the loss of a machine run JetStream clustered and give ``?replicas=3``
(acknowledged once a majority has it).

The client, ``nats-py``, is asynchronous; the log runs its own event loop in a thread
and its blocking calls wait on it (the service calls them off its event loop). It is
the ``nats`` extra: ``pip install 'concerted[nats]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from concerted.errors import ConfigError, StoreError
from concerted.service.base import Entry, Outcome, Record, records_of

__all__ = ["JetStreamLog", "NatsAddress"]

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[Any]).decode
_OUTCOMES = ("upheld", "rejected")
#: Seconds one call to the server may take before the log counts it as failed.
_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class NatsAddress:
    """Where the log is: the server's URL, the name prefix and the stream replicas.

    >>> NatsAddress.parse("nats://127.0.0.1:4222/guard2?replicas=3")
    NatsAddress(server='nats://127.0.0.1:4222', prefix='guard2', replicas=3)
    >>> NatsAddress.parse("nats://127.0.0.1:4222").stream("reports")
    'CONCERTED_REPORTS'
    """

    server: str
    prefix: str = "concerted"
    replicas: int = 1

    @classmethod
    def parse(cls, url: str) -> NatsAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("nats", "tls") or not parts.hostname:
            raise ConfigError(f"service: log {url!r} is not a nats://host:port URL")
        prefix = parts.path.strip("/") or "concerted"
        if not prefix.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"service: log {url!r}: the prefix is letters, digits, - and _")
        query = parse_qs(parts.query)
        unknown = set(query) - {"replicas"}
        if unknown:
            raise ConfigError(f"service: log {url!r}: unknown option {', '.join(sorted(unknown))}")
        replicas_text = query.get("replicas", ["1"])[-1]
        if replicas_text not in ("1", "3", "5"):
            raise ConfigError(f"service: log {url!r}: replicas is 1, 3 or 5")
        return cls(f"{parts.scheme}://{parts.netloc}", prefix.lower(), int(replicas_text))

    def stream(self, kind: str) -> str:
        return f"{self.prefix}_{kind}".upper().replace("-", "_")

    def subject(self, kind: str, token: str = ">") -> str:
        return f"{self.prefix}.{kind}.{token}"


def _hash(*parts: str) -> str:
    """A subject token for ``parts``: hex, so free of the characters subjects reserve."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()


async def _next(batches: Any) -> Any:
    return await batches.__anext__()


class JetStreamLog:
    """The intake log on the JetStream server at ``url`` (see the module's notes).

    Opening it connects, creates the streams if missing and repairs the index; a
    server that cannot be reached is a :class:`~concerted.errors.StoreError`.
    """

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        try:
            import nats  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise StoreError(
                "the JetStream log needs nats-py: pip install 'concerted[nats]'"
            ) from exc
        self.address = NatsAddress.parse(url)
        self._reports = self.address.stream("reports")
        self._index = self.address.stream("index")
        self._outcomes = self.address.stream("outcomes")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="concerted-nats", daemon=True
        )
        self._thread.start()
        self._closed = False
        try:
            self._call(self._open(connect_timeout))
        except BaseException:
            self._stop_loop()
            raise

    # Plumbing ------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = _TIMEOUT) -> T:
        if self._closed:
            coro.close()
            raise StoreError("the JetStream log is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            future.cancel()
            raise StoreError(f"the JetStream server at {self.address.server} timed out") from exc

    async def _open(self, connect_timeout: float) -> None:
        import nats
        from nats.js import api

        try:
            self._nc = await nats.connect(
                self.address.server,
                connect_timeout=connect_timeout,
                max_reconnect_attempts=3,
                allow_reconnect=True,
            )
        except Exception as exc:
            raise StoreError(
                f"cannot reach the JetStream server at {self.address.server}: {exc}"
            ) from exc
        self._js = self._nc.jetstream(timeout=_TIMEOUT)
        file, r = api.StorageType.FILE, self.address.replicas
        streams = [
            api.StreamConfig(
                name=self._reports,
                subjects=[self.address.subject("r")],
                storage=file,
                num_replicas=r,
                duplicate_window=120.0,
            ),
            api.StreamConfig(
                name=self._index,
                subjects=[self.address.subject("i")],
                storage=file,
                num_replicas=r,
                max_msgs_per_subject=1,
            ),
            api.StreamConfig(
                name=self._outcomes,
                subjects=[self.address.subject("o")],
                storage=file,
                num_replicas=r,
            ),
        ]
        try:
            for config in streams:
                await self._js.add_stream(config)
        except Exception as exc:
            await self._nc.close()
            raise StoreError(f"{self.address.server}: cannot create the streams: {exc}") from exc
        await self._repair()

    async def _last(self, stream: str, subject: str) -> bytes | None:
        from nats.js.errors import NotFoundError

        try:
            msg = await self._js.get_last_msg(stream, subject)
        except NotFoundError:
            return None
        return msg.data or b""

    async def _indexed(self, key: tuple[str, str]) -> int | None:
        data = await self._last(self._index, self.address.subject("i", _hash(*key)))
        return None if data is None else int(data)

    async def _repair(self) -> None:
        """Index every report after ``_hwm``; delete a repeat the index already has."""
        hwm_subject = self.address.subject("i", "_hwm")
        hwm_data = await self._last(self._index, hwm_subject)
        hwm = int(hwm_data) if hwm_data else 0
        last = (await self._js.stream_info(self._reports)).state.last_seq
        if last <= hwm:
            return
        async for batch in self._batches(self._reports, self.address.subject("r"), hwm, 1000):
            for seq, data in batch:
                key = tuple(_decode(data)[:2])
                first = await self._indexed((str(key[0]), str(key[1])))
                if first is None:
                    await self._js.publish(
                        self.address.subject("i", _hash(str(key[0]), str(key[1]))),
                        str(seq).encode(),
                    )
                elif first < seq:
                    await self._js.delete_msg(self._reports, seq)
        await self._js.publish(hwm_subject, str(last).encode())

    async def _batches(
        self, stream: str, subject: str, after: int, chunk: int
    ) -> Any:  # an async iterator of [(seq, data)]
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js import api

        name: str | None = None
        sub = await self._js.pull_subscribe(
            subject,
            stream=stream,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after + 1,
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=60.0,
                mem_storage=True,
            ),
        )
        try:
            info = await sub.consumer_info()
            name = info.name
            pending = info.num_pending
            while pending:
                try:
                    msgs = await sub.fetch(min(chunk, pending), timeout=5)
                except NatsTimeout:
                    return
                if not msgs:
                    return
                pending = msgs[-1].metadata.num_pending
                yield [(m.metadata.sequence.stream, m.data) for m in msgs]
        finally:
            try:
                await sub.unsubscribe()
                if name is not None:
                    await self._js.delete_consumer(stream, name)
            except Exception:  # the consumer expires by itself (inactive_threshold)
                pass

    # The interface ---------------------------------------------------------------------

    def append(self, records: Sequence[Record], outcomes: Sequence[Outcome] = ()) -> list[Entry]:
        for o in outcomes:
            if o.outcome not in _OUTCOMES:
                raise ValueError(f"outcome {o.outcome!r} is not one of {', '.join(_OUTCOMES)}")
        return self._call(self._append(list(records), list(outcomes)))

    def append_new(
        self,
        reports: Sequence[Mapping[str, Any]],
        results: Sequence[bytes],
        outcomes: Sequence[Outcome] = (),
    ) -> Sequence[int]:
        """:meth:`append` of the records these make: each report is a message of its
        own here, so there is nothing to gain from the columns."""
        return [e.offset for e in self.append(records_of(reports, results), outcomes)]

    async def _append(self, records: list[Record], outcomes: list[Outcome]) -> list[Entry]:
        found = await self._lookup([r.key for r in records])
        fresh: dict[tuple[str, str], Record] = {}
        for r in records:
            if r.key not in found and r.key not in fresh:
                fresh[r.key] = r
        acks = []
        for r in fresh.values():
            payload = _payload(r)
            acks.append(
                await self._js.publish_async(
                    self.address.subject("r", _hash(r.platform, r.target_id)),
                    payload,
                    headers={"Nats-Msg-Id": _hash(*r.key)},
                    stream=self._reports,
                )
            )
        stored = await asyncio.gather(*acks)
        index = []
        for r, ack in zip(fresh.values(), stored, strict=True):
            if ack.duplicate:  # in the log already, within the duplicate window
                found[r.key] = await self._entry(ack.seq)
            else:
                found[r.key] = Entry(ack.seq, r)
                index.append(
                    await self._js.publish_async(
                        self.address.subject("i", _hash(*r.key)), str(ack.seq).encode()
                    )
                )
        await asyncio.gather(*index)
        if index:
            top = max(e.offset for e in found.values())
            await self._js.publish(self.address.subject("i", "_hwm"), str(top).encode())
        if outcomes:
            after = (await self._js.stream_info(self._reports)).state.last_seq
            decided = []
            for o in outcomes:
                decided.append(
                    await self._js.publish_async(
                        self.address.subject("o", _hash(o.platform, o.report_id)),
                        _encode([o.platform, o.report_id, o.outcome, o.decided_at, after]),
                        stream=self._outcomes,
                    )
                )
            await asyncio.gather(*decided)
        return [found[r.key] for r in records]

    async def _entry(self, seq: int) -> Entry:
        msg = await self._js.get_msg(self._reports, seq)
        platform, report_id, target_id, report, result = _decode(msg.data or b"[]")
        return Entry(seq, Record(platform, report_id, target_id, report, result))

    async def _lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        unique = list(dict.fromkeys(keys))
        offsets = await asyncio.gather(*(self._indexed(k) for k in unique))
        hits = [(k, seq) for k, seq in zip(unique, offsets, strict=True) if seq is not None]
        entries = await asyncio.gather(*(self._entry(seq) for _, seq in hits))
        return {k: e for (k, _), e in zip(hits, entries, strict=True)}

    def lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        return self._call(self._lookup(list(keys)))

    def _read(self, stream: str, subject: str, after: int, chunk: int) -> Iterator[list[Any]]:
        """Chunks of ``(seq, data)`` of ``stream`` after ``after``, fetched a chunk at a
        time on the log's loop."""
        batches = self._batches(stream, subject, after, chunk)
        try:
            while True:
                try:
                    batch = self._call(_next(batches))
                except StopAsyncIteration:
                    return
                yield batch
        finally:
            if not self._closed:
                self._call(batches.aclose())

    def read(self, after: int = 0, *, chunk: int = 10_000) -> Iterator[Entry]:
        for batch in self._read(self._reports, self.address.subject("r"), after, chunk):
            for seq, data in batch:
                platform, report_id, target_id, report, result = _decode(data)
                yield Entry(seq, Record(platform, report_id, target_id, report, result))

    def outcome(self, platform: str, report_id: str) -> Outcome | None:
        data = self._call(
            self._last(self._outcomes, self.address.subject("o", _hash(platform, report_id)))
        )
        if data is None:
            return None
        p, r, outcome, decided_at, _ = _decode(data)
        return Outcome(p, r, outcome, decided_at)

    def decisions(self, after: int = 0) -> Iterator[tuple[int, int, Outcome]]:
        for batch in self._read(self._outcomes, self.address.subject("o"), after, 10_000):
            for seq, data in batch:
                p, r, outcome, decided_at, at = _decode(data)
                yield seq, int(at), Outcome(p, r, outcome, decided_at)

    async def _last_seq(self, stream: str) -> int:
        return int((await self._js.stream_info(stream)).state.last_seq)

    @property
    def last_decision(self) -> int:
        return self._call(self._last_seq(self._outcomes))

    @property
    def last_offset(self) -> int:
        return self._call(self._last_seq(self._reports))

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._call(self._shutdown())
        finally:
            self._closed = True
            self._stop_loop()

    async def _shutdown(self) -> None:
        try:
            await asyncio.wait_for(self._nc.drain(), 10)
        except Exception:  # a server gone away: close without draining
            await self._nc.close()

    def _stop_loop(self) -> None:
        async def cancel_the_rest() -> None:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_the_rest(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()


def _payload(r: Record) -> bytes:
    """A report's message: ``[platform, report_id, target_id, report, result]`` as JSON,
    the result's JSON spliced in where the guard encoded it.

    >>> _payload(Record("x", "r1", "t", {"a": 1}, {"score": 0.5}, b'{"score":0.5}'))
    b'["x","r1","t",{"a":1},{"score":0.5}]'
    >>> _payload(Record("x", "r1", "t", {"a": 1}, {"score": 0.5}))
    b'["x","r1","t",{"a":1},{"score":0.5}]'
    """
    return b"[%b,%b]" % (
        _encode([r.platform, r.report_id, r.target_id])[1:-1],
        b",".join(
            (
                _encode(r.report),
                _encode(r.result) if r.result_json is None else r.result_json,
            )
        ),
    )
