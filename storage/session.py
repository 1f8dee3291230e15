"""The ORM session the repository works in: SQLModel's, with a faster way to insert
the rows a batch of new customers creates.

A customer's first message makes three rows (customer, identity, conversation), and
a poll of 100 new customers' messages made the unit of work insert 300 objects one
by one: it diffs each object's state, sorts the tables by their dependencies and
hands every row to SQLAlchemy's general parameter handling, about 38 µs an object
in the relay benchmark. Those rows carry their ids already (``Transaction.new_id``),
so before each flush they are written here in one executemany per table
(``storage.bulk``), parents first, and put back in the session as rows just read:
any later change to one is an ordinary UPDATE, and every query that finds them
(after its autoflush, as before) finds the same objects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy import insert as sa_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel

from storage.bulk import Bulk
from storage.models import Conversation, Customer, CustomerIdentity, table


def _inserter(model: type[SQLModel]) -> tuple[type[SQLModel], Bulk, tuple[str, ...]]:
    rows = table(model)
    return model, Bulk(sa_insert(rows)), tuple(column.name for column in rows.columns)


#: in the order their foreign keys need
_FIRST = tuple(_inserter(model) for model in (Customer, CustomerIdentity, Conversation))
_MODELS = frozenset(model for model, _insert, _columns in _FIRST)


class GatewaySession(Session):
    """SQLModel's session, whose flush writes new rows of ``_FIRST`` in bulk."""


@event.listens_for(GatewaySession, "before_flush")
def _insert_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    new: dict[type, list[Any]] = {}
    for row in session.new:
        # one without its id yet is left to the unit of work, which gets it one
        if type(row) in _MODELS and row.id is not None:
            new.setdefault(type(row), []).append(row)
    if not new:
        return
    connection = session.connection()
    for model, insert, columns in _FIRST:
        rows = sorted(new.get(model, ()), key=lambda row: row.id)
        if not rows:
            continue
        insert.run_sync(
            connection, [{name: getattr(row, name) for name in columns} for row in rows]
        )
        for row in rows:
            # in the session as if read: what changes in it from now on is an update
            session.expunge(row)
            make_transient_to_detached(row)
            session.add(row)
