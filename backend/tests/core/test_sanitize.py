"""Sanitizing: markup removed, plain text kept exactly, idempotent, secrets verbatim."""

import html
import random
import uuid
from typing import Annotated

import bleach
import httpx
import pytest
from pydantic import BaseModel, Field, ValidationError

from app.core.sanitize import (
    MAX_PASSES,
    UnsafeString,
    forbidden_character,
    sanitize_json,
    sanitize_text,
)
from app.core.schemas import PlainText, TrimmedText
from tests.conftest import PASSWORD, UserHandle
from tests.core.conftest import assert_problem

ME = "/api/v1/auth/me"

# (sent, stored): markup goes, its text stays, ordinary text is kept exactly.
CASES = [
    ("<b>Al</b>", "Al"),
    ("a < b && c > d", "a < b && c > d"),
    ("Tom & Jerry", "Tom & Jerry"),
    ("<script>alert(1)</script>Bob", "alert(1)Bob"),
    ('<a href="javascript:x()">link</a>', "link"),
    ("<img src=x onerror=alert(1)>Pic", "Pic"),
    ("Hi <!-- hidden --> there", "Hi  there"),
    ("&lt;b&gt;Bob&lt;/b&gt;", "Bob"),  # escaped markup is markup too, never stored live
    ("&amp;lt;script&amp;gt;x", "x"),
    ("Fish &amp; Chips", "Fish & Chips"),
    ("5 > 3", "5 > 3"),
    ("AT&T", "AT&T"),
    ("say \"hi\" & 'bye'", "say \"hi\" & 'bye'"),
    ("日本語 😀 café", "日本語 😀 café"),
    ("x<y", "x<y"),
]


