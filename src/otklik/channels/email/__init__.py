"""The email channel: IMAP polling (IDLE), an inbound SMTP endpoint, SMTP delivery, threading by Message-ID."""
