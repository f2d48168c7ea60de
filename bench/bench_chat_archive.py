"""The WeCom chat-archive pull on PostgreSQL, against the bare read loop of the same records.

    uv run python bench/bench_chat_archive.py              # SCALE=small: 5,000 records
    SCALE=full uv run python bench/bench_chat_archive.py   # 100,000 records

The SDK stand-in (tests/channels/finance_sdk_standin.c) is compiled with gcc and fed records whose
random keys are RSA-2048-encrypted as WeCom does. Timed in the same run: the raw loop (GetChatData pages
+ our RSA unwrap + DecryptData + JSON, nothing stored) and siyu's pull (the same, plus a contact upsert
per customer message, the dedupe check and the archive row, committed per run of the job) into a fresh
database. Reported: records/s of each and the ratio. Results go to docs/benchmarks_chat_archive.md.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from _support import scratch_postgres
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import text
from sqlalchemy.orm import Session

from siyu.channels import accounts, chat_archive
from siyu.channels.chat_archive_sdk import load_private_key, load_sdk, unwrap_random_key
from siyu.channels.models import ChannelAccount
from siyu.contacts import staff
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace

ROOT = Path(__file__).resolve().parents[1]
SCALE = os.environ.get("SCALE", "small")
RECORDS = {"small": 5_000, "full": 100_000}[SCALE]
CUSTOMERS = 500


def fixture(path: Path, key: rsa.RSAPrivateKey) -> None:
    """RECORDS chat records, half from customers, half from the staff member, in the stand-in's format."""
    public = key.public_key()
    lines = ["SECRET bench-secret"]
    for seq in range(1, RECORDS + 1):
        customer = f"wm{seq % CUSTOMERS:06d}"
        sender, to = (customer, "lisi") if seq % 2 else ("lisi", customer)
        message = {"msgid": f"m{seq}", "action": "send", "from": sender, "tolist": [to], "roomid": "",
                   "msgtime": 1_764_500_000_000 + seq, "msgtype": "text", "text": {"content": f"消息 {seq}"}}
        random_key = secrets.token_hex(16).encode()
        plain = b"SIYU" + json.dumps(message).encode()
        body = bytes(b ^ random_key[i % len(random_key)] for i, b in enumerate(plain))
        record = {"seq": seq, "msgid": f"m{seq}", "publickey_ver": 1,
                  "encrypt_random_key": base64.b64encode(public.encrypt(random_key, padding.PKCS1v15())).decode(),
                  "encrypt_chat_msg": base64.b64encode(body).decode()}
        lines.append(f"{seq}\t{json.dumps(record)}")
    path.write_text("\n".join(lines) + "\n")


def raw_loop(library: str, pem: str) -> int:
    """The bare limit: read every record through the SDK, unwrap and decrypt it, store nothing."""
    sdk, key, seq, seen = load_sdk(library), load_private_key(pem), 0, 0
    with sdk.open("ww-bench", "bench-secret") as handle:
        while records := sdk.chat_data(handle, seq, chat_archive.PAGE_SIZE):
            for record in records:
                sdk.decrypt(unwrap_random_key(key, record["encrypt_random_key"]), record["encrypt_chat_msg"])
                seq, seen = record["seq"], seen + 1
    return seen


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-archive-") as tmp:
        library = str(Path(tmp) / "libWeWorkFinanceSdk_C.so")
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", library,
                        str(ROOT / "tests" / "channels" / "finance_sdk_standin.c")], check=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        data = Path(tmp) / "chatdata.tsv"
        fixture(data, key)
        os.environ["SIYU_STANDIN_CHATDATA"] = str(data)

        start = time.perf_counter()
        assert raw_loop(library, pem) == RECORDS
        raw_seconds = time.perf_counter() - start

        with scratch_postgres("siyu_bench_archive") as url:
            engine = make_engine(url)
            from siyu.core import workspaces

            actor = Actor.cli("bench")
            with Session(engine) as session:
                ws = workspaces.create_workspace(session, actor, name="Bench", timezone="UTC").id
                bind_workspace(session, ws)
                staff.create_staff(session, name="Li", wecom_userid="lisi", actor=actor)
                account_id = accounts.create(
                    session, kind=chat_archive.KIND, name="Archive", actor=actor,
                    config={"corp_id": "ww-bench", "publickey_ver": "1", "finance_sdk_path": library},
                    secrets={"secret": "bench-secret", "private_key": pem}).id
                session.commit()
            start, stored, runs = time.perf_counter(), 0, 0
            while True:
                with Session(engine) as session:
                    bind_workspace(session, ws)
                    account = session.get(ChannelAccount, account_id)
                    assert account is not None
                    result = chat_archive.pull(session, account)
                    session.commit()
                assert result.error is None, result.error
                runs += 1
                stored += result.stored
                if result.read == 0:
                    break
            siyu_seconds = time.perf_counter() - start
            with engine.connect() as conn:
                pg = conn.execute(text("SHOW server_version")).scalar()
            engine.dispose()

    assert stored == RECORDS, f"stored {stored} of {RECORDS}"
    raw_rate, siyu_rate = RECORDS / raw_seconds, RECORDS / siyu_seconds
    header = ("| records | raw read + unwrap + decrypt (records/s) | siyu pull into the archive (records/s) | "
              "ratio | job runs |\n|---:|---:|---:|---:|---:|")
    row = f"| {RECORDS:,} | {raw_rate:,.0f} | {siyu_rate:,.0f} | **{siyu_rate / raw_rate:.2f}** | {runs} |"
    print(header)
    print(row)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join([
        "# Benchmark: the WeCom chat-archive pull",
        "",
        f"Latest run of `bench/bench_chat_archive.py` (SCALE={SCALE}), {stamp}. See [benchmarks.md](benchmarks.md).",
        "",
        "Against the compiled SDK stand-in (its decryption is a XOR, cheaper than WeCom's AES), with RSA-2048",
        "wrapped keys. The raw loop reads, unwraps and decrypts every record and stores nothing; siyu's pull",
        f"also upserts the customer ({CUSTOMERS} distinct), checks the msgid and writes the archive row, one",
        f"transaction per job run ({chat_archive.MAX_PAGES} pages of {chat_archive.PAGE_SIZE} at most).",
        "Every customer is new here, so the contacts module's first upsert (contact, identity, owner and a",
        "`contact.created` event) is most of the difference; customers seen before cost one lookup per run.",
        "",
        header,
        row,
        "",
        f"- {os.cpu_count()} CPUs, {platform.platform()}",
        f"- Python {platform.python_version()}, PostgreSQL {pg}, SQLAlchemy {version('sqlalchemy')}, "
        f"cryptography {version('cryptography')}",
        "- load average at the end of the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "",
    ])
    if os.environ.get("SIYU_BENCH_WRITE", "1") == "1":
        (ROOT / "docs" / "benchmarks_chat_archive.md").write_text(report)


if __name__ == "__main__":
    main()
