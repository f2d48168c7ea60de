"""WeCom's native chat-archive SDK (`libWeWorkFinanceSdk_C.so`), loaded with ctypes, and the RSA unwrap.

WeCom ships the archive API only as a C library (no package registry carries it): a deployment that
uses the archive downloads it from WeCom's developer site and names its path in the account's
`finance_sdk_path` or in `SIYU_WECOM_FINANCE_SDK`. Without it the pull reports `sdk_missing`.

Each record of `GetChatData` carries `encrypt_random_key`: base64 of a random key encrypted with the
corp's RSA public key of `publickey_ver` (PKCS#1 v1.5). We decrypt it here, in our code, with the
private key kept in the account's secrets, and hand the result to the SDK's `DecryptData`.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The SDK's published return codes.
SDK_ERRORS = {
    10000: "bad parameters",
    10001: "network error",
    10002: "the data could not be parsed",
    10003: "system failure",
    10004: "encryption key error",
    10005: "bad file id",
    10006: "decryption failed",
    10007: "no private key for this message's key version",
    10008: "encrypt_key could not be parsed",
    10009: "this server's IP is not on the archive's trusted list",
    10010: "the data has expired",
    10011: "certificate error",
}
# Codes after which the same call may work a little later (the next scheduled pull tries again).
TRANSIENT = frozenset({10001, 10003})
MAX_LIMIT = 1000  # records per GetChatData call, as WeCom allows


class ArchiveError(Exception):
    """The archive could not be read: `code` is the SDK's or ours (sdk_missing, no_key, bad_key...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"


def sdk_error(code: int, call: str) -> ArchiveError:
    """The error of a non-zero return code of one SDK call."""
    return ArchiveError(str(code), f"{call} failed: {SDK_ERRORS.get(code, 'unknown SDK error')}")


class FinanceSdk:
    """The loaded library with its C signatures declared."""

    def __init__(self, path: str) -> None:
        try:
            lib = ctypes.CDLL(path)
            self._declare(lib)
        except (OSError, AttributeError) as exc:
            raise ArchiveError("sdk_unusable", f"WeCom's finance SDK at {path} could not be loaded: {exc}") from exc
        self.lib = lib
        self.path = path

    @staticmethod
    def _declare(lib: ctypes.CDLL) -> None:
        p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        signatures: dict[str, tuple[list[Any], Any]] = {
            "NewSdk": ([], p),
            "Init": ([p, s, s], i),
            "GetChatData": ([p, ctypes.c_ulonglong, ctypes.c_uint, s, s, i, p], i),
            "DecryptData": ([s, s, p], i),
            "NewSlice": ([], p),
            "FreeSlice": ([p], None),
            "GetContentFromSlice": ([p], p),
            "GetSliceLen": ([p], i),
            "DestroySdk": ([p], None),
        }
        for name, (args, result) in signatures.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, result

    @contextmanager
    def _slice(self) -> Iterator[Any]:
        handle = self.lib.NewSlice()
        try:
            yield handle
        finally:
            self.lib.FreeSlice(handle)

    def _read(self, handle: Any) -> bytes:
        length = self.lib.GetSliceLen(handle)
        pointer = self.lib.GetContentFromSlice(handle)
        return ctypes.string_at(pointer, length) if pointer and length > 0 else b""

    @contextmanager
    def open(self, corp_id: str, secret: str) -> Iterator[Any]:
        """An initialised SDK instance for one corp's archive secret, destroyed afterwards."""
        sdk = self.lib.NewSdk()
        if not sdk:
            raise ArchiveError("10003", "NewSdk returned nothing")
        try:
            code = self.lib.Init(sdk, corp_id.encode(), secret.encode())
            if code != 0:
                raise sdk_error(code, "Init")
            yield sdk
        finally:
            self.lib.DestroySdk(sdk)

    def _call(self, name: str, *args: Any) -> dict[str, Any]:
        """Call an SDK function that fills a slice with JSON; the JSON object, or ArchiveError."""
        with self._slice() as out:
            code = getattr(self.lib, name)(*args, out)
            if code != 0:
                raise sdk_error(code, name)
            raw = self._read(out)
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise ArchiveError("10002", f"{name} gave something that is not JSON: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise ArchiveError("10002", f"{name} gave something that is not a JSON object")
        return answer

    def chat_data(self, sdk: Any, seq: int, limit: int, *, proxy: str = "", password: str = "",
                  timeout: int = 10) -> list[dict[str, Any]]:
        """The records after `seq` (at most `limit`); errors of the call or of its answer raise."""
        answer = self._call("GetChatData", sdk, seq, min(limit, MAX_LIMIT), proxy.encode(), password.encode(),
                            timeout)
        if answer.get("errcode", 0) != 0:
            raise ArchiveError(str(answer.get("errcode")), f"WeCom refused: {answer.get('errmsg', '')}")
        records = answer.get("chatdata") or []
        if not isinstance(records, list):
            raise ArchiveError("10002", "GetChatData's chatdata is not a list")
        return records

    def decrypt(self, random_key: bytes, encrypt_chat_msg: str) -> dict[str, Any]:
        """One message decrypted by the SDK with its unwrapped random key."""
        return self._call("DecryptData", random_key, encrypt_chat_msg.encode())


_loaded: dict[str, FinanceSdk] = {}
_lock = threading.Lock()


def load_sdk(path: str | None) -> FinanceSdk:
    """The SDK at `path`, loaded once per process; `sdk_missing` when no path is set or nothing is there."""
    if not path:
        raise ArchiveError("sdk_missing", "WeCom's finance SDK is not configured: set the account's "
                                          "finance_sdk_path or SIYU_WECOM_FINANCE_SDK (see docs/channels.md)")
    if not os.path.isfile(path):
        raise ArchiveError("sdk_missing", f"WeCom's finance SDK is not at {path}: download "
                                          "libWeWorkFinanceSdk_C.so from WeCom (see docs/channels.md)")
    with _lock:
        if path not in _loaded:
            _loaded[path] = FinanceSdk(path)
        return _loaded[path]


_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


def normalise_pem(pem: str) -> str:
    """PEM text with its line breaks restored (a browser's one-line input drops them when pasting)."""
    match = _PEM.search(pem)
    if match is None:
        return pem.strip()
    body = "".join(match.group(2).split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {match.group(1)}-----", *lines, f"-----END {match.group(1)}-----", ""])


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text (PKCS#1 or PKCS#8, unencrypted; line breaks optional)."""
    try:
        key = serialization.load_pem_private_key(normalise_pem(pem).encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ArchiveError("bad_key", "the private key is not an unencrypted PEM RSA key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ArchiveError("bad_key", "the private key is not an RSA key")
    return key


def unwrap_random_key(key: rsa.RSAPrivateKey, encrypt_random_key: str) -> bytes:
    """The random key of one record: base64-decoded, then RSA-decrypted (PKCS#1 v1.5)."""
    try:
        wrapped = base64.b64decode(encrypt_random_key, validate=True)
        return key.decrypt(wrapped, padding.PKCS1v15())
    except (binascii.Error, ValueError) as exc:
        raise ArchiveError("10008", "encrypt_random_key could not be decrypted with this key version's "
                                    "private key") from exc
