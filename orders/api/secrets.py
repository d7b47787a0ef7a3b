"""Secrets of marketplace clients and webhook endpoints: made here, encrypted at rest with a key
derived from SECRET_KEY (HMAC verification needs the secret itself, so a one-way hash would not
do), and the signatures of the contract."""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SIGNATURE_VERSION = "v1"


def _fernet() -> Fernet:
    # A fixed label keeps this key apart from every other use of SECRET_KEY.
    digest = hashlib.sha256(b"mallrun.api-secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def new_secret() -> str:
    """32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "mk_" + secrets.token_hex(12)


def sign(key: str | bytes, message: bytes) -> str:
    """`v1,` + base64 HMAC-SHA256 of `message`; a text key is its UTF-8 bytes."""
    mac = hmac.new(key.encode() if isinstance(key, str) else key, message, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode()}"


WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks secrets carry


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + the standard (padded) base64 of 32 random bytes."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret, as Standard Webhooks libraries derive it: the bytes that
    follow `whsec_`, base64-decoded. Secrets issued before that (`whsec_` + unpadded URL-safe
    base64, 43 characters, which never decodes as standard base64) keep signing with their whole
    text, so receivers already set up with one keep verifying until it is rotated."""
    encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error: not standard base64, an earlier secret
        return secret.encode()


def request_message(*, timestamp: str, method: str, path_with_query: str, body: bytes) -> bytes:
    return f"{timestamp}.{method.upper()}.{path_with_query}.".encode() + body


def signature_matches(*, secrets_: list[str], message: bytes, header: str) -> bool:
    """True when any of the space-separated signatures matches any active secret. Every pair is
    compared in constant time, and all pairs are compared, so timing tells nothing."""
    offered = [part for part in header.split(" ") if part]
    matched = False
    for secret in secrets_:
        expected = sign(secret, message).encode()
        for signature in offered:
            matched |= hmac.compare_digest(expected, signature.encode())
    return matched
