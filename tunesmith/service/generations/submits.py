"""Recording and queueing submitted generations, several at a time (group commit).

A submit writes two transactions: the job's record with its quota reservation, and the queue's message. On
SQLite each commit appends several pages to the write-ahead log; the two were about a fifth of a submit's CPU.
The requests an API process reads in one turn of its event loop (under load, most of its share of the clients)
are recorded together by :class:`SubmitBatcher`: one transaction of the records and one of the queue, while
each request keeps its own quota check, in arrival order, and its own answer. With another database the
statements run in the thread pool, one request at a time. Both go through :func:`record`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from tunesmith.service import crud
from tunesmith.service.db import utcnow
from tunesmith.service.errors import TooManyRequests
from tunesmith.service.limits import check_quota

if TYPE_CHECKING:
    from tunesmith.service.db import Database
    from tunesmith.service.queue import JobQueue
    from tunesmith.service.shared_files import FileLock

log = logging.getLogger("tunesmith.service")


@dataclass(frozen=True)
class Submission:
    """A checked generation request, ready to record: what the job runs with and what it may cost."""

    key_id: int
    model: str
    params: dict[str, Any]
    prompt: str | None
    interpretation: dict[str, Any] | None
    formats: list[str]
    seconds: float  # audio seconds reserved against the key's day
    quota: float  # the key's daily quota


def record(db: Database, queue: JobQueue, writer_lock: FileLock,
           submissions: list[Submission]) -> list[SimpleNamespace | Exception]:
    """Record and queue ``submissions`` in one transaction of the records and one of the queue. Each answer is
    the new record's values, or the exception that refused it: TooManyRequests over its key's daily quota, or
    the queue's error (its job is then marked failed). An error of the records' transaction itself raises: it
    rolled back every submission of the batch."""
    answers: list[SimpleNamespace | Exception] = []
    with writer_lock, db.transaction() as connection:
        for submission in submissions:
            now = utcnow()
            day = crud.day_of(now)
            # reserve, then check the day's total: the usage row stays locked until commit, so simultaneous
            # requests (other threads, other API processes) cannot all pass the check
            used = crud.add_usage(connection, submission.key_id, day, submission.seconds)
            try:
                check_quota(used=used - submission.seconds, wanted=submission.seconds, quota=submission.quota)
            except TooManyRequests as refused:
                crud.add_usage(connection, submission.key_id, day, -submission.seconds)
                answers.append(refused)
                continue
            answers.append(crud.add_generation(
                connection, key_id=submission.key_id, model=submission.model, params=submission.params,
                prompt=submission.prompt, interpretation=submission.interpretation, formats=submission.formats,
                estimated_seconds=submission.seconds, reserve=False, created=now))
    queued = [answer.id for answer in answers if isinstance(answer, SimpleNamespace)]
    try:
        with writer_lock:
            queue.submit_many(queued)
    except Exception as exc:
        log.error("the job queue failed: %s", exc)
        with db.session() as session:
            for generation_id in queued:
                crud.fail_generation(session, generation_id, code="queue_unavailable", message="the job queue failed")
        return [exc if isinstance(answer, SimpleNamespace) else answer for answer in answers]
    return answers


class SubmitBatcher:
    """Collects the submits of one event-loop turn and records them with one :func:`record` (SQLite: on the
    loop, where its statements take microseconds); elsewhere records each in the thread pool."""

    def __init__(self, db: Database, queue: JobQueue, writer_lock: FileLock) -> None:
        self.db, self.queue, self.writer_lock = db, queue, writer_lock
        self._pending: list[tuple[Submission, asyncio.Future]] = []

    async def submit(self, submission: Submission) -> SimpleNamespace:
        """The recorded and queued job's values; raises what refused it."""
        if not self.db.is_sqlite:
            answer = (await run_in_threadpool(record, self.db, self.queue, self.writer_lock, [submission]))[0]
        else:
            future = asyncio.get_running_loop().create_future()
            self._pending.append((submission, future))
            if len(self._pending) == 1:  # after the requests already read in this turn have joined
                asyncio.get_running_loop().call_soon(self._flush)
            answer = await future
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        answers: list[Any] = [RuntimeError("the submit was interrupted")] * len(batch)
        try:
            answers = record(self.db, self.queue, self.writer_lock, [submission for submission, _ in batch])
        except Exception as exc:  # the records' transaction failed: every request of the batch says so
            answers = [exc] * len(batch)
        finally:  # whatever happened, no request is left waiting
            self._answer(batch, answers)

    @staticmethod
    def _answer(batch: list[tuple[Submission, asyncio.Future]], answers: list[Any]) -> None:
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():  # the client went away; its job is recorded and queued all the same
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
