"""The SMTP adapter: maintenance tickets leave as plain-text e-mails through the configured relay."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from health.settings import HealthSettings


class SmtpSender:
    """Sends one message per call (standard library client, in a thread: a slow relay never blocks the loop)."""

    def __init__(self, settings: HealthSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return self.settings.smtp_host is not None

    async def send(self, to: list[str], subject: str, body: str) -> None:
        """Raises OSError or smtplib.SMTPException when the relay refuses or cannot be reached."""
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as client:
            if s.smtp_starttls:
                client.starttls()
            if s.smtp_username:
                client.login(s.smtp_username, s.smtp_password.get_secret_value() if s.smtp_password else "")
            client.send_message(message)
