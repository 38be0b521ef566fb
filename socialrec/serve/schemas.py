"""Request and response bodies of the /v1 API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_BATCH = 1000


# Ids may not contain NUL characters (no store keeps them); stated in the OpenAPI document.
NO_NUL = r"^[^\x00]*$"


class Strict(BaseModel):
    """A request body: unknown fields are refused (422), as are strings that are not valid
    Unicode (pydantic's own check) and ids with a NUL character; free text loses its NULs."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("text", "title", "name", "message", mode="after", check_fields=False)
    @classmethod
    def _drop_nul(cls, value: Any) -> Any:
        # Free text loses its NUL characters (no store keeps them: PostgreSQL refuses them);
        # ids with one are refused by their pattern (NO_NUL).
        return value.replace("\x00", "") if isinstance(value, str) else value


class _EventBase(Strict):
    event_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="client-chosen unique id: a retried batch is idempotent")
    user_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    timestamp: float | None = Field(default=None, ge=0, le=1e11, description="unix seconds (default: now)")


# One model per kind of event, told apart by ``kind``: the OpenAPI schema then says exactly which
# fields each kind needs, so a request valid by the schema is one the server accepts.
class ItemEvent(_EventBase):
    kind: Literal["view", "click", "like", "share", "purchase", "hide"]
    item_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL)


class RatingEvent(_EventBase):
    kind: Literal["rating"]
    item_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    value: float = Field(ge=1.0, le=5.0, description="rating value, 1..5")


class CommentEvent(_EventBase):
    kind: Literal["comment"]
    item_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    text: str | None = Field(default=None, max_length=5000,
                             description="comment text; personal data in it is replaced by typed placeholders "
                                         "(<EMAIL>, <PHONE>, <PERSON> ...) before it is stored (scrub_pii)")


class SocialEvent(_EventBase):
    kind: Literal["follow", "unfollow"]
    target_user_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="the user followed or unfollowed "
                                                                          "(a user following themself changes nothing)")


EventIn = Annotated[ItemEvent | RatingEvent | CommentEvent | SocialEvent, Field(discriminator="kind")]


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
    vectors: dict[str, list[float]] | None = Field(
        default=None, max_length=16,
        description="modality vectors of a new item, e.g. {\"image\": [...128 numbers], \"audio\": [...]}: a served "
                    "multimodal model places the item from them at once (dimensions must match the model's)")


class ItemUpserted(BaseModel):
    id: str
    status: Literal["upserted"] = "upserted"
    placed: bool = Field(default=False, description="the served model ranks the item now (placed from its vectors)")


class UserIn(Strict):
    name: str = Field(default="", max_length=200, description="stored as <PERSON> when scrub_pii is on")
    text: str = Field(default="", max_length=20000, description="bio or interests, used by the content path; "
                                                                 "personal data in it is scrubbed (scrub_pii)")


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


SCENARIO_FIELD = "the scenario answered (only when the service hosts several)"


class RecommendationsOut(BaseModel):
    user_id: str
    model_version: str
    scenario: str | None = Field(None, description=SCENARIO_FIELD)
    items: list[RecommendationOut]


class SimilarItemOut(BaseModel):
    item_id: str
    title: str
    score: float


class TrendWindowOut(BaseModel):
    start: str
    count: int
    alert: bool


class TrendPointOut(BaseModel):
    start: str
    count: int


class TrendTopicOut(BaseModel):
    window: int
    start: str
    volume: int
    keywords: list[str]
    top_items: list[str]
    series: list[TrendPointOut]


class TopicAlertOut(BaseModel):
    """A topic of the posts whose volume burst while its sentiment dropped sharply in a window."""

    kind: str
    topic: int
    keywords: list[str]
    start: str
    volume: int
    sentiment: float
    drop: float


class TopicPointOut(BaseModel):
    start: str
    volume: int
    sentiment: float | None


