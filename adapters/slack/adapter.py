"""Slack, both sides, with slack-bolt: operators in a channel, customers in DMs.

The workspace is a channel: each conversation is a root message (a Block Kit card)
and its thread. Customers write to the app in direct messages, or in shared
channels listed in ``customer_channels``.

Events are taken with ``process_before_response``: bolt answers Slack (the HTTP
200, the Socket Mode ack) only after the listener returns, and the listener returns
only after the core has committed. A failure answers 500 / sends no ack, so Slack
sends the event again; the dedupe key is the message's (channel, ts), never the
event_id, because Slack sometimes resends one message under a new event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import listeners
from adapters.slack.config import SlackSection
from adapters.slack.deliver import LONG_TEXT, TEXT_LIMIT, SlackDelivery, joined, texts_only
from adapters.slack.intake import SocketHandler, shaped
from adapters.slack.pacing import POSTS, TIER3, PacedWebClient
from adapters.slack.takers import SlackTakers
from gateway.adapter import AdapterBase, Host, RateLimit, UnrecordedThreads
from gateway.cards import (
    text_with_files,
    uploads,
)
from gateway.config import Config
from gateway.errors import (
    GatewayError,
)
from gateway.events import (
    Delivery,
    Outbound,
    Receipt,
    Sender,
)
from gateway.ratelimit import Key, Limiter
from gateway.textsplit import split_text

log = logging.getLogger(__name__)
T = TypeVar("T")


class _ClientGiven(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that
    the client we pass wins over it; that is the intent, and the warning only confuses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


#: slack-bolt's own log, under ours
BOLT_LOG = logging.getLogger("adapters.slack.bolt")
BOLT_LOG.addFilter(_ClientGiven())


class SlackAdapter(SlackTakers, SlackDelivery, AdapterBase):
    name = "slack"

    def __init__(self, section: SlackSection, config: Config) -> None:
        self.section = section
        self.config = config
        self.workspace = section.workspace_channel
        self.serves_workspace = self.workspace is not None
        self.customer_channels = frozenset(section.customer_channels)
        #: a backlog of customer texts for one thread goes out as one message
        self.max_batch = 20
        #: replies are threaded by topic or thread, not by earlier messages' ids
        self.wants_history = False
        # https://docs.slack.dev/apis/web-api/rate-limits: chat.postMessage about one
        # a second per channel (short bursts allowed); chat.update and the other
        # Tier 3 methods about 50 a minute
        self.rate_limits = (
            RateLimit("channel", rate=1, per_seconds=1.0, burst=3, key=self._post_key, serial=True),
            RateLimit("tier3", rate=50, per_seconds=60.0, burst=10, key=self._tier3_key),
        )
        #: every call that posts or changes a message waits here (``pacing``),
        #: deliveries' and the rest alike; the outbox claims by the same counters
        self._pace = Limiter(self.rate_limits)
        self.limiter = self._pace
        self.paces_calls = True
        self.client: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        self.socket: SocketHandler | None = None
        self.host: Host | None = None
        self.bot_user = ""
        #: the workspace's address (auth.test's ``url``), for links to threads
        self._team_url = ""
        self._http: aiohttp.ClientSession | None = None
        self._senders: OrderedDict[str, Sender] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        #: threads opened here that the core may not have recorded yet
        self._opened: dict[int, Receipt] = {}
        #: the same by thread ts, until recorded: a reply or a button pressed in a
        #: thread before that waits for it instead of meeting "no conversation"
        self._unrecorded = UnrecordedThreads()
        self._background: set[asyncio.Task[Any]] = set()

    # -- rate limits -------------------------------------------------------------------

    @staticmethod
    def _posts(delivery: Delivery) -> bool:
        """chat.postMessage (or a file share); the rest are chat.update/chat.delete."""
        kind = delivery.outbound.kind
        return kind == "message" or (kind == "header" and delivery.header_ref is None)

    def _post_key(self, delivery: Delivery) -> str | None:
        if not self._posts(delivery):
            return None
        out = delivery.outbound
        return f"chat:{out.chat_id}" if out.audience == "customer" else "workspace"

    def _tier3_key(self, delivery: Delivery) -> str | None:
        return None if self._posts(delivery) else "tier3"

    def _call_keys(self, method: str, channel: str) -> tuple[Key, ...]:
        """The counters a call draws from: the same as the deliveries' (``_post_key``,
        ``_tier3_key``)."""
        if method in POSTS:
            return (("channel", "workspace" if channel == self.workspace else f"chat:{channel}"),)
        if method in TIER3:
            return (("tier3", "tier3"),)
        return ()

    def cost(self, delivery: Delivery) -> int:
        out = delivery.outbound
        if out.kind in ("edit", "delete"):
            return max(1, len(delivery.edit_refs))
        if out.kind in ("header", "notice"):
            return 1
        if out.kind == "erase":
            return max(1, len(out.refs))
        group = [delivery, *delivery.more]
        if len(group) > 1 and texts_only(group):
            return len(split_text(joined(group), TEXT_LIMIT))
        calls = sum(self._posts_for(d.outbound) + len(uploads(d.outbound)) for d in group)
        if out.audience == "workspace" and delivery.thread_ref is None:
            calls += 1
        return calls

    @staticmethod
    def _posts_for(out: Outbound) -> int:
        text = text_with_files(out)
        if out.audience == "workspace" and not out.mentions and len(text) > LONG_TEXT:
            return 2  # a preview and the file
        return len(split_text(text or " ", TEXT_LIMIT))

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self.host = host
        section = self.section
        self.client = PacedWebClient(
            limiter=self._pace,
            keys=self._call_keys,
            token=section.bot_token.get_secret_value(),
            base_url=section.api_base,
        )
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            raise GatewayError(
                f"slack: the bot token was refused (slack.bot_token): {exc.response.get('error')}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise GatewayError(
                f"slack: cannot reach {section.api_base} (slack.api_base): {exc}"
            ) from None
        self.bot_user = str(auth.get("user_id") or "")
        self._team_url = str(auth.get("url") or "")
        log.info("slack: connected to %s as %s", auth.get("team"), auth.get("user"))
        if self.workspace is not None:
            await self._check_workspace()
        self._http = aiohttp.ClientSession()
        secret = section.signing_secret.get_secret_value() if section.signing_secret else ""
        self.app = AsyncApp(
            client=self.client,
            logger=BOLT_LOG,
            signing_secret=secret,
            process_before_response=True,
            request_verification_enabled=section.mode == "http",
            # we recognise our own messages (and any app's) ourselves, on every subtype
            ignoring_self_events_enabled=False,
        )
        listeners.register(self.app, self, section.slash_command)
        if section.mode == "http":
            host.add_route("POST", section.events_path, self._on_http)
            log.info("slack: http mode, events arrive at %s", section.events_path)
        else:
            assert section.app_token is not None
            self.socket = SocketHandler(
                self.app,
                section.app_token.get_secret_value(),
                web_client=AsyncWebClient(base_url=section.api_base),
                ping_interval=section.ping_interval_seconds,
            )
            try:
                await self.socket.connect_async()
            except SlackApiError as exc:
                await self._close()
                raise GatewayError(
                    f"slack: Socket Mode refused the app token (slack.app_token): "
                    f"{exc.response.get('error')}"
                ) from None
            log.info("slack: socket mode connected")

    async def _check_workspace(self) -> None:
        assert self.client is not None and self.workspace is not None
        try:
            info = await self.client.conversations_info(channel=self.workspace)
        except SlackApiError as exc:
            log.error(
                "slack: the workspace channel %s cannot be read (%s): invite the app to it "
                "(/invite @app) and check slack.workspace_channel",
                self.workspace,
                exc.response.get("error"),
            )
            return
        channel = info.get("channel") or {}
        if channel.get("is_member") is False:
            log.error(
                "slack: the app is not a member of %s; invite it there (/invite @app)",
                self.workspace,
            )

    def thread_link(self, thread_ref: str) -> str | None:
        """The thread's card as Slack links a message: ``…/archives/<channel>/p<ts>``."""
        if not self._team_url or self.workspace is None:
            return None
        return (
            f"{self._team_url.rstrip('/')}/archives/{self.workspace}/p{thread_ref.replace('.', '')}"
        )

    async def readiness(self) -> str | None:
        """None when events reach us; otherwise why they do not."""
        if self.app is None:
            return "not started"
        if self.section.mode == "http":
            return None
        if self.socket is None or not await self.socket.client.is_connected():
            return "Socket Mode is not connected (reconnecting)"
        return None

    async def stop(self) -> None:
        await self._close()

    async def _close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):
                await self.socket.close_async()
            self.socket = None
        for task in list(self._background):
            task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- intake ------------------------------------------------------------------------------

    async def _on_http(self, request: web.Request) -> web.StreamResponse:
        """The signature is checked here first, on the raw body: an unsigned request
        never reaches bolt, whose refusal logs the body (what a customer wrote, or
        megabytes of a forger's), and a malformed header is a 401, not a 500."""
        assert self.app is not None
        body = await request.read()
        if not self._signed(request, body):
            log.warning("slack: a request with a bad or stale signature was refused")
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = await to_bolt_request(request)
            response = None
            if shaped(bolt_request.body):
                response = await self.app.async_dispatch(bolt_request)
        except Exception:  # bolt parses the body, and reads its shape
            response = None
        if response is None:
            log.warning("slack: a signed request whose body cannot be read was refused")
            return web.json_response({"error": "malformed body"}, status=400)
        if response.status == 401:
            log.warning("slack: a request with a bad or stale signature was refused")
        return await to_aiohttp_response(response)

    def _signed(self, request: web.Request, body: bytes) -> bool:
        assert self.section.signing_secret is not None
        verifier = SignatureVerifier(self.section.signing_secret.get_secret_value())
        try:
            return verifier.is_valid_request(body, dict(request.headers))
        except (ValueError, TypeError, OverflowError):  # a timestamp that is no number
            return False
