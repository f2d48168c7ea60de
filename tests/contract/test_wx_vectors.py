"""The published sample values of ../shared/protocol-vectors.md, reproduced by siyu.channels.wxcrypto."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.channels import wxcrypto
from siyu.channels.wxcrypto import CryptoError

OA_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_APPID = "wxb11529c136998cb6"
OA_CIPHERTEXT = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

WECOM_TOKEN = "QDG6eK"
WECOM_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORP = "wx5823bf96d3bd56c7"
WECOM_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="


def test_official_account_sample_encrypts_to_the_published_ciphertext():
    got = wxcrypto.encrypt("我是中文abcd123", OA_KEY, OA_APPID, random16=b"aaaabbbbccccdddd")
    assert got == OA_CIPHERTEXT
    assert wxcrypto.decrypt(OA_CIPHERTEXT, OA_KEY, OA_APPID) == "我是中文abcd123"


def test_wecom_url_verification_sample():
    wxcrypto.check_signature("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", WECOM_TOKEN, "1409659589", "263014780",
                             WECOM_ECHOSTR)
    assert wxcrypto.decrypt(WECOM_ECHOSTR, WECOM_KEY, WECOM_CORP) == "1616140317555161061"


def test_a_forged_signature_or_another_receiver_is_refused():
    with pytest.raises(CryptoError) as bad:
        wxcrypto.check_signature("0" * 40, WECOM_TOKEN, "1409659589", "263014780", WECOM_ECHOSTR)
    assert bad.value.code == "bad_signature"
    with pytest.raises(CryptoError) as wrong:
        wxcrypto.decrypt(OA_CIPHERTEXT, OA_KEY, "wx0000000000000000")
    assert wrong.value.code == "wrong_receiver"
    for junk in ("", "not base64!", "AAAA", OA_CIPHERTEXT[:-8] + "AAAAAAA="):
        with pytest.raises(CryptoError):
            wxcrypto.decrypt(junk, OA_KEY, OA_APPID)


@given(st.text(max_size=300), st.binary(min_size=16, max_size=16))
def test_round_trip(message, random16):
    encrypted = wxcrypto.encrypt(message, WECOM_KEY, WECOM_CORP, random16=random16)
    assert wxcrypto.decrypt(encrypted, WECOM_KEY, WECOM_CORP) == message