class PostTopicOut(BaseModel):
    """An embedding topic of the posts: keywords, volume and mean sentiment over the shown windows."""

    topic: int
    keywords: list[str]
    volume: int
    sentiment: float | None
    series: list[TopicPointOut]


class TrendsOut(BaseModel):
    """The latest windows of the served data's engagement timeline, one topic per burst alert and,
    for posts with text, the topic alerts (burst + sharp sentiment drop) and the main topics."""

    model_version: str
    window_seconds: float
    windows: list[TrendWindowOut]
    topics: list[TrendTopicOut]
    topic_alerts: list[TopicAlertOut]
    post_topics: list[PostTopicOut]


class SimilarOut(BaseModel):
    item_id: str
    model_version: str
    scenario: str | None = Field(None, description=SCENARIO_FIELD)
    items: list[SimilarItemOut]


class ScenariosOut(BaseModel):
    default: str
    scenarios: list[str]


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
    text_encrypted: bool | None = Field(default=None, description="stored user text is encrypted at rest "
                                                                  "(SOCIALREC_DATA_KEY is set)")
    text_scrubbed: bool | None = Field(default=None, description="personal data in incoming user text is replaced "
                                                                 "by placeholders before it is stored (scrub_pii)")
    retention_days: float | None = Field(default=None, description="stored events older than this are deleted "
                                                                   "(null: kept until erased)")


class ConsentIn(Strict):
    personalization: bool = Field(description="false: opt out of personalisation (events kept, not learned from; "
                                              "the anonymous list is served); true: opt back in")


class ConsentOut(BaseModel):
    user_id: str
    personalization: bool
    updated: float | None = Field(default=None, description="when the choice was made (null: never; the default is true)")


class ExportEventOut(BaseModel):
    event_id: str
    kind: str
    item_id: str | None = None
    target_user_id: str | None = None
    value: float | None = None
    text: str | None = None
    timestamp: float


class ExportAboutOut(ExportEventOut):
    user_id: str = Field(description="who made the event (it names the exported user as its target)")


class ExportProfileOut(BaseModel):
    name: str
    text: str
    updated: float


class ExportConsentOut(BaseModel):
    personalization: bool
    updated: float | None = None


class ExportSocialOut(BaseModel):
    following: list[str]
    followers: list[str]


class ExportInteractionOut(BaseModel):
    item_id: str
    kind: str
    timestamp: float | None = None
    value: float | None = None


class ExportDatasetOut(BaseModel):
    name: str
    interactions: list[ExportInteractionOut]


class ExportModelOut(BaseModel):
    version: str
    in_model: bool
    items: list[str]
    hidden_items: list[str]
    following: list[str]
    followers: list[str]


class ExportOut(BaseModel):
    """Everything the service holds about one user (see `socialrec.serve.export`)."""

    user_id: str
    exported_at: float
    consent: ExportConsentOut
    profile: ExportProfileOut | None
    events: list[ExportEventOut]
    events_about_user: list[ExportAboutOut]
    social: ExportSocialOut
    dataset: ExportDatasetOut | None
    model: ExportModelOut | None
    catalog_items: list[Any]


class ChatIn(Strict):
    session_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL,
                                   description="a session_id from an earlier answer; omit to start a session")
    message: str = Field(min_length=1, max_length=2000, description="what the user says (English or Chinese)")
    k: int = Field(default=10, ge=1, le=50, description="items to return")


class ChatItemOut(BaseModel):
    item_id: str
    title: str
    reason: str


class ChatOut(BaseModel):
    session_id: str
    reply: str
    items: list[ChatItemOut]
    question: str | None = Field(description="a clarifying question, when the candidates are many and mixed")
    generated: bool = Field(description="the reply was written by the language model (else by template)")
    language: str
    model_version: str


class BlurbOut(BaseModel):
    item_id: str
    kind: Literal["blurb", "post"]
    text: str
    generated: bool
    model_version: str
