"""The LGWAN transfer appliance around the `cdr` engine.

Layout under the data directory:
  dropbox/[<channel>/]   internet side: files dropped here are taken when complete
  inbox/<channel>/<YYYY-MM-DD>/   LGWAN side: NAME, NAME.cdr.json, NAME.txt, ORIGINAL.blocked.json
  quarantine/ab/<sha256> originals, read-only, purged after the policy's retention (audited)
  state/ledger.sqlite3   jobs, quarantine index, hash-chained audit trail (WAL)
  state/results/         sanitized outputs by (sha256, policy, extension), for dedup and replay
  state/agent.json       pid and URLs of the running agent
  work/                  intake and per-job staging (same file system as the inbox)

Modules: config (TOML, flags), intake (watchdog), service (the state machine and recovery),
executor (the job-execution seam), delivery (atomic, idempotent), quarantine, ledger,
audit, metrics, api_app (FastAPI apps + uvicorn runner), cli.
"""

__version__ = "0.1.0"
