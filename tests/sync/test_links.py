"""Node-link URLs and pins (sync.links) and enrolment codes (sync.peers): pure rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from registry.problems import Problem
from registry.settings import Settings, SettingsError, load_settings
from sync.links import LinkRefused, checked_link_url, is_loopback, normalised_pin
from sync.peers import CODE_ALPHABET, code_sha256, new_enrolment_code, normalised_code

POST = Settings()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "[::1]", "::1", "localhost", "LOCALHOST", "localhost."],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["192.0.2.10", "10.0.0.1", "::2", "localhost.example", "national.example", ""]
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    "url",
    [
        "https://national.example:8443/",
        "https://192.0.2.10",
        "http://127.0.0.1:8000",
        "http://[::1]:8000",
        "http://localhost:8000/",
    ],
)
def test_https_anywhere_and_plain_http_to_loopback_are_allowed(url: str) -> None:
    assert checked_link_url(url, POST) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10:8000",
        "http://national.example",
        "http://127.0.0.1.nip.io",
        "ftp://national.example",
        "national.example:8443",
        "https://",
        "https://user:secret@national.example",
        "https://national.example:99999",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(LinkRefused):
        checked_link_url(url, POST)


def test_plain_http_message_names_the_url_and_the_way_out() -> None:
    with pytest.raises(LinkRefused) as refused:
        checked_link_url("http://192.0.2.10:8000", POST)
    assert "192.0.2.10" in str(refused.value) and "https://" in str(refused.value)
    assert "BORDERPOST_ALLOW_PLAIN_HTTP_LINKS" in str(refused.value)


def test_the_development_flag_allows_plain_http_on_a_post_only() -> None:
    flagged = replace(POST, allow_plain_http_links=True)
    assert checked_link_url("http://192.0.2.10:8000", flagged) == "http://192.0.2.10:8000"
    assert load_settings({"BORDERPOST_ALLOW_PLAIN_HTTP_LINKS": "1"}).allow_plain_http_links
    with pytest.raises(SettingsError, match="ALLOW_PLAIN_HTTP_LINKS"):
        load_settings(
            {
                "BORDERPOST_ROLE": "national",
                "BORDERPOST_SECRET_KEY": "s" * 40,
                "BORDERPOST_DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1/db",
                "BORDERPOST_ALLOW_PLAIN_HTTP_LINKS": "true",
            }
        )


def test_pins_accept_openssl_and_hex_forms() -> None:
    digest = "5f" * 32
    assert normalised_pin(digest.upper()) == digest
    assert normalised_pin(":".join(["5F"] * 32)) == digest
    for wrong in ("5f" * 31, "zz" * 32, ""):
        with pytest.raises(LinkRefused):
            normalised_pin(wrong)


def test_enrolment_codes_are_random_readable_and_normalised() -> None:
    codes = {new_enrolment_code() for _ in range(200)}
    assert len(codes) == 200
    for code in list(codes)[:20]:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4] * 5
        assert set("".join(groups)) <= set(CODE_ALPHABET)
        assert normalised_code(code.lower().replace("-", " ")) == code.replace("-", "")
        assert code_sha256(code) == code_sha256(code.lower())
        assert code not in code_sha256(code)
    for wrong in ("", "ABCD", "O0O0-I1I1-O0O0-I1I1-O0O0", "A" * 21):
        with pytest.raises(Problem) as refused:
            normalised_code(wrong)
        assert refused.value.invalid_params[0]["name"] == "code"
