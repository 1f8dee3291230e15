"""Durable state of the gateway: tables, the async repository, migrations.

Everything that must survive a restart (conversations, the outbox, inbound dedupe
keys, deadlines) lives here as rows, never only in memory.
"""

from storage.database import Database, DatabaseError, SchemaOutdated
from storage.models import (
    ACTIVE_STATUSES,
    CUSTOMER_CHAT_KEY,
    FINISHED_STATUSES,
    AuditEvent,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Deadline,
    Direction,
    InboundEvent,
    Message,
    MessageRef,
    OperatorState,
    OutboxRow,
    OutboxStatus,
    Presence,
    Priority,
    QueuedRow,
    SlaBreach,
    WorkspaceThread,
    build,
)
from storage.repository import Repository, Transaction, is_database_failure

__all__ = [
    "ACTIVE_STATUSES",
    "CUSTOMER_CHAT_KEY",
    "FINISHED_STATUSES",
    "AuditEvent",
    "Conversation",
    "ConversationStatus",
    "Customer",
    "CustomerIdentity",
    "Database",
    "DatabaseError",
    "Deadline",
    "Direction",
    "InboundEvent",
    "Message",
    "MessageRef",
    "OperatorState",
    "OutboxRow",
    "OutboxStatus",
    "Presence",
    "Priority",
    "QueuedRow",
    "Repository",
    "SchemaOutdated",
    "SlaBreach",
    "Transaction",
    "WorkspaceThread",
    "build",
    "is_database_failure",
]
