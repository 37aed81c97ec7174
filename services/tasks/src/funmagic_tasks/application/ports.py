"""What the use cases of tasks need from the outside, as Protocols: the stores a transaction binds, the
transaction itself, and the other services' answers (storage: does a user own an asset, publish an image
for the catalog; providers: does a provider exist). The adapters layer provides the concrete classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeAlias, TypeVar

from funmagic_kit.ports import SentRead, UnitOfWork
from funmagic_tasks.domain.accounts import Standing
from funmagic_tasks.domain.catalog import (
    BannerEntry,
    BannerRecord,
    Tool,
    ToolEntry,
    ToolRecord,
    ToolTypeEntry,
    ToolTypeRecord,
)
from funmagic_tasks.domain.stats import TaskFigures
from funmagic_tasks.domain.studio import Chat, Message, ModelKind
from funmagic_tasks.domain.task import EffectiveStatus, Task, TaskFamily
from funmagic_tasks.domain.tasks import TaskStatus

__all__ = [
    "AccountStore",
    "Assets",
    "CatalogImages",
    "CatalogStore",
    "Page",
    "Providers",
    "RowLock",
    "StudioModels",
    "StudioStore",
    "TaskMetrics",
    "TaskStore",
    "TasksUnitOfWork",
    "UnitOfWorkFactory",
]

RowLock = Literal["update", "share"] | None
"""How a read locks the row for the rest of the transaction: FOR UPDATE, FOR SHARE, or not at all."""

ItemT = TypeVar("ItemT")
Page: TypeAlias = tuple[list[ItemT], str | None]
"""One page of a list and the cursor of the next one (None at the end)."""


class TaskStore(Protocol):
    async def lock(self, task_id: str) -> Task | None:
        """The task, locked for the rest of the transaction; None for an id that is not one of ours (not
        even a UUID: other producers' events on the shared topics)."""
        ...

    async def get(self, task_id: str) -> Task | None:
        """The task, a deleted one too (the use case decides who sees it)."""
        ...

    async def descendants(self, task_id: str, *, lock: bool = False) -> list[Task]:
        """The task's live (not deleted) child tasks and theirs, oldest first; `lock`: locked for the rest of
        the transaction."""
        ...

    async def ran_tool(self, tool_id: str) -> bool:
        """Whether any task (a deleted one too) ran the tool."""
        ...

    async def by_idempotency_key(self, user_id: str, key: str) -> Task | None: ...

    async def send_by_idempotency_key(self, user_id: str, key: str) -> SentRead[Task | None]:
        """`by_idempotency_key`, answered later (reads sent together share a round trip)."""
        ...

    async def hold_creations_of(self, user_id: str) -> None:
        """Let one creation of this user's tasks run at a time, until the transaction ends."""
        ...

    async def active_count(self, user_id: str) -> int: ...

    async def send_active_count(self, user_id: str) -> SentRead[int]: ...

    async def active_of(self, user_id: str) -> list[Task]:
        """The user's pending and running tasks, oldest first, locked for the rest of the transaction."""
        ...

    async def add(self, task: Task) -> Task:
        """The new task as stored (read back: the answer shows it exactly as every later read will).
        Raises ConcurrencyConflict when the user's idempotency key is taken (callers hold
        `hold_creations_of` and look the key up first, so only a retry ends up here)."""
        ...

    async def save(self, task: Task) -> SentRead[Task]:
        """Write a task locked in this transaction; the answer is the task as stored now. A pipelined unit of
        work that does not wait for the answer pays no round trip for the write."""
        ...

    async def page(
        self,
        *,
        user_id: str | None,
        status: TaskStatus | None,
        tool_slug: str | None,
        category: str | None = None,
        include_deleted: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]:
        """Every task (child tasks too) as it is, newest first: the admin search."""
        ...

    async def families(
        self,
        *,
        user_id: str,
        status: EffectiveStatus | None,
        tool_slug: str | None,
        category: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[TaskFamily]:
        """The user's live top-level tasks with their families (`TaskFamily`), newest first; `status`
        filters on the family's effective status."""
        ...

    async def figures(self, since: datetime, until: datetime, bucket: timedelta) -> TaskFigures:
        """The admin overview's figures of every task (child tasks and deleted ones too) in
        [since, until), with a series of `bucket`-long buckets starting at `since`: counted in SQL."""
        ...

    async def overdue(self, now: datetime, *, pending_before: datetime, limit: int) -> list[str]:
        """Ids of tasks that should have moved by now: a running step past its deadline, or a task still
        waiting for its credits since before `pending_before`."""
        ...


class CatalogStore(Protocol):
    # --- tool types ---
    async def add_tool_type(self, type_id: str, entry: ToolTypeEntry, now: datetime) -> ToolTypeRecord | None:
        """None when a live tool type has that name."""
        ...

    async def tool_type(self, type_id: str, *, lock: RowLock = None) -> ToolTypeRecord | None: ...

    async def tool_type_by_name(self, name: str) -> ToolTypeRecord | None: ...

    async def update_tool_type(self, type_id: str, entry: ToolTypeEntry, now: datetime) -> ToolTypeRecord:
        """Raises CatalogConflict when another live tool type has the name."""
        ...

    async def tools_using(self, type_id: str) -> int: ...

    async def delete_tool_type(self, type_id: str, now: datetime) -> bool: ...

    async def tool_types_page(
        self, *, active: bool | None, limit: int, cursor: str | None
    ) -> Page[ToolTypeRecord]: ...

    # --- tools ---
    async def add_tool(
        self, tool_id: str, entry: ToolEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> ToolRecord | None:
        """None when a live tool has that slug. `image_urls`: the CDN URL of each image it names."""
        ...

    async def tool(
        self, tool_id: str, *, lock: RowLock = None, include_deleted: bool = False
    ) -> ToolRecord | None: ...

    async def tool_record_by_slug(self, slug: str, *, active_only: bool = False) -> ToolRecord | None: ...

    async def tool_by_slug(self, slug: str) -> Tool | None:
        """The live tool as the task saga uses it (an inactive one too, with `is_active` False)."""
        ...

    async def update_tool(
        self, tool_id: str, entry: ToolEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> ToolRecord:
        """Raises CatalogConflict when another live tool has the slug."""
        ...

    async def count_use(self, tool_id: str) -> None:
        """One more started top-level task of the tool."""
        ...

    async def hold_tool(self, tool_id: str) -> bool:
        """Keep the live tool from being edited or deleted until the transaction ends (FOR KEY SHARE: its
        use count may still change); False when it is gone already."""
        ...

    async def send_hold_tool(self, tool_id: str) -> SentRead[bool]: ...

    async def delete_tool(self, tool_id: str, now: datetime) -> bool:
        """Soft delete: the row stays (with `deleted_at`) for the tasks that ran it."""
        ...

    async def remove_tool(self, tool_id: str) -> bool:
        """Hard delete, for a tool no task ran."""
        ...

    async def tools_page(
        self,
        *,
        active: bool | None,
        type_name: str | None = None,
        query: str | None = None,
        featured: bool | None = None,
        deleted: bool | None = False,
        locales: Sequence[str] = (),
        limit: int,
        cursor: str | None,
    ) -> Page[ToolRecord]:
        """`deleted`: live tools (False), the soft-deleted ones (True) or both (None)."""
        ...

    # --- banners ---
    async def add_banner(
        self, banner_id: str, entry: BannerEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> BannerRecord | None:
        """None when a banner with that id exists (a deleted one too)."""
        ...

    async def banner(self, banner_id: str, *, lock: RowLock = None) -> BannerRecord | None: ...

    async def update_banner(
        self, banner_id: str, entry: BannerEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> BannerRecord: ...

    async def delete_banner(self, banner_id: str, now: datetime) -> bool: ...

    async def banners_page(
        self,
        *,
        live_at: datetime | None,
        banner_type: str | None = None,
        active: bool | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[BannerRecord]: ...


class StudioStore(Protocol):
    """The studio's chats and messages (`admin_chats`, `admin_messages`)."""

    async def add_chat(self, chat: Chat) -> Chat: ...

    async def chat(self, chat_id: str, *, lock: bool = False) -> Chat | None: ...

    async def save_chat(self, chat: Chat) -> Chat: ...

    async def delete_chat(self, chat_id: str) -> None:
        """The chat and its messages."""
        ...

    async def chats_page(
        self,
        *,
        admin_id: str | None,
        archived: bool,
        project: str | None,
        by_project: bool,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Chat], str | None]:
        """Most recently active first; `admin_id` None: every admin's; `by_project`: only chats whose
        project is `project` (None: chats in no project)."""
        ...

    async def projects(self, admin_id: str) -> list[tuple[str, int]]:
        """The admin's project names with the number of their active chats."""
        ...

    async def save_messages(self, messages: Sequence[Message]) -> None: ...

    async def message(self, message_id: str, *, lock: bool = False) -> Message | None: ...

    async def by_idempotency_key(self, admin_id: str, key: str) -> list[Message]: ...

    async def active_replies(self, chat_id: str) -> list[Message]: ...

    async def overdue_replies(self, created_before: datetime, limit: int) -> list[str]:
        """Ids of replies still pending or running that were asked before `created_before`, oldest first."""
        ...

    async def messages_of(self, chat_id: str) -> list[Message]: ...

    async def messages_page(
        self, chat_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Message], str | None]:
        """Newest first."""
        ...


class AccountStore(Protocol):
    """Whether identity closed an account (`domain.accounts`)."""

    async def standing(self, user_id: str) -> Standing:
        """The account's standing; open when identity never closed it."""
        ...

    async def send_standing(self, user_id: str) -> SentRead[Standing]: ...

    async def save(self, standing: Standing) -> None: ...


class TasksUnitOfWork(UnitOfWork, Protocol):
    tasks: TaskStore
    catalog: CatalogStore
    studio: StudioStore
    accounts: AccountStore


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> TasksUnitOfWork: ...


class Assets(Protocol):
    """Storage's answer for task inputs."""

    async def owns(self, user_id: str, asset_id: str) -> bool: ...


class CatalogImages(Protocol):
    """Storage publishing an admin's upload for the catalog (thumbnails, style-reference images)."""

    async def publish(self, asset_id: str, admin_id: str) -> str | None:
        """The asset's immutable CDN URL, publishing it first if it is not yet (idempotent); None when
        storage has no such asset of `admin_id`'s (or of anyone's, public already)."""
        ...


class Providers(Protocol):
    """The providers service's answer for tool configs."""

    async def exists(self, name: str) -> bool:
        """Whether steps can run with that (web-scope) provider."""
        ...


class StudioModels(Protocol):
    """The providers service's catalogue of studio providers and their models."""

    async def model_kind(self, provider: str, model: str) -> ModelKind | None:
        """`text` (a chat model), `image` (an image model) or `utility` (works on images); None when the
        studio provider does not exist, is turned off, or has no such model."""
        ...


class TaskMetrics(Protocol):
    """What the task use cases tell the metrics (dashboards and alerts read them)."""

    def task_ended(self, tool: str, outcome: TaskStatus, seconds: float) -> None:
        """A task of `tool` ended (completed, failed or cancelled) `seconds` after it was created."""
        ...

    def overdue(self, count: int) -> None:
        """How many tasks the sweeper found past their deadline (a running step past it, or credits that
        never answered) on its last round, before ending them."""
        ...
