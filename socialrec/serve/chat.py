"""The service's chat: sessions kept per user, and the library's `Dialogue` over the served model.

`ChatSessions` keeps each session (its owner, the dialogue state, its turns) in memory; a
session unused for ``chat_session_ttl_s`` expires, at most ``chat_max_sessions`` are kept (the
least recently used goes first). It is one of the service's per-user stores
(``Service.user_data["chat"]``): a user's export lists their sessions and erasure deletes them.
Every message passes ``Service.clean_text`` (PII scrubbing) before it is kept, logged or shown
to a generator (an external endpoint among them); the raw message is only matched against the
catalog in memory (artists and authors are people: "like Bob Dylan" must find the artist) and
not kept. The request log names the route only, never the text.

`ChatService` builds, per served model version, the catalog index, the `Dialogue` (candidates
and similar items through the `ServedModel`, so hidden items, opt-outs and online updates apply)
and the `ItemWriter` of blurbs and posts. This module wires; the dialogue logic lives in
`socialrec.explain`.
"""

from __future__ import annotations

import secrets
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from socialrec.explain.dialogue import ChatTurn, Dialogue, DialogueConfig, SessionState

log = logging.getLogger(__name__)


@dataclass
class ChatSession:
    session_id: str
    user_id: str
    state: SessionState
    created: float
    last_used: float
    turns: list[dict[str, Any]] = field(default_factory=list)


class UnknownSessionError(KeyError):
    """No live session of this user has this id (never made, expired, or another user's)."""


class ChatSessions:
    """In-memory chat sessions with expiry (module docstring). ``clock``: seconds now."""

    def __init__(self, ttl_s: float, max_sessions: int, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, ChatSession] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        # The dict is in last-use order (a used session moves to the end), so the expired ones
        # are at the front.
        while self._sessions and now - next(iter(self._sessions.values())).last_used > self.ttl_s:
            self._sessions.popitem(last=False)

    def open(self, user_id: str, session_id: str | None, new_state: Callable[[], SessionState]) -> ChatSession:
        """The user's live session ``session_id``, or a new one when it is None; raises
        `UnknownSessionError` for an id that is not a live session of this user."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            if session_id is not None:
                s = self._sessions.get(session_id)
                if s is None or s.user_id != user_id:  # the session id is the secret, not the user id
                    raise UnknownSessionError(session_id)
                s.last_used = now
                self._sessions.move_to_end(session_id)
                return s
            s = ChatSession(secrets.token_urlsafe(16), user_id, new_state(), now, now)
            self._sessions[s.session_id] = s
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return s

    def export(self, user_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            self._expire(self.clock())
            out = [{"session_id": s.session_id, "created": s.created, "last_used": s.last_used, "turns": list(s.turns)}
                   for s in self._sessions.values() if s.user_id == user_id]
        return out or None

    def erase(self, user_id: str) -> int:
        with self._lock:
            gone = [sid for sid, s in self._sessions.items() if s.user_id == user_id]
            for sid in gone:
                del self._sessions[sid]
        return len(gone)

    def __len__(self) -> int:
        return len(self._sessions)


class ChatService:
    """Chat and generated content over the service's served model (module docstring)."""

    def __init__(self, svc: Any) -> None:
        s = svc.settings
        self.svc = svc
        self.sessions = ChatSessions(s.chat_session_ttl_s, s.chat_max_sessions, clock=svc.clock)
        self.config = DialogueConfig(max_message_chars=s.chat_max_message_chars)
        self._built: tuple[str, Dialogue, Any] | None = None
        self._lock = threading.Lock()
        self._generator: Any = None
        self._generator_made = False

    def generator(self) -> Any:
        from socialrec.explain.llm import make_generator

        if not self._generator_made:
            s = self.svc.settings
            self._generator = make_generator(s.llm_backend, url=s.llm_url, model=s.llm_model, key_env=s.llm_key_env)
            self._generator_made = True
        return self._generator

    def parts(self, model: Any) -> tuple[Dialogue, Any]:
        """The dialogue and item writer of ``model``'s version (built once per version)."""
        with self._lock:
            if self._built is not None and self._built[0] == model.version:
                return self._built[1], self._built[2]
            dialogue, writer = build_chat(model, generator=self.generator(), config=self.config,
                                          encoder=self.svc.settings.chat_encoder, clean=self.svc.clean_text)
            self._built = (model.version, dialogue, writer)
            return dialogue, writer

    def turn(self, model: Any, user_id: str, session_id: str | None, message: str, k: int) -> tuple[ChatSession, ChatTurn]:
        text = self.svc.clean_text(message) or ""
        dialogue, _ = self.parts(model)
        session = self.sessions.open(user_id, session_id, dialogue.new_session)
        known = user_id in model.dataset.users and not model.is_excluded(user_id)
        with self._lock:  # one turn of a session at a time: its state changes
            # Understood from the raw message (artists are people: "like Bob Dylan" must reach the
            # catalog), which is not kept; what is stored, logged or sent to a generator is scrubbed.
            turn = dialogue.respond(session.state, user_id if known else None, message, k, shown_text=text)
        session.turns.append({"at": self.svc.clock(), "message": text, "reply": turn.reply,
                              "items": [it.item_id for it in turn.items], "question": turn.question})
        return session, turn


def build_chat(model: Any, *, generator: Any = None, config: DialogueConfig | None = None,
               encoder: str | None = None, clean: Callable[[str], str | None] | None = None) -> tuple[Dialogue, Any]:
    """A `Dialogue` and an `ItemWriter` over a `ServedModel` (also what `socialrec chat`,
    `socialrec generate` and benchmarks/conversation.py use). ``encoder``: name of the text
    encoder matching words to tags by embedding (``socialrec.represent.encoders``), or None."""
    from socialrec.explain.catalog import CatalogIndex
    from socialrec.explain.writer import ItemWriter

    enc = None
    if encoder is not None:
        from socialrec.errors import MissingDependencyError
        from socialrec.represent.encoders import get_encoder

        try:
            enc = get_encoder(encoder)
            enc.encode(["warm up"])  # loads the model now: a missing extra shows here, not mid-turn as a 500
        except MissingDependencyError as exc:
            log.warning("chat matches tags by exact name only: %s", exc)
            enc = None
    catalog = CatalogIndex(model.dataset, encoder=enc)

    def candidates(user_id: str | None, n: int) -> list[tuple[str, float]]:
        recs = model.recommend(user_id, n) if user_id is not None else model.cold_start(n)
        return [(r.item_id, r.score) for r in recs]

    def similar(item_id: str, n: int) -> list[tuple[str, float]]:
        return [(r.item_id, r.score) for r in model.similar_items(item_id, n)]

    dialogue = Dialogue(catalog, candidates, similar, generator=generator, config=config, hidden=model.hidden_items)
    return dialogue, ItemWriter(catalog, generator, model_version=model.version, clean=clean)
