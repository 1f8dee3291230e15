"""Email: customers write to the support address; IMAP in, SMTP out."""

from adapters.email.adapter import EmailAdapter
from adapters.email.config import EmailSection
from gateway.adapter import ChannelPlugin

PLUGIN = ChannelPlugin(
    name="email",
    config_model=EmailSection,
    create=lambda section, config: EmailAdapter(section, config),  # type: ignore[arg-type]
)

__all__ = ["PLUGIN", "EmailAdapter", "EmailSection"]
