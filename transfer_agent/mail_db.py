"""Tables of the SMTP intake, kept in the ledger database (like portal_db.py).

`mails`: one row per SMTP transaction we accepted, written by the internet-side process (status
'received', with its audit row 'smtp.received') before it answers 250; the core claims it
('taking'), takes it into quarantine as one job per channel its recipients belong to (jobs.mail_id)
and marks it 'queued' (audit 'smtp.taken'). 'abandoned': the core did not take it in time, the
sender got a 4xx and sends it again. `mail_rcpts`: the envelope recipients and their channels.
"""
from __future__ import annotations

from . import schema

MAIL_SCHEMA = """
CREATE TABLE IF NOT EXISTS mails (
    id          TEXT PRIMARY KEY,         -- queue id (in our Received header and the 250 reply)
    status      TEXT NOT NULL,            -- received | taking | queued | abandoned
    mail_from   TEXT NOT NULL,            -- envelope sender, '' for the null sender
    helo        TEXT NOT NULL,
    client_ip   TEXT NOT NULL,
    tls         INTEGER NOT NULL DEFAULT 0,
    spf         TEXT,                     -- SPF result JSON
    size        INTEGER NOT NULL,         -- of the spooled message (our header fields + the data)
    sha256      TEXT NOT NULL,
    txn         TEXT NOT NULL,            -- sha256 of envelope and data: a sender's retry is not taken twice
    spool       TEXT NOT NULL,            -- relative to the data dir
    received_at REAL NOT NULL,
    taken_at    REAL
);
CREATE INDEX IF NOT EXISTS mails_status ON mails(status);
CREATE INDEX IF NOT EXISTS mails_txn ON mails(txn);
CREATE TABLE IF NOT EXISTS mail_rcpts (
    mail_id  TEXT NOT NULL,
    n        INTEGER NOT NULL,            -- order in the envelope
    address  TEXT NOT NULL,               -- lower case, IDNA domain
    channel  TEXT NOT NULL,
    PRIMARY KEY (mail_id, n)
);
"""

schema.register("mail", MAIL_SCHEMA)  # jobs.mail_id and its index: ledger.py

SPOOL = "smtp"  # work/smtp/: messages the internet side received, until the core takes them

