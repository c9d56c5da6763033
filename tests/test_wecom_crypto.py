"""WeCom's callback cryptography against Tencent's published sample (weworkapi_python's
callback/Sample.py): the URL verification and a pushed message."""

import base64

import pytest

from bot.channels.wecom.crypto import CryptoError, WeComCrypto, signature

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
ECHO = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
PUSHED = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3Nye"
    "TkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0V"
    "JPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7M"
    "hmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAy"
    "h+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def test_url_verification_sample(crypto):
    echo = crypto.open("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", ECHO)
    assert echo == b"1288432023552776189"


def test_pushed_message_sample(crypto):
    message = crypto.open(
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", PUSHED
    )
    assert message.decode() == (
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun"
        "</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType>"
        "<Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
    )


def test_forged_signature_refused(crypto):
    with pytest.raises(CryptoError):
        crypto.open("0" * 40, "1476422779", "1597212914", PUSHED)
    # A right signature for other values is no signature for these.
    with pytest.raises(CryptoError):
        crypto.open("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422780", "1597212914", PUSHED)


def test_another_organisation_refused():
    other = WeComCrypto(TOKEN, AES_KEY, "ww0000000000000000")
    with pytest.raises(CryptoError):
        other.decrypt(PUSHED)


def test_round_trip_pads_to_32_bytes(crypto):
    for size in (0, 1, 11, 12, 13, 43, 44, 2048):
        message = ("党" * size).encode()[:size]
        sealed, sign = crypto.seal(message, "1700000000", "nonce")
        assert sign == signature(TOKEN, "1700000000", "nonce", sealed)
        raw = base64.b64decode(sealed)
        assert len(raw) % 32 == 0
        assert crypto.open(sign, "1700000000", "nonce", sealed) == message


def test_damaged_ciphertext_refused(crypto):
    for damaged in ("not base64!", "", PUSHED[:-8] + "AAAAAAA="):
        with pytest.raises(CryptoError):
            crypto.decrypt(damaged)


def test_malformed_key_refused():
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, AES_KEY[:-1], CORP_ID)
