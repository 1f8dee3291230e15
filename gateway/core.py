"""The core: what comes in, one transaction each. Customers' messages go to
``CustomerSide``, operators' replies to ``OperatorSide``, operators' commands to the
action registry; deadlines are run here (``run_due``). The outbox's side, preparing
deliveries and recording what came of them, is ``gateway.delivering``. The parts
are made and wired in ``gateway.app``.

``ingest`` returns only after its transaction has committed; adapters acknowledge
their platform after that, so a crash anywhere before it makes the platform send
the event again, and the dedupe key makes the second time harmless.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TypeVar

from gateway.actions import ActionContext, ActionRegistry, parse_command
from gateway.config import Config, OperatorConfig
from gateway.customer_side import CustomerSide
from gateway.delivering import Delivering
from gateway.dispatcher import Dispatcher
from gateway.events import ActionResult, Inbound, IngestResult, OperatorCommand
from gateway.groupcommit import GroupCommit
from gateway.operator_side import OperatorSide
from gateway.relay import Desk, Relay
from gateway.timers import Timers
from gateway.transactions import Transactions
from storage import Repository, Transaction, is_database_failure

log = logging.getLogger(__name__)
T = TypeVar("T")


class Core:
    def __init__(
        self,
        *,
        repository: Repository,
        desk: Desk,
        relay: Relay,
        dispatcher: Dispatcher,
        timers: Timers,
        transactions: Transactions,
        customers: CustomerSide,
        operators: OperatorSide,
        delivering: Delivering,
        actions: ActionRegistry,
    ) -> None:
        self.repository = repository
        self.desk = desk
        self.relay = relay
        self.dispatcher = dispatcher
        self.timers = timers
        self.customers = customers
        self.operators = operators
        self.actions = actions
        #: the outbox's side: preparing deliveries and recording their outcomes
        self.delivering = delivering
        self._run = transactions.run
        #: inbound events each share transactions when many arrive at once
        self._batch = GroupCommit(self._run, prepare=customers.read_ahead)

    @property
    def config(self) -> Config:
        return self.desk.config

    def operator_for(self, channel: str, external_id: str) -> OperatorConfig | None:
        return self.operators.operator_for(channel, external_id)

    async def replan_open(self, batch: int = 200) -> int:
        """Plan every open conversation's deadlines again (the hours or the SLA
        changed); returns how many conversations there were."""
        self.timers.forget()
        after, count = 0, 0
        while True:

            async def step(tx: Transaction, after: int = after) -> list[int]:
                found = await tx.open_conversations(after=after, limit=batch)
                for conversation in found:
                    tx.replan(conversation)
                return [c.id for c in found if c.id is not None]

            ids = await self._run(step)
            if not ids:
                return count
            count += len(ids)
            after = max(ids)

    async def run_due(self, limit: int = 1000) -> int:
        """Act on every deadline due now (up to ``limit``), one transaction each; the
        scheduler calls this on every tick. Returns how many were taken."""
        taken = 0
        while taken < limit:
            try:
                if await self._run(self.timers.fire_next) is None:
                    break
            except Exception:
                # a bug in one action must not hold back every deadline behind it
                log.exception("acting on a deadline failed; it is tried again later")
                await self._run(self.timers.postpone_next)
            taken += 1
        return taken

    # -- ingest -------------------------------------------------------------------

    async def ingest(self, inbound: Inbound) -> IngestResult:
        if inbound.from_workspace:
            command = parse_command(inbound.text) if not inbound.edit_of else None
            if command is not None:
                result = await self.act(
                    OperatorCommand(
                        channel=inbound.channel,
                        event_id=inbound.event_id,
                        operator_external_id=inbound.sender.external_id,
                        name=command[0],
                        args=command[1],
                        workspace_thread=inbound.workspace_thread,
                        # what worked shows in the thread; what did not, and why,
                        # is said to operators (an outsider learns nothing)
                        answer=(
                            "failures"
                            if self.operator_for(inbound.channel, inbound.sender.external_id)
                            else "never"
                        ),
                    )
                )
                return IngestResult(
                    duplicate=False,
                    conversation_id=result.conversation_id,
                    ignored=None if result.ok else result.message,
                )
            work = self.operators.message
        elif inbound.failure_of is not None:
            work = self.customers.failure_report
        else:
            work = self.customers.message

        async def run(tx: Transaction) -> IngestResult:
            seen = await tx.find_event(inbound.channel, inbound.event_id)
            if seen is not None:
                return IngestResult.seen_before(seen.conversation_id, seen.message_id)
            result = await work(tx, inbound)
            tx.record_event(
                inbound.channel, inbound.event_id, result.conversation_id, result.message_id
            )
            return result

        return await self._batch.run(run, hint=inbound)

    # -- operators' commands --------------------------------------------------------

    async def act(self, command: OperatorCommand) -> ActionResult:
        """Run an operator action; the result is for the operator's eyes only."""

        about: int | None = None  # the conversation the command was given in
        done_by: tuple[str, str] | None = None  # (operator, action) of an action run

        async def run(tx: Transaction) -> ActionResult:
            nonlocal about, done_by
            about, done_by = None, None  # a retried transaction starts over
            if await tx.find_event(command.channel, command.event_id) is not None:
                # its answer, if it had one, was queued the first time
                return ActionResult.done("already done")
            result = await perform(tx)
            tx.record_event(command.channel, command.event_id, about)
            if result.ok and done_by is not None:
                operator_id, action_name = done_by
                tx.audit(
                    operator_id,
                    action_name,
                    conversation_id=about,
                    # a note's words stay in the conversation, not in the trail
                    detail="" if action_name == "note" else command.args,
                )
            if command.answered(result):
                await self.relay.notice(tx, command, result, about)
            return result

        async def perform(tx: Transaction) -> ActionResult:
            nonlocal about, done_by
            operator = self.operator_for(command.channel, command.operator_external_id)
            if operator is None:
                log.warning(
                    "refused /%s from %s: not a configured operator",
                    command.name,
                    command.operator_external_id,
                    extra={"channel": command.channel},
                )
                return ActionResult.refused("Only configured operators can do that.")
            action = self.actions.get(command.name)
            if action is None:
                known = ", ".join("/" + n for n in self.actions.names())
                return ActionResult.refused(f"Unknown command /{command.name}. Known: {known}.")
            done_by = (operator.id, action.name)
            conversation = None
            if command.workspace_thread is not None:
                conversation = await tx.conversation_by_thread(
                    command.channel, command.workspace_thread
                )
            elif command.conversation_id is not None:
                conversation = await tx.conversation(command.conversation_id)
            if conversation is not None and conversation.id is not None:
                conversation = await tx.conversation(conversation.id, lock=True)
                about = conversation.id if conversation else None
            context = ActionContext(
                tx=tx,
                config=self.config,
                dispatcher=self.dispatcher,
                relay=self.relay,
                answering=self.operators,
                operator=operator,
                conversation=conversation,
                args=command.args,
                channel=command.channel,
            )
            return await action.run(context)

        try:
            return await self._run(run)
        except Exception as exc:
            if is_database_failure(exc):
                raise
            # a bug meeting an unusual command: nothing it did is kept, the operator
            # hears so, and the command is not taken again and again
            log.exception(
                "/%s failed; nothing was changed",
                command.name,
                extra={"channel": command.channel},
            )
            return await self._run(partial(self._act_failed, command))

    async def _act_failed(self, command: OperatorCommand, tx: Transaction) -> ActionResult:
        failed = ActionResult.refused(
            f"/{command.name} failed: the gateway met an error (logged); nothing changed."
        )
        if await tx.find_event(command.channel, command.event_id) is not None:
            return failed
        tx.record_event(command.channel, command.event_id, None)
        if command.answered(failed):
            await self.relay.notice(tx, command, failed, None)
        return failed

    # -- deliveries -----------------------------------------------------------------

    async def set_aside(self, channel: str, key: str, *, check: bool = False) -> bool:
        """``Host.set_aside``: kept among the channel's dedupe keys, as ``aside:<key>``."""
        event_id = f"aside:{key}"

        async def run(tx: Transaction) -> bool:
            known = await tx.find_event(channel, event_id) is not None
            if not known and not check:
                tx.record_event(channel, event_id)
            return known

        return await self._run(run)

    async def thread_opened(
        self, workspace: str, conversation_id: int, thread_ref: str, header_ref: str | None
    ) -> None:
        """Record where a conversation's thread is now, the moment the platform made
        it (``Host.thread_opened``); the header's delivery records the rest. Threads
        opened together share a transaction with the outcomes being recorded."""

        async def run(tx: Transaction) -> None:
            # a thread opened anew (its topic deleted) replaces the old one's refs
            tx.thread_opened(conversation_id, workspace, thread_ref, header_ref)

        await self.delivering.along(run)
