"""Email: customers write to the support address; IMAP in, SMTP out."""

from adapters.email.config import EmailSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="email",
    config_model=EmailSection,
    adapter="adapters.email.adapter:EmailAdapter",
)

__all__ = ["PLUGIN", "EmailSection"]
