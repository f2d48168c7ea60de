"""The WeCom chat-archive pull through a stand-in of WeCom's C SDK (tests/channels/finance_sdk_standin.c,
compiled here): loading with ctypes, our RSA unwrap of each record's key, paging by seq, the archive
kept once per msgid, directions by sender, and errors shown as the account's health, never "nothing"."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.channels import accounts, chat_archive, service
from siyu.channels.chat_archive_models import ChatArchiveCursor
from siyu.channels.chat_archive_sdk import ArchiveError, load_sdk, normalise_pem
from siyu.contacts import service as contacts
from siyu.contacts import staff as staff_service
from siyu.conversations.models import Message
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.models import Job

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")
STANDIN = Path(__file__).with_name("finance_sdk_standin.c")


@pytest.fixture(scope="session")
def sdk_library(tmp_path_factory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the SDK stand-in")
    out = tmp_path_factory.mktemp("sdk") / "libWeWorkFinanceSdk_C.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(STANDIN)], check=True)
    return str(out)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def rsa_keys() -> dict[int, rsa.RSAPrivateKey]:
    return {v: rsa.generate_private_key(public_exponent=65537, key_size=1024) for v in (1, 2)}


class Records:
    """The stand-in's fixture file: records encrypted as WeCom does on its side (RSA-wrapped random key)."""

    def __init__(self, path: Path, keys: dict[int, rsa.RSAPrivateKey]) -> None:
        self.path, self.keys, self.lines = path, keys, []

    def add(self, seq: int, message: dict, *, version: int = 1, key: rsa.RSAPrivateKey | None = None) -> None:
        random_key = secrets.token_hex(16).encode()
        public = (key or self.keys[version]).public_key()
        wrapped = base64.b64encode(public.encrypt(random_key, padding.PKCS1v15())).decode()
        plain = b"SIYU" + json.dumps(message).encode()
        body = bytes(b ^ random_key[i % len(random_key)] for i, b in enumerate(plain))
        record = {"seq": seq, "msgid": message["msgid"], "publickey_ver": version, "encrypt_random_key": wrapped,
                  "encrypt_chat_msg": base64.b64encode(body).decode()}
        self.lines.append(f"{seq}\t{json.dumps(record)}")
        self.write()

    def raw(self, line: str) -> None:
        self.lines.append(line)
        self.write()

    def drop(self, line: str) -> None:
        self.lines.remove(line)
        self.write()

    def write(self) -> None:
        self.path.write_text("\n".join(self.lines) + "\n")


@pytest.fixture
def records(tmp_path, rsa_keys, monkeypatch) -> Records:
    path = tmp_path / "chatdata.tsv"
    monkeypatch.setenv("SIYU_STANDIN_CHATDATA", str(path))
    r = Records(path, rsa_keys)
    r.raw("SECRET archive-secret")
    return r


@pytest.fixture
def account(db, ws, sdk_library, rsa_keys):
    return accounts.create(db, kind="wecom_archive", name="Archive", actor=ACTOR,
                           config={"corp_id": "ww123", "publickey_ver": "1", "finance_sdk_path": sdk_library},
                           secrets={"secret": "archive-secret", "private_key": _pem(rsa_keys[1])})


def text(msgid: str, sender: str, to: str, content: str, at: int = 1_764_500_000_000) -> dict:
    return {"msgid": msgid, "action": "send", "from": sender, "tolist": [to], "roomid": "", "msgtime": at,
            "msgtype": "text", "text": {"content": content}}


def archived(db) -> list[tuple[str, str, str]]:
    rows = db.execute(select(Message.external_id, Message.direction, Message.text).where(
        Message.channel == "wecom_archive").order_by(Message.id)).all()
    return [tuple(r) for r in rows]


def test_a_pull_unwraps_each_key_decrypts_and_archives_by_direction(db, account, records):
    staff = staff_service.create_staff(db, name="Li", wecom_userid="lisi", actor=ACTOR)
    records.add(1, text("m1", "wmCustomerA", "lisi", "你好，请问有货吗"))
    records.add(2, text("m2", "lisi", "wmCustomerA", "有的，今天发货"))

    result = chat_archive.pull(db, account)

    assert (result.read, result.stored, result.seq, result.error) == (2, 2, 2, None)
    assert archived(db) == [("m1", "in", "你好，请问有货吗"), ("m2", "out", "有的，今天发货")]
    rows = db.execute(select(Message).where(Message.channel == "wecom_archive")).scalars().all()
    assert {r.staff_id for r in rows} == {staff.id}
    assert len({r.contact_id for r in rows}) == 1
    contact = contacts.get_contact(db, rows[0].contact_id)
    assert ("external_userid", "wmCustomerA") in {(i.type, i.value) for i in contacts.identities_of(db, contact)}
    assert account.last_ok_at is not None
    assert account.last_error is None


