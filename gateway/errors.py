"""The gateway's exceptions, named for what went wrong in the support domain."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class InvalidEvent(GatewayError, ValueError):
    """An adapter built an event the core cannot accept; the message says which field."""


class ShuttingDown(GatewayError):
    """The gateway is stopping and takes no new events.

    An adapter that gets this must not acknowledge the event: the platform sends it
    again after the restart, and nothing is lost.
    """


class StoreUnavailable(GatewayError):
    """The database failed while an event was taken in: nothing was committed, and
    the event is not to blame. An adapter takes it again later, without counting
    it among the tries that set a poison event aside (an outage fails every event
    alike; setting them all aside would lose the lot)."""


class ConfigError(GatewayError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DeliveryError(GatewayError):
    """An adapter could not deliver. Subclasses say whether to try again."""


class TemporaryFailure(DeliveryError):
    """Worth retrying with backoff: a 5xx, a timeout, a dropped connection."""


class RateLimited(TemporaryFailure):
    """The platform asked us to wait ``retry_after`` seconds.

    ``scope`` is ``"chat"`` when only this chat is throttled (the outbox keeps the
    chat's order, so its later deliveries wait anyway) or ``"destination"`` when the
    whole bot is (then no delivery to this adapter goes out before the time).
    """

    def __init__(self, retry_after: float, scope: str = "chat", message: str = "") -> None:
        self.retry_after = max(0.0, retry_after)
        self.scope = scope
        super().__init__(message or f"rate limited, retry after {retry_after:g}s ({scope})")


class PermanentFailure(DeliveryError):
    """Retrying cannot help (the customer blocked the bot, the chat is gone).

    The message is written for operators: it is shown in the conversation's thread.
    """
