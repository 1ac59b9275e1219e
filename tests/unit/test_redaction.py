"""Redaction: card data never reaches the encoded bytes; a missing key is a startup error."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from shadow.envelope import LiveScore, encode, make_envelope
from shadow.errors import ConfigError
from shadow.redaction import Redactor
from shadow.settings import TapSettings

PAN = "4111111111111111"
CVV = "737"
TRACK2 = ";4111111111111111=25121011000012345678?"
KEY = "k" * 32


def _features() -> dict[str, object]:
    return {"pan": PAN, "cvv": CVV, "track2": TRACK2, "amount": 12.5, "mcc": "5411"}


def test_default_settings_drop_pan_cvv_and_track_data() -> None:
    redactor = Redactor.from_settings(TapSettings())
    value = encode(make_envelope("t-1", redactor.redact(_features()), LiveScore("m@1", 0.1)))
    for secret in (PAN, CVV, TRACK2, "411111"):
        assert secret.encode() not in value
    assert b'"amount":12.5' in value
    assert b'"mcc":"5411"' in value


def test_hmac_fields_become_a_keyed_token() -> None:
    tap = TapSettings(hmac_fields=("pan",), hmac_key=KEY)
    redactor = Redactor.from_settings(tap)
    out = redactor.redact(_features())
    expected = hmac.new(KEY.encode(), PAN.encode(), hashlib.sha256).hexdigest()
    assert out["pan"] == expected
    assert "cvv" not in out
    assert "track2" not in out
    value = encode(make_envelope("t-1", out, LiveScore("m@1", 0.1)))
    assert PAN.encode() not in value
    assert CVV.encode() not in value
    assert expected.encode() in value


def test_missing_key_with_hmac_fields_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Redactor.from_settings(TapSettings(hmac_fields=("pan",)))
    assert caught.value.key == "tap.hmac_key"
    assert caught.value.exit_code == 2


def test_empty_key_is_refused_too() -> None:
    with pytest.raises(ConfigError):
        Redactor.from_settings(TapSettings(hmac_fields=("pan",), hmac_key=""))


def test_clean_records_pass_untouched_and_callers_dict_is_never_changed() -> None:
    redactor = Redactor.from_settings(TapSettings())
    clean = {"amount": 1.0, "cvv_match": True}
    assert redactor.redact(clean) is clean
    dirty = _features()
    before = dict(dirty)
    redactor.redact(dirty)
    assert dirty == before


def test_null_hmac_field_stays_null() -> None:
    redactor = Redactor([], ["pan"], KEY.encode())
    assert redactor.redact({"pan": None}) == {"pan": None}


def test_key_is_not_in_the_settings_repr() -> None:
    tap = TapSettings(hmac_fields=("pan",), hmac_key=KEY)
    assert KEY not in repr(tap)
    assert KEY not in str(tap.model_dump())
