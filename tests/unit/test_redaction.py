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
    # a fixed event time: "737" (the CVV) is in about one clock reading in a hundred
    features = redactor.redact(_features())
    value = encode(make_envelope("t-1", features, LiveScore("m@1", 0.1), 1_000))
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


@pytest.mark.parametrize("name", ["PAN", "Pan", "pan", "CVV", "Track2"])
def test_names_match_in_any_case(name: str) -> None:
    redactor = Redactor.from_settings(TapSettings(card_guard="warn"))
    assert name not in redactor.redact({name: "x", "amount": 1.0})


def test_hmac_names_match_in_any_case() -> None:
    redactor = Redactor.from_settings(TapSettings(hmac_fields=("pan",), hmac_key=KEY))
    out = redactor.redact({"PAN": PAN})
    assert out["PAN"] == hmac.new(KEY.encode(), PAN.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "value",
    [{"pan": PAN}, [PAN], (1, 2), {"a": {"b": {"c": 1}}}, b"4111", {1, 2}, object()],
)
def test_nested_and_other_values_are_refused(value: object) -> None:
    redactor = Redactor.from_settings(TapSettings())
    with pytest.raises(ValueError, match="feature 'card' is a"):
        redactor.redact({"amount": 1.0, "card": value})


def test_a_name_that_is_not_text_is_refused() -> None:
    with pytest.raises(ValueError, match="not a string"):
        # type: ignore below: a feature name that is not text, on purpose
        Redactor.from_settings(TapSettings()).redact({1: "x"})  # type: ignore[dict-item]


UNLISTED = {
    "card_number": PAN,
    "note": "customer said 4111 1111 1111 1111 exp 12/27",
    "pan_int": 4111111111111111,
    "amex": "3782-822463-10005",
}


def test_card_guard_drop_is_the_default_and_counts() -> None:
    redactor = Redactor.from_settings(TapSettings())
    out = redactor.redact({**UNLISTED, "amount": 12.5, "mcc": "5411"})
    assert out == {"amount": 12.5, "mcc": "5411"}
    assert read(redactor) == len(UNLISTED)
    value = encode(make_envelope("t-1", out, LiveScore("m@1", 0.1)))
    assert b"4111" not in value and b"3782" not in value


def test_card_guard_hash_replaces_the_value_by_its_token() -> None:
    redactor = Redactor.from_settings(TapSettings(card_guard="hash", hmac_key=KEY))
    out = redactor.redact(dict(UNLISTED))
    for name, original in UNLISTED.items():
        expected = hmac.new(KEY.encode(), str(original).encode(), hashlib.sha256).hexdigest()
        assert out[name] == expected
    assert read(redactor) == len(UNLISTED)


def test_card_guard_hash_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Redactor.from_settings(TapSettings(card_guard="hash"))
    assert caught.value.key == "tap.hmac_key"
    assert "card_guard is hash" in str(caught.value)


def test_card_guard_warn_keeps_counts_and_never_logs_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redactor = Redactor.from_settings(TapSettings(card_guard="warn"))
    with caplog.at_level("WARNING", logger="shadow.redaction"):
        for _ in range(50):
            assert redactor.redact(dict(UNLISTED)) == UNLISTED
    assert read(redactor) == 50 * len(UNLISTED)
    assert len(caplog.records) == 1  # rate-limited
    assert "card number" in caplog.text and "warn" in caplog.text
    assert "4111" not in caplog.text and "3782" not in caplog.text


def test_a_name_holding_a_card_number_is_dropped_and_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redactor = Redactor.from_settings(TapSettings())
    with caplog.at_level("WARNING", logger="shadow.redaction"):
        out = redactor.redact({PAN: 1, "amount": 2.0})
    assert out == {"amount": 2.0}
    assert PAN not in caplog.text


def test_exempt_names_are_left_alone_in_any_case() -> None:
    redactor = Redactor.from_settings(TapSettings(card_guard_exempt=("Signup_Ms",)))
    signup_ms = 1767225600009  # a Luhn-valid 13-digit epoch-ms time
    for _ in range(3):  # the first record learns the names, later ones take the fast path
        out = redactor.redact({"signup_ms": signup_ms, "note": PAN})
        assert out == {"signup_ms": signup_ms}
    assert read(redactor) == 3


def test_learned_names_never_skip_the_value_check() -> None:
    redactor = Redactor.from_settings(TapSettings())
    assert redactor.redact({"note": "hello", "n": 1}) == {"note": "hello", "n": 1}
    assert redactor.redact({"note": PAN, "n": 1}) == {"n": 1}
    assert redactor.redact({"note": "x", "n": 4111111111111111}) == {"note": "x"}


def test_downstream_never_hashes_a_token_again_but_catches_a_raw_pan() -> None:
    tap = TapSettings(hmac_fields=("pan",), hmac_key=KEY, card_guard="hash")
    token = Redactor.from_settings(tap).redact({"pan": PAN})["pan"]
    worker = Redactor.downstream(tap)
    assert worker.redact({"pan": token}) == {"pan": token}
    assert worker.redact({"pan": PAN}) == {"pan": token}  # a producer that did not hash it
    assert worker.redact({"cvv": CVV, "amount": 1.0}) == {"cvv": None, "amount": 1.0}


def read(redactor: Redactor) -> int:
    return int(repr(redactor.caught)[6:-1])


def test_a_known_sensitive_name_in_every_record_is_handled_by_name() -> None:
    redactor = Redactor.from_settings(TapSettings(hmac_fields=("pan",), hmac_key=KEY))
    token = hmac.new(KEY.encode(), PAN.encode(), hashlib.sha256).hexdigest()
    for note in ("hello", "card 5555 5555 5555 4444", "bye"):  # learned after the first
        out = redactor.redact({"PAN": PAN, "cvv": CVV, "amount": 1.0, "note": note})
        expected = {"PAN": token, "amount": 1.0}
        assert out == (expected if "5555" in note else {**expected, "note": note})
    with pytest.raises(ValueError, match="feature 'PAN' is a list"):
        redactor.redact({"PAN": [PAN], "amount": 1.0})
