"""Aliyun's RPC signature, checked against the worked example in Aliyun's own documentation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from siyu.channels.sms import aliyun

# The documentation's example request (DescribeRegions with test credentials) and its published value.
EXAMPLE = {
    "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
}


def test_the_documented_example_signs_to_the_published_value():
    assert aliyun.canonical_query(EXAMPLE) == (
        "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1"
        "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
        "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26"
    )
    assert aliyun.string_to_sign(EXAMPLE).startswith("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions")
    assert aliyun.signature(EXAMPLE, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_follows_rfc_3986_as_aliyun_wants():
    assert aliyun.percent_encode("a b*c~d/é") == "a%20b%2Ac~d%2F%C3%A9"


NAMES = st.text(min_size=1, max_size=8).filter(lambda k: k != "Signature")


@given(st.dictionaries(NAMES, st.text(max_size=12), min_size=1, max_size=5))
def test_any_parameter_change_breaks_the_signature(params):
    signed = {**params, "Signature": aliyun.signature(params, "s")}
    assert aliyun.verify(signed, "s")
    assert not aliyun.verify(signed, "t")
    tampered = {**signed, next(iter(params)): params[next(iter(params))] + "x"}
    assert not aliyun.verify(tampered, "s")
