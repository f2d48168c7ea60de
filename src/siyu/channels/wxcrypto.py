"""The WeChat / WeCom callback crypto: SHA-1 signatures and AES-256-CBC message encryption.

One scheme serves the Official Account's safe mode and every WeCom callback (the platforms' own
"message encryption" pages): key = base64(EncodingAESKey + "="), IV = the key's first 16 bytes,
PKCS#7 padding to 32-byte blocks, plaintext = 16 random bytes + 4-byte big-endian length + message +
the receiver id (AppID or CorpID). The signature is SHA-1 over the sorted concatenation of token,
timestamp, nonce and (when encrypted) the ciphertext, compared in constant time.
`tests/contract/test_wx_vectors.py` reproduces the published sample values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class CryptoError(ValueError):
    """A callback that fails verification or decryption; `code` names why (for logs and the 4xx answer)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def signature(token: str, timestamp: str, nonce: str, encrypted: str | None = None) -> str:
    """SHA-1 hex of the sorted parts (the OA's plain `signature` omits the ciphertext)."""
    parts = [token, timestamp, nonce] + ([encrypted] if encrypted is not None else [])
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(given: str, token: str, timestamp: str, nonce: str, encrypted: str | None = None) -> None:
    """Raise CryptoError unless `given` is the signature of these parts (constant-time comparison)."""
    expected = signature(token, timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected.encode(), (given or "").lower().encode()):
        raise CryptoError("bad_signature", "the signature does not match")


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise CryptoError("bad_key", "an EncodingAESKey is 43 characters long")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise CryptoError("bad_key", "the EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise CryptoError("bad_key", "the EncodingAESKey does not decode to 32 bytes")
    return key


def encrypt(message: str, encoding_aes_key: str, receiver_id: str, *, random16: bytes | None = None) -> str:
    """Base64 ciphertext of `message` for `receiver_id` (AppID / CorpID); `random16` fixed only in tests."""
    key = aes_key(encoding_aes_key)
    body = message.encode()
    plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body + receiver_id.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def decrypt(encrypted: str, encoding_aes_key: str, receiver_id: str | None) -> str:
    """The message inside `encrypted`; CryptoError when it is malformed or meant for another receiver.

    `receiver_id` None skips the receiver check (WeCom's URL verification of a corp not yet saved).
    """
    key = aes_key(encoding_aes_key)
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("bad_ciphertext", "the ciphertext is not base64") from exc
    if not raw or len(raw) % 16:
        raise CryptoError("bad_ciphertext", "the ciphertext is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(raw) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise CryptoError("bad_padding", "the decrypted message has bad padding")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise CryptoError("bad_ciphertext", "the decrypted message is too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise CryptoError("bad_ciphertext", "the decrypted message's length is wrong")
    body, receiver = plain[20 : 20 + length], plain[20 + length :]
    if receiver_id is not None and not hmac.compare_digest(receiver, receiver_id.encode()):
        raise CryptoError("wrong_receiver", "the message was encrypted for another AppID/CorpID")
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise CryptoError("bad_ciphertext", "the decrypted message is not UTF-8") from exc
