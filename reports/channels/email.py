"""The email channel: one message to one address over SMTP (smtplib).

Settings, ``[channels.email]``::

    smtp_host = "localhost"      # TOKENTALLY_CHANNELS_EMAIL_SMTP_HOST
    smtp_port = 25               # 465 when security = "ssl" and no port is given
    security = "none"            # "none" | "starttls" | "ssl"
    username = "tokentally"      # optional; then a password is required
    sender = "tokentally@localhost"
    timeout_seconds = 30

The password only from ``TOKENTALLY_CHANNELS_EMAIL_PASSWORD`` or
``TOKENTALLY_CHANNELS_EMAIL_PASSWORD_FILE``; it is never logged nor shown in ``repr``.

Errors: a 5xx reply (refused sender or recipient, failed login, rejected data), a
missing server extension (STARTTLS, AUTH) or a certificate that does not verify is
permanent; 4xx replies, refused connections, timeouts and dropped connections are not.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from worker.settings.channels import EmailSettings, is_address

from reports.channels import ChannelError
from reports.channels.mime import render_email
from reports.messages import Message

class EmailChannel:
    kind = "email"

    def __init__(self, *, host: str = "localhost", port: int = 25, security: str = "none",
                 username: str | None = None, password: str | None = None,
                 sender: str = "tokentally@localhost", timeout: float = 30):
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.sender = sender
        self.timeout = timeout

    @classmethod
    def from_settings(cls, s: EmailSettings) -> EmailChannel:
        return cls(host=s.host, port=s.port, security=s.security, username=s.username, password=s.password,
                   sender=s.sender, timeout=s.timeout)

    def __repr__(self) -> str:
        login = f", username={self.username!r}, password=<set>" if self.username else ""
        return (f"EmailChannel({self.host!r}, port={self.port}, security={self.security!r}"
                f"{login}, sender={self.sender!r})")

    def send(self, target: str, message: Message) -> str:
        """``target``: one address (``admin@example.com``). Returns the Message-ID."""
        address = target.strip()
        if not is_address(address):
            raise ChannelError(f"email: not an email address: {target!r}", permanent=True)
        mail = render_email(message, to=address, sender=self.sender)
        where = f"SMTP {self.host}:{self.port}"
        try:
            self._deliver(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(address, (0, b""))
            raise ChannelError(f"{where}: recipient {address} refused: {_reply(code, reply)}",
                               permanent=_permanent(code)) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ChannelError(f"{where}: {exc}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, login failed, data rejected, ...
            raise ChannelError(f"{where}: {type(exc).__name__}: {_reply(exc.smtp_code, exc.smtp_error)}",
                               permanent=_permanent(exc.smtp_code)) from None
        except ssl.SSLCertVerificationError as exc:
            raise ChannelError(f"{where}: TLS certificate not accepted: {exc.verify_message}",
                               permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timeout, DNS, TLS
            raise ChannelError(f"{where}: {type(exc).__name__}: {exc}") from None
        return str(mail["Message-ID"])

    def _deliver(self, mail: EmailMessage) -> None:
        """One SMTP session; a failing QUIT after the message was accepted is ignored."""
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self._password or "")
            smtp.send_message(mail)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _permanent(code: int) -> bool:
    return 500 <= code < 600


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}".strip()
