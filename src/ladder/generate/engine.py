"""Continuous batching (as vLLM and TGI do): one background thread advances every running
sequence by one token per step, and sequences join and leave the running batch between steps.

Each step first drops cancelled sequences, then admits queued requests (their prompts are
prefilled) while fewer than `max_sequences` run, then samples one token for every running
sequence (each with its own seeded `Sampler`), hands each its new text, retires those that
are done (a stop string, `max_new_tokens`) and calls `decoder.decode` once for the rest. A
sequence whose context is full reads its last `context_length - 1` tokens afresh, as
`stream_ids` does, so a request gives the very text `TextGenerator.generate` gives with the
same parameters. The queue is bounded: `submit` raises QueueFull beyond `max_queue`.

Callbacks run in the engine's thread, unless `deliver` hands a step's text events on as one
batch (to an event loop, say: one wake-up a step rather than one a sequence).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ladder.generate.generator import TextGenerator
from ladder.generate.stream import Sampler, SamplingParams, TextStream

logger = logging.getLogger(__name__)

# why a sequence ended, as its last event says
STOP, LENGTH, ERROR = "stop", "length", "error"

Emit = Callable[[str, str | None], None]  # (new text, finish reason or None while running)
Event = tuple[Emit, str, str | None]  # a call of a request's emit, to be made


class QueueFull(Exception):
    """The queue holds `max_queue` requests already."""


class Closed(Exception):
    """The engine is draining or stopped and takes no new requests."""


@dataclass
class EngineSettings:
    """How many sequences decode together, and how many requests may wait."""

    max_sequences: int = 16
    max_queue: int = 100

    def __post_init__(self) -> None:
        if self.max_sequences < 1 or self.max_queue < 0:
            raise ValueError(
                f"max_sequences must be >= 1 and max_queue >= 0; got {self.max_sequences} "
                f"and {self.max_queue}"
            )


class Observer:
    """What the engine reports (the server's metrics); every hook is a no-op here."""

    def first_token(self, seconds: float) -> None:
        """A sequence's first token, `seconds` after its request was submitted."""

    def next_token(self, seconds: float) -> None:
        """A later token, `seconds` after the sequence's previous one."""

    def counts(self, running: int, queued: int) -> None:
        """Sequences running and requests queued, after a change."""


@dataclass(eq=False)  # compared by identity: the queue removes this very job
class Job:
    """One request: its prompt ids, parameters, sampler, text and where the text goes; then
    its decoding state while it runs."""

    ids: list[int]
    params: SamplingParams
    emit: Emit
    sampler: Sampler
    text: TextStream
    submitted: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    context: list[int] = field(default_factory=list)
    logits: Any = None  # (vocab,) of the next token, once prefilled
    state: Any = None
    produced: int = 0
    last_token: float = 0.0


class Engine:
    """Continuous batching over one TextGenerator's decoder, in a thread of its own."""

    def __init__(
        self,
        generator: TextGenerator,
        settings: EngineSettings | None = None,
        observer: Observer | None = None,
        deliver: Callable[[list[Event]], None] | None = None,
    ) -> None:
        """`deliver(events)`, if given, makes each loop's emit calls (`emit(text, finish)`
        for each event) where it wants; by default the engine's thread makes them."""
        self.generator = generator
        self.deliver = deliver
        self._outbox: list[tuple[Job, str, str | None]] = []
        self.decoder = generator.decoder
        self.eos_id = getattr(self.decoder, "eos_id", None)  # seq2seq: the output's end
        self.settings = settings or EngineSettings()
        self.observer = observer or Observer()
        self._queue: deque[Job] = deque()
        self._running: list[Job] = []
        self._lock = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the decoding thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ladder-engine", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Refuse new requests; queued and running ones finish, then the thread ends."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end after `close`; whether it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> int:
        """Sequences in the running batch (a cancelled one no longer counts)."""
        return sum(not j.cancelled for j in list(self._running))

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._queue)

    # ------------------------------------------------------------------ requests

    def submit(self, ids: list[int], params: SamplingParams, emit: Emit) -> Job:
        """Queue a request to continue prompt `ids` (1 to context_length - 1 of them);
        `emit(text, finish)` receives its text as it comes and, last, its finish reason.
        QueueFull or Closed when it cannot be taken."""
        params.check()
        if not 1 <= len(ids) < max(2, self.decoder.context_length):
            raise ValueError(
                f"a prompt of {len(ids)} tokens: expected 1 to {self.decoder.context_length - 1}"
            )
        text = TextStream(self.generator.decode, params.stop)
        job = Job(list(ids), params, emit, Sampler(params), text)
        with self._lock:
            if self._closed:
                raise Closed("the generation engine is shutting down")
            if len(self._queue) >= self.settings.max_queue:
                raise QueueFull(f"{len(self._queue)} requests waiting")
            self._queue.append(job)
            self._lock.notify_all()
        self._report()
        return job

    def cancel(self, job: Job) -> None:
        """Drop a request: queued, it leaves the queue now; running, it leaves the batch
        before the next step (its slot goes to the next queued request)."""
        with self._lock:
            job.cancelled = True
            if job in self._queue:
                self._queue.remove(job)
            self._lock.notify_all()
        self._report()

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not (self._queue or self._running or self._closed):
                    self._lock.wait()
                self._running = [j for j in self._running if not j.cancelled]
                if self._closed and not (self._queue or self._running):
                    return
                admitted = []
                slots = self.settings.max_sequences
                while self._queue and len(self._running) + len(admitted) < slots:
                    admitted.append(self._queue.popleft())
            for job in admitted:
                self._admit(job)
            self._report()
            if self._running:
                self._step()
            self._flush()

    def _admit(self, job: Job) -> None:
        """Prefill a request's prompt and join the running batch."""
        try:
            job.context = list(job.ids)
            job.logits, job.state = self.decoder.prefill(job.context)
        except Exception:
            logger.exception("prefill failed")
            self._finish(job, "", ERROR)
            return
        self._running.append(job)

    def _step(self) -> None:
        """One token for every running sequence, then one batched decode for those that go on."""
        size = self.decoder.context_length
        going: list[Job] = []
        for job in self._running:
            if job.cancelled:
                continue
            try:
                token = job.sampler(job.logits)
            except Exception:
                logger.exception("sampling failed")
                self._finish(job, "", ERROR)
                continue
            self._timed(job)
            job.produced += 1
            if token == self.eos_id:  # a seq2seq decoder's end of the output
                self._finish(job, job.text.flush(), STOP)
                continue
            chunk = job.text.push(token)
            if job.text.stopped:
                self._finish(job, chunk, STOP)
            elif job.produced >= job.params.max_new_tokens:
                self._finish(job, chunk + job.text.flush(), LENGTH)
            else:
                if chunk:
                    self._send(job, chunk, None)
                job.context.append(token)
                going.append(job)
        batch = []
        for job in going:
            if job.cancelled:
                continue
            if len(job.context) > size:  # the context is full: read its end afresh
                job.context = job.context[-(size - 1) :] if size > 1 else job.context[-1:]
                try:
                    job.logits, job.state = self.decoder.prefill(job.context)
                except Exception:
                    logger.exception("prefill failed")
                    self._finish(job, "", ERROR)
            else:
                batch.append(job)
        if batch:
            try:
                logits, states = self.decoder.decode(
                    [j.context[-1] for j in batch], [j.state for j in batch]
                )
            except Exception:
                logger.exception("decode failed")
                for job in batch:
                    self._finish(job, "", ERROR)
            else:
                for i, job in enumerate(batch):
                    job.logits, job.state = logits[i], states[i]
        self._running = [j for j in self._running if not j.cancelled]

    def _timed(self, job: Job) -> None:
        now = time.perf_counter()
        if job.produced == 0:
            self.observer.first_token(now - job.submitted)
        else:
            self.observer.next_token(now - job.last_token)
        job.last_token = now

    def _finish(self, job: Job, chunk: str, reason: str) -> None:
        """The job's last event; it leaves the batch (marked cancelled: nothing more to do)."""
        self._send(job, chunk, reason)
        job.cancelled, job.state, job.logits = True, None, None

    def _send(self, job: Job, chunk: str, reason: str | None) -> None:
        self._outbox.append((job, chunk, reason))

    def _flush(self) -> None:
        """Hand on the text events of this loop (in the order they came)."""
        events, self._outbox = self._outbox, []
        if not events:
            return
        if self.deliver is not None:
            try:
                self.deliver([(job.emit, chunk, reason) for job, chunk, reason in events])
            except Exception:  # the receiver is gone (a closed event loop): drop its jobs
                logger.debug("delivering generated text failed; dropping", exc_info=True)
                for job, _, _ in events:
                    job.cancelled = True
            return
        for job, chunk, reason in events:
            try:
                job.emit(chunk, reason)
            except Exception:  # its receiver is gone: drop the job
                logger.debug("a generation's receiver failed; dropping it", exc_info=True)
                job.cancelled = True

    def _report(self) -> None:
        self.observer.counts(self.running, self.queued)
