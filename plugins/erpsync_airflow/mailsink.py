"""A local SMTP sink for `make up`: alert e-mails are kept as files instead of being sent out.

    python -m erpsync_airflow.mailsink --port 8125 --maildir var/mail

Every message is stored in the Maildir ``var/mail`` (``var/mail/new/``: one file per mail, plain
RFC 5322 text) and its subject is printed to the log (``var/log/mailsink.log``). Point
``smtp_default`` at a real relay to send the alerts to people instead.
"""

from __future__ import annotations

import argparse
import mailbox
import signal
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any


class MaildirHandler:
    def __init__(self, maildir: Path) -> None:
        maildir.parent.mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(str(maildir), create=True)
        for sub in ("tmp", "new", "cur"):  # a directory made by hand may lack them
            (maildir / sub).mkdir(exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        data = envelope.original_content or envelope.content
        self.box.add(data)
        msg = message_from_bytes(data, policy=default_policy)
        print(f"mail to {', '.join(envelope.rcpt_tos)}: {msg['subject']}", flush=True)
        return "250 OK"


def main(argv: list[str] | None = None) -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8125)
    parser.add_argument("--maildir", type=Path, default=Path("var/mail"))
    args = parser.parse_args(argv)
    controller = Controller(MaildirHandler(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mailsink: SMTP on {args.host}:{args.port}, mails kept in {args.maildir}/new", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):  # a timed wait lets the SIGTERM handler run
            pass
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
