"""Request and response bodies of the /v1 API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from socialrec.serve.store import ITEM_KINDS, SOCIAL_KINDS

MAX_BATCH = 1000
Id = Field(min_length=1, max_length=128)
EventKind = Literal["view", "click", "like", "comment", "share", "purchase", "rating", "follow", "unfollow", "hide"]



class Strict(BaseModel):
    """A request body: unknown fields are refused (422), as are strings that are not valid
    Unicode (pydantic's own check)."""

    model_config = ConfigDict(extra="forbid")


class EventIn(Strict):
    event_id: str = Field(min_length=1, max_length=128, description="client-chosen unique id: a retried batch is idempotent")
    user_id: str = Field(min_length=1, max_length=128)
    kind: EventKind
    item_id: str | None = Field(default=None, min_length=1, max_length=128, description="required for item events")
    target_user_id: str | None = Field(default=None, min_length=1, max_length=128,
                                       description="required for follow and unfollow")
    value: float | None = Field(default=None, description="rating value, 1..5")
    text: str | None = Field(default=None, max_length=5000, description="comment text")
    timestamp: float | None = Field(default=None, ge=0, le=1e11, description="unix seconds (default: now)")

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    @model_validator(mode="after")
    def _fields_for_kind(self) -> "EventIn":
        if self.kind in ITEM_KINDS and self.item_id is None:
            raise ValueError(f"a {self.kind} event needs item_id")
        if self.kind in SOCIAL_KINDS:
            if self.target_user_id is None:
                raise ValueError(f"a {self.kind} event needs target_user_id")
            if self.target_user_id == self.user_id:
                raise ValueError("a user cannot follow or unfollow themself")
        if self.kind == "rating" and (self.value is None or not 1.0 <= self.value <= 5.0):
            raise ValueError("a rating event needs value between 1 and 5")
        if self.text is not None and self.kind != "comment":
            raise ValueError("only comment events carry text")
        return self


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsAck(BaseModel):
    accepted: int = Field(description="events newly stored")
    duplicates: int = Field(description="events whose event_id was already stored (ignored)")
    refused: int | None = Field(default=None, description="item events on items outside the catalog (not stored)")
    refused_reason: str | None = None


class ItemIn(Strict):
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(default="", max_length=20000, description="description used by the content (cold-start) path")


class UserIn(Strict):
    name: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=20000, description="bio or interests, used by the content path")


class Upserted(BaseModel):
    id: str
    status: Literal["upserted"] = "upserted"


class ReasonOut(BaseModel):
    kind: str
    weight: float
    evidence: dict[str, Any]


class RecommendationOut(BaseModel):
    item_id: str
    title: str
    score: float
    explanation: str | None = None
    reasons: list[ReasonOut] | None = None


class RecommendationsOut(BaseModel):
    user_id: str
    model_version: str
    items: list[RecommendationOut]


class SimilarItemOut(BaseModel):
    item_id: str
    title: str
    score: float


class SimilarOut(BaseModel):
    item_id: str
    model_version: str
    items: list[SimilarItemOut]


class FriendOut(BaseModel):
    user_id: str
    score: float


class FriendSuggestionsOut(BaseModel):
    user_id: str
    model_version: str
    users: list[FriendOut]


class ActivityOut(BaseModel):
    user_id: str
    events: list[dict[str, Any]]


class ErasureReceipt(BaseModel):
    user_hash: str
    erased_at: float
    events_deleted: int
    events_about_user_deleted: int
    profile_deleted: bool
    embeddings_deleted: int
    model_versions_rewritten: list[str]
    in_memory_models_cleared: int
    retrain_job: str | None = None


class ModelVersionOut(BaseModel):
    version: str
    current: bool
    kind: str | None = None
    created: float | None = None
    metrics: dict[str, Any] = {}
    train_seconds: float | None = None
    users: int | None = None
    items: int | None = None
    interactions: int | None = None
    trained_through_seq: int | None = None


class ModelsOut(BaseModel):
    serving: str | None
    versions: list[ModelVersionOut]


class RetrainOut(BaseModel):
    job_id: str
    status: str
    version: str | None = None
    error: str | None = None


class Health(BaseModel):
    status: str
    model_version: str | None = None
    model_kind: str | None = Field(default=None, description="what serves: the live channels, or the hybrid over them")