def test_the_next_pull_starts_after_the_last_seq_and_keeps_each_message_once(db, account, records):
    records.add(1, text("m1", "wmA", "zhangsan", "one"))
    chat_archive.pull(db, account)
    records.add(2, text("m2", "wmA", "zhangsan", "two"))
    # The platform hands a message out again under a later seq: still one row.
    records.add(3, text("m1", "wmA", "zhangsan", "one"))

    result = chat_archive.pull(db, account)
    empty = chat_archive.pull(db, account)

    assert (result.read, result.stored, result.seq) == (2, 1, 3)
    assert (empty.read, empty.stored, empty.seq, empty.error) == (0, 0, 3, None)
    assert [r[0] for r in archived(db)] == ["m1", "m2"]


def test_pages_are_read_until_a_short_one(db, account, records, monkeypatch):
    monkeypatch.setattr(chat_archive, "PAGE_SIZE", 2)
    for seq in range(1, 6):
        records.add(seq, text(f"m{seq}", "wmA", "zhangsan", f"#{seq}"))

    result = chat_archive.pull(db, account)

    assert (result.read, result.seq) == (5, 5)


def test_an_sdk_error_keeps_what_came_before_and_shows_on_the_account(db, account, records):
    records.add(1, text("m1", "wmA", "zhangsan", "before"))
    records.raw("2\tERROR 10009")
    records.add(3, text("m3", "wmA", "zhangsan", "after"))

    first = chat_archive.pull(db, account)
    stuck = chat_archive.pull(db, account)
    shown = (accounts.health(account), account.last_error)
    records.drop("2\tERROR 10009")
    healed = chat_archive.pull(db, account)

    assert (first.read, first.seq, first.error) == (1, 1, None)
    assert stuck.error is not None
    assert stuck.error.startswith("10009:")
    assert "trusted list" in stuck.error
    assert shown == ("error", stuck.error)
    assert (healed.read, healed.seq, healed.error) == (1, 3, None)
    assert accounts.health(account) == "ok"


def test_a_record_of_a_key_version_we_lack_stops_there_with_a_clear_error(db, account, records, rsa_keys):
    records.add(1, text("m1", "wmA", "zhangsan", "v1"))
    records.add(2, text("m2", "wmA", "zhangsan", "v2"), version=2)

    result = chat_archive.pull(db, account)

    assert (result.read, result.seq) == (1, 1)
    assert result.error is not None
    assert "publickey_ver 2" in result.error
    assert account.last_error == result.error
    assert accounts.health(account) == "error"
    accounts.update(db, account, secrets={"private_key_v2": _pem(rsa_keys[2])}, actor=ACTOR)
    assert chat_archive.pull(db, account).seq == 2


def test_a_key_wrapped_for_another_private_key_is_an_error_not_a_silent_skip(db, account, records):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    records.add(1, text("m1", "wmA", "zhangsan", "wrapped for someone else"), key=stranger)

    result = chat_archive.pull(db, account)

    assert result.read == 0
    assert result.seq == 0
    assert result.error is not None
    assert result.error.split(":")[0] in ("10008", "10006")
    assert archived(db) == []


def test_a_wrong_archive_secret_is_wecoms_refusal(db, account, records):
    records.add(1, text("m1", "wmA", "zhangsan", "x"))
    accounts.update(db, account, secrets={"secret": "not-the-secret"}, actor=ACTOR)

    result = chat_archive.pull(db, account)

    assert result.error == "40001: WeCom refused: invalid secret"
    assert archived(db) == []


def test_without_the_sdk_the_pull_says_so(db, account, records, monkeypatch):
    accounts.update(db, account, config={"finance_sdk_path": None}, actor=ACTOR)
    monkeypatch.setattr(chat_archive, "get_settings", lambda: type("S", (), {"wecom_finance_sdk": None})())

    result = chat_archive.pull(db, account)

    assert result.error is not None
    assert result.error.startswith("sdk_missing:")
    assert accounts.health(account) == "error"
    with pytest.raises(ArchiveError, match="not at /nowhere"):
        load_sdk("/nowhere/libWeWorkFinanceSdk_C.so")


def test_the_pull_runs_as_a_scheduled_job_that_queues_the_next(db, account, records, run_jobs, frozen_now):
    records.add(1, text("m1", "wmA", "zhangsan", "from the worker"))
    assert chat_archive.schedule(db, account, now=True)

    run_jobs()

    assert archived(db) == [("m1", "in", "from the worker")]
    pending = db.execute(select(Job.run_at).where(Job.kind == chat_archive.PULL, Job.status == "pending")).all()
    assert len(pending) == 1
    assert 0 < (pending[0][0] - clock.now()).total_seconds() <= chat_archive.PULL_MINUTES * 60


