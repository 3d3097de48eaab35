"""The demo firm's access logs: its bastion's sshd and its office's badge readers (§18, §22, §23).

They are the real samples in ../shared/data (see SOURCES.md there), re-dated to the
demo's last weeks so that they meet the demo's grants: the OpenSSH sample becomes
yesterday's bastion log, the badge sample the office's last fourteen days. The
sample's one accepted login is an SRE's, whose standing bastion grant it marks used;
its prox cards are handed out to the firm's badge holders, so some walk into the
server room without a grant, which the ingestion turns into findings. Without the
samples (an installation away from the project's shared folder) the demo has no
event sources, and says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from portcullis import demo_data as data
from portcullis.demo_access import Story
from portcullis.events import sources
from portcullis.events.files import fingerprint_of, lines_of
from portcullis.events.ingest import BatchResult, Pipeline

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data"
OPENSSH = SAMPLES / "logs" / "OpenSSH_2k.log"
BADGES = SAMPLES / "badges" / "proxOut-MC2.csv"
BADGE_DAYS = 14
# The sample's one successful login, by "fztu": here an SRE on call, who holds bastion-ssh standing.
SSH_ACCOUNTS = {"fztu": "AUR-012"}
SERVER_ROOM_LABEL = "3/Server Room"


def available() -> bool:
    return OPENSSH.is_file() and BADGES.is_file()


def _redated_openssh(day: datetime) -> bytes:
    # Every line of the sample is stamped "Dec 10"; the time of day is kept.
    stamp = day.strftime("%b %d").replace(" 0", "  ")
    text = OPENSSH.read_text(encoding="utf-8")
    return "".join(stamp + line[6:] + "\n" for line in text.splitlines()).encode()


def _redated_badges(first_day: datetime) -> tuple[bytes, set[str], set[str]]:
    """The badge sample moved to start on `first_day`; also its zone labels and prox ids."""
    lines = BADGES.read_text(encoding="utf-8").splitlines()
    start = datetime.strptime(lines[1].split(",", 1)[0], "%Y-%m-%d %H:%M:%S")
    shift = first_day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None) - start.replace(hour=0, minute=0)
    out = [lines[0]]
    labels: set[str] = set()
    badges: set[str] = set()
    for line in lines[1:]:
        when, rest = line.split(",", 1)
        moved = datetime.strptime(when, "%Y-%m-%d %H:%M:%S") + shift
        out.append(moved.strftime("%Y-%m-%d %H:%M:%S") + "," + rest)
        cells = [c.strip() for c in rest.split(",")]
        badges.add(cells[1])
        labels.add(f"{cells[2]}/{cells[3]}")
    return ("\n".join(out) + "\n").encode(), labels, badges


def _take(story: Story, key: str, body: bytes, label: str) -> BatchResult:
    ctx = story.ctx()
    pipeline = Pipeline.load(ctx.session, key)
    cursor = pipeline.open_input(ctx.session, fingerprint_of(body).input_id, label, ctx.now())
    records = list(lines_of(body))
    totals = BatchResult()
    for i in range(0, len(records), 20_000):
        totals.add(pipeline.take(ctx, cursor, records[i : i + 20_000], label))
    return totals


def build_events(story: Story) -> dict[str, BatchResult]:
    """The bastion and office sources, with their logs taken; call with the story at its end."""
    if not available():
        return {}
    ctx = story.ctx()
    yesterday = story.end - timedelta(days=1)
    sources.create_source(
        ctx,
        sources.SourceIn(
            key="bastion-sshd",
            name="Bastion sshd (syslog)",
            format="syslog",
            asset="AST-BASTION",
            config={"parser": {"year": yesterday.year, "timezone": "Europe/Luxembourg"}, "accounts": SSH_ACCOUNTS},
        ),
    )
    body, labels, badges = _redated_badges(story.end - timedelta(days=BADGE_DAYS + 1))
    holders = [p.external_id for p in data.PEOPLE_SPECS if p.badge_id is not None]
    sources.create_source(
        ctx,
        sources.SourceIn(
            key="office-badges",
            name="Head office badge readers",
            format="badge-csv",
            zone="ZONE-LUX-SERVER",
            asset="AST-BADGE",
            config={
                "parser": {
                    "columns": {"time": "timestamp", "badge": "prox-id", "zone": ["floor", "zone"]},
                    "time_format": "%Y-%m-%d %H:%M:%S",
                    "timezone": "Europe/Luxembourg",
                    # The readers' floor and zone numbers, as the badge system names them, onto the register's zones.
                    "zones": {
                        lb: "ZONE-LUX-SERVER" if lb == SERVER_ROOM_LABEL else "ZONE-LUX-FLOOR" for lb in sorted(labels)
                    },
                },
                "badges": {b: holders[i % len(holders)] for i, b in enumerate(sorted(badges))},
            },
        ),
    )
    return {
        "bastion-sshd": _take(story, "bastion-sshd", _redated_openssh(yesterday), "auth.log (yesterday)"),
        "office-badges": _take(story, "office-badges", body, "badge export (last two weeks)"),
    }