class TestSanitizingOverHttp:
    @pytest.mark.parametrize(("sent", "stored"), CASES)
    async def test_name_is_stored_as_plain_text(
        self, client: httpx.AsyncClient, user: UserHandle, sent: str, stored: str
    ) -> None:
        response = await client.patch(ME, json={"name": sent}, headers=user.headers)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == stored
        assert (await client.get(ME, headers=user.headers)).json()["name"] == stored

    async def test_name_is_trimmed_after_sanitizing(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.patch(ME, json={"name": "  <b> Al </b>\n"}, headers=user.headers)
        assert response.json()["name"] == "Al"

    @pytest.mark.parametrize("blank", ["<b></b>", "   ", "", "<!-- x -->", " <i> </i> ", "\t\n"])
    async def test_name_blank_after_sanitizing_is_422(
        self, client: httpx.AsyncClient, user: UserHandle, blank: str
    ) -> None:
        response = await client.patch(ME, json={"name": blank}, headers=user.headers)
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["body.name"]

    async def test_length_limit_applies_to_the_sanitized_value(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        name = "<b>" + "n" * 100 + "</b>"  # 107 characters sent, 100 stored
        response = await client.patch(ME, json={"name": name}, headers=user.headers)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "n" * 100

    async def test_passwords_are_never_altered(self, client: httpx.AsyncClient) -> None:
        email = f"p-{uuid.uuid4().hex[:8]}@example.com"
        password = "<b>pa&amp;ss</b> <!-- x --> &lt;w&gt;"
        response = await client.post(
            "/api/v1/auth/signup", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200
        stripped = sanitize_text(password)
        assert stripped != password
        wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": stripped})
        assert wrong.status_code == 401

    async def test_password_change_keeps_markup_in_passwords(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        new = "<i>new</i>&amp;pass<word>"
        response = await client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": new},
            headers=user.headers,
        )
        assert response.status_code == 204, response.text
        login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": new})
        assert login.status_code == 200


class TestSanitizeJson:
    def test_secret_keys_are_verbatim(self) -> None:
        document = {
            "password": "<b>x</b>",
            "new_password": "&amp;",
            "refresh_token": "<i>t</i>",
            "nested": [{"access_token": "<p>a</p>", "title": "<p>a</p>"}],
            "recovery_token": ["<b>1</b>"],
        }
        assert sanitize_json(document) == {
            "password": "<b>x</b>",
            "new_password": "&amp;",
            "refresh_token": "<i>t</i>",
            "nested": [{"access_token": "<p>a</p>", "title": "a"}],
            "recovery_token": ["<b>1</b>"],  # a list under a secret key: items too
        }

    def test_secret_values_are_still_checked(self) -> None:
        with pytest.raises(UnsafeString) as caught:
            sanitize_json({"password": "a\x00b"})
        assert caught.value.field == "body.password"

    def test_other_values_pass_unchanged(self) -> None:
        document = {"n": 1, "f": 1.5, "b": True, "z": None, "l": [1, "a"]}
        assert sanitize_json(document) == document

    def test_too_deep_is_refused(self) -> None:
        deep: object = "x"
        for _ in range(40):
            deep = [deep]
        with pytest.raises(UnsafeString):
            sanitize_json(deep)

    def test_escaping_nested_too_deep_is_refused(self) -> None:
        text = "&lt;b&gt;"
        for _ in range(MAX_PASSES):
            text = text.replace("&", "&amp;")
        with pytest.raises(UnsafeString) as caught:
            sanitize_json({"title": text})
        assert caught.value.field == "body.title"
        assert text not in caught.value.message


# Pieces that stress the parser: markup, entities (named, numeric, unterminated,
# double-escaped), comments, quotes, raw-text elements, unicode and whitespace.
# fmt: off
PIECES = [
    "<", ">", "&", "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x3c;", "&#60;", "&lt",
    "&amp;lt;", "&notit;", "&copy", "&#0;", "&#xD800;", "&#128512;", "<b>", "</b>", "<i>",
    "<script>", "</script>", "<a href='x'>", "</a>", "<!--", "-->", "<!-- c -->", "<br/>",
    "<img src=x onerror=alert(1)>", "<p>", "</p>", "<![CDATA[", "]]>", "<?", "?>",
    "<!DOCTYPE html>", "<svg/onload=alert(1)>", "<style>p{}</style>", "<textarea>",
    "<title>", "<plaintext>", "<xmp>", "<math><mi>", "<table><td>", "<<", ">>", "<b", "</",
    '"', "'", "`", "=", "/", " ", "\t", "\n", "\r", "\r\n", "a", "b", "Tom", "Jerry", "é",
    "日本", "😀", "\u200b", "\ufeff", "\u00a0",
]
# fmt: on


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.7:
            parts.append(rng.choice(PIECES))
        else:
            low, high = rng.choice([(32, 126), (0xA0, 0x2FFF), (0x1F300, 0x1F6FF)])
            parts.append(chr(rng.randint(low, high)))
    return "".join(parts)


def _strip_markup(value: str) -> str:
    return html.unescape(bleach.clean(value, tags=set(), attributes={}, strip=True))


def _normalize_newlines(value: str) -> str:
    # The HTML parser turns CR LF and lone CR into LF; that is not markup.
    return value.replace("\r\n", "\n").replace("\r", "\n")


class TestSanitizeTextProperties:
    """Property checks over a few thousand generated strings (fixed seed)."""

    SAMPLES = [_random_text(random.Random(20261122 + i)) for i in range(3_000)]

    def test_idempotent_and_never_live_markup(self) -> None:
        for sample in self.SAMPLES:
            out = sanitize_text(sample)
            assert sanitize_text(out) == out, sample
            # Stripping tags and decoding entities finds nothing left to change.
            assert _strip_markup(out) == _normalize_newlines(out), sample
            assert not forbidden_character(out), sample

    def test_text_without_markup_characters_is_untouched(self) -> None:
        for sample in self.SAMPLES:
            plain = sample.replace("<", "").replace("&", "")
            assert sanitize_text(plain) == plain

    def test_plain_comparisons_and_ampersands_survive(self) -> None:
        rng = random.Random(7)
        words = ["a", "b", "x1", "Tom", "Jerry", "5", "café", "日本"]
        for _ in range(1_000):
            text = " ".join(rng.choice([*words, "<", ">", "&", "&&", "<=", ">="]) for _ in range(8))
            assert sanitize_text(text) == text


class Example(BaseModel):
    title: Annotated[TrimmedText, Field(min_length=1, max_length=10)]
    description: PlainText | None = None


class TestSchemaLevelTwin:
    """TrimmedText / PlainText give the same guarantees without HTTP."""

    def test_title_is_sanitized_then_trimmed(self) -> None:
        assert Example(title="  <b>Hi</b> & bye ").title == "Hi & bye"

    def test_description_is_sanitized_but_not_trimmed(self) -> None:
        model = Example(title="t", description="  <i>a < b</i>  ")
        assert model.description == "  a < b  "

    @pytest.mark.parametrize("blank", ["<b></b>", "   ", "", "<!-- c -->"])
    def test_title_blank_after_sanitizing_is_invalid(self, blank: str) -> None:
        with pytest.raises(ValidationError) as caught:
            Example(title=blank)
        assert caught.value.errors()[0]["loc"] == ("title",)

    def test_length_counts_the_trimmed_value(self) -> None:
        assert Example(title="   " + "x" * 10 + "   ").title == "x" * 10
        with pytest.raises(ValidationError):
            Example(title="x" * 11)

    @pytest.mark.parametrize("bad", ["a\x00", "\x1b[31m", "x\ud800"])
    def test_forbidden_characters_are_refused(self, bad: str) -> None:
        with pytest.raises(ValidationError):
            Example(title=bad)
        with pytest.raises(ValidationError):
            Example(title="t", description=bad)

    def test_twin_is_idempotent_with_the_middleware(self) -> None:
        for sample in TestSanitizeTextProperties.SAMPLES[:500]:
            once = sanitize_text(sample)
            assert Example(title="t", description=once).description == once