def test_a_paused_account_is_not_pulled(db, account, records, run_jobs):
    records.add(1, text("m1", "wmA", "zhangsan", "x"))
    chat_archive.schedule(db, account, now=True)
    accounts.update(db, account, status="paused", actor=ACTOR)

    run_jobs()

    assert archived(db) == []


def test_the_settings_are_checked_when_saving(db, ws, sdk_library):
    with pytest.raises(Exception, match="RSA private key") as info:
        accounts.create(db, kind="wecom_archive", name="Bad", actor=ACTOR,
                        config={"corp_id": "ww1", "publickey_ver": "1"},
                        secrets={"secret": "s", "private_key": "not a key"})
    assert info.value.field == "secrets.private_key"


def test_a_pem_pasted_on_one_line_is_read(rsa_keys):
    pem = _pem(rsa_keys[1])
    assert normalise_pem(pem.replace("\n", "")) == pem


def test_the_connection_test_asks_the_archive(db, account, records):
    assert accounts.check_connection(db, account).ok
    accounts.update(db, account, secrets={"secret": "wrong"}, actor=ACTOR)
    outcome = accounts.check_connection(db, account)
    assert not outcome.ok
    assert "invalid secret" in outcome.message
    assert service.get_account(db, account.id).last_error == outcome.message


def test_a_file_that_is_not_a_library_is_reported_as_unusable(tmp_path):
    fake = tmp_path / "libWeWorkFinanceSdk_C.so"
    fake.write_text("not an ELF file")

    with pytest.raises(ArchiveError) as info:
        load_sdk(str(fake))

    assert info.value.code == "sdk_unusable"


def test_deleting_the_account_keeps_its_messages_and_drops_its_position(db, account, records):
    records.add(1, text("m1", "wmA", "zhangsan", "kept"))
    chat_archive.pull(db, account)

    accounts.delete(db, account, actor=ACTOR)
    db.expire_all()

    assert [(m.external_id, m.account_id) for m in db.execute(select(Message)).scalars()] == [("m1", None)]
    assert db.execute(select(ChatArchiveCursor)).first() is None


@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
       spaces=st.sampled_from(["", " ", "\n", "\r\n", "\t"]))
@settings(max_examples=40, deadline=None)
def test_a_pem_keeps_its_meaning_however_its_body_is_broken_up(cuts, spaces):
    pem = _pem(_PROPERTY_KEY)
    head, _, rest = pem.partition("-----\n")
    body, _, tail = rest.partition("\n-----END")
    flat = body.replace("\n", "")
    for cut in sorted({c % max(1, len(flat)) for c in cuts}, reverse=True):
        flat = flat[:cut] + spaces + flat[cut:]
    mangled = f"{head}-----{spaces}{flat}{spaces}-----END{tail}".replace("\n", spaces if spaces else "")

    assert normalise_pem(mangled) == pem


_PROPERTY_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_a_database_failure_in_a_pull_is_shown_and_the_schedule_goes_on(db, ws, sdk_library, rsa_keys, records,
                                                                         run_jobs, frozen_now, monkeypatch):
    from sqlalchemy.exc import OperationalError

    account = accounts.create(db, kind="wecom_archive", name="Archive", actor=ACTOR,
                              config={"corp_id": "ww123", "publickey_ver": "1", "finance_sdk_path": sdk_library},
                              secrets={"secret": "archive-secret", "private_key": _pem(rsa_keys[1])})
    records.add(1, text("m1", "wmA", "zhangsan", "x"))

    def failing(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(chat_archive._Writer, "store", failing)
    frozen_now.advance(minutes=chat_archive.PULL_MINUTES)
    run_jobs()

    db.refresh(account)
    assert account.last_error is not None
    assert "disk full" in account.last_error
    assert archived(db) == []
    later = db.execute(select(Job.run_at).where(Job.kind == chat_archive.PULL, Job.status == "pending")).scalars()
    assert [run_at > clock.now() for run_at in later] == [True]


def test_the_pull_goes_through_the_configured_proxy(db, account, records):
    records.raw("PROXY http://10.0.0.1:3128")
    records.add(1, text("m1", "wmA", "zhangsan", "via the proxy"))

    direct = chat_archive.pull(db, account)
    accounts.update(db, account, config={"proxy": "http://10.0.0.1:3128"}, actor=ACTOR)
    proxied = chat_archive.pull(db, account)

    assert direct.error is not None
    assert direct.error.startswith("10001:")
    assert proxied.error is None
    assert archived(db) == [("m1", "in", "via the proxy")]
