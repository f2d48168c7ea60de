"""SMS channel: templated text messages through a provider (Aliyun SMS), delivery receipts and replies.

An `sms` account is one provider account and sign. Content is `{"type": "sms", "template_code",
"params": {...}, "text"}`: the provider renders its approved template with `params`; `text` is what the
archive keeps (the rendered words, for search and length checks). Receipts and replies arrive as
pushes at `/hooks/sms/{account}/report` and `/hooks/sms/{account}/inbound` (`siyu.channels.sms.hooks`),
each carrying the account's push token, since the provider does not sign its pushes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from siyu.channels.base import ChannelError, ConfigField, PlatformRules, SendResult, register_adapter
from siyu.channels.models import ChannelAccount
from siyu.channels.sms.aliyun import DEFAULT_ENDPOINT, DEFAULT_REGION, AliyunSms
from siyu.channels.sms.provider import SmsProvider
from siyu.channels.webhook import check_url
from siyu.core.errors import Invalid

# Mainland carriers: one part holds 70 characters (signature 【…】 included); a longer message is sent as
# parts of 67, and Aliyun takes at most 500 characters.
PART_CHARS = 70
LONG_PART_CHARS = 67
MAX_CHARS = 500
PUSH_TOKEN_MIN = 16


def N_(message: str) -> str:
    return message


def length(text: str, sign: str) -> int:
    """Characters the carrier counts: the text plus the sign in its 【】 brackets."""
    return len(text) + len(sign) + 2


def parts(text: str, sign: str) -> int:
    """How many parts (billed messages) the text makes with this sign."""
    n = length(text, sign)
    return 1 if n <= PART_CHARS else math.ceil(n / LONG_PART_CHARS)


def provider_of(account: ChannelAccount) -> SmsProvider:
    """The provider client of an account (Aliyun is the one provider so far)."""
    config, secrets = account.config, account.secrets
    return AliyunSms(access_key_id=str(config.get("access_key_id", "")),
                     access_key_secret=str(secrets.get("access_key_secret", "")),
                     region=str(config.get("region") or DEFAULT_REGION),
                     endpoint=str(config.get("endpoint") or DEFAULT_ENDPOINT))


class SmsAdapter:
    kind = "sms"
    label = N_("SMS (Aliyun)")
    rules = PlatformRules(
        identity_type="phone", consent_channel="sms", max_text=MAX_CHARS, content_types=("sms",), sends_at_once=8,
        notes=(N_("One part holds 70 characters including the sign; longer texts go in parts of 67."),
               N_("Aliyun limits each number to 1 message a minute, 5 an hour and 10 a day per sign by default."),
               N_("Only templates approved by Aliyun can be sent; replies TD, T, N or 退订 unsubscribe.")),
    )
    fields: tuple[ConfigField, ...] = (
        ConfigField("access_key_id", N_("AccessKey ID")),
        ConfigField("access_key_secret", N_("AccessKey secret"), secret=True),
        ConfigField("sign_name", N_("Sign name"), help=N_("The approved signature shown as 【…】.")),
        ConfigField("region", N_("Region"), required=False, default=DEFAULT_REGION),
        ConfigField("endpoint", N_("API endpoint"), required=False, default=DEFAULT_ENDPOINT),
        ConfigField("push_token", N_("Push token"), secret=True,
                    help=N_("Add ?token=<this> to the receipt and reply URLs you give Aliyun.")),
    )
    accepts_idempotency_key = False

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        if not str(config.get("access_key_id") or "").strip():
            raise Invalid("the AccessKey ID is required", field="config.access_key_id")
        if not str(secrets.get("access_key_secret") or ""):
            raise Invalid("the AccessKey secret is required", field="secrets.access_key_secret")
        sign = str(config.get("sign_name") or "").strip()
        if not sign or len(sign) > 12:
            raise Invalid("a sign name of 1 to 12 characters", field="config.sign_name")
        if config.get("endpoint"):
            check_url(config["endpoint"], "config.endpoint")
        if len(str(secrets.get("push_token") or "")) < PUSH_TOKEN_MIN:
            raise Invalid(f"a push token of at least {PUSH_TOKEN_MIN} characters", field="secrets.push_token")

    async def check_connection(self, account: ChannelAccount) -> str:
        return await provider_of(account).check()

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        template = str(content.get("template_code") or "")
        if not template:
            raise ChannelError("no_template", "an SMS needs the template_code of an approved template")
        params = content.get("params") or {}
        if not isinstance(params, Mapping):
            raise ChannelError("bad_params", "template params are an object of names to values")
        sign = str(content.get("sign_name") or account.config.get("sign_name") or "")
        text = str(content.get("text") or "")
        if length(text, sign) > MAX_CHARS:
            raise ChannelError("too_long", f"{length(text, sign)} characters with the sign; at most {MAX_CHARS}")
        biz_id = await provider_of(account).send(address, sign, template, params, idempotency_key)
        return SendResult(external_id=biz_id or None)


ADAPTER = register_adapter(SmsAdapter())
