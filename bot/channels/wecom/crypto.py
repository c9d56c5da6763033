"""WeCom's callback cryptography (developer document 90968 "加解密方案说明").

Every callback carries `msg_signature`: SHA-1 over the sorted token, timestamp, nonce and
ciphertext. The ciphertext is AES-256-CBC (key = the 43-character EncodingAESKey decoded
from Base64, IV = its first 16 bytes) over random(16) + length(4, network order) + message +
receive id (the CorpID for an application's callbacks), padded PKCS#7 to a multiple of 32.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16


class CryptoError(Exception):
    """A callback that is forged, damaged, or meant for another organisation."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def valid_key(encoding_aes_key: str) -> bool:
    return bool(_KEY.match(encoding_aes_key))


class WeComCrypto:
    """One application's token, key and receive id."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not valid_key(encoding_aes_key):
            raise ValueError("EncodingAESKey must be 43 letters and digits")
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.receive_id = receive_id

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def check(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected, msg_signature.lower()):
            raise CryptoError("signature mismatch")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside a checked ciphertext; refuses another receive id."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as error:
            raise CryptoError("not Base64") from error
        if not data or len(data) % 16:
            raise CryptoError("not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CryptoError("too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length or receive_id.decode(errors="replace") != self.receive_id:
            raise CryptoError("meant for another receiver")
        return message

    def encrypt(self, message: bytes, random: bytes | None = None) -> str:
        random = os.urandom(16) if random is None else random
        plain = random + struct.pack(">I", len(message)) + message + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        """Check the signature, then decrypt: what every callback goes through."""
        self.check(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def seal(self, message: bytes, timestamp: str, nonce: str) -> tuple[str, str]:
        """Encrypt and sign (for a passive reply, and for tests' fake WeCom)."""
        encrypted = self.encrypt(message)
        return encrypted, signature(self.token, timestamp, nonce, encrypted)
