"""The SendGrid backend against the validating double: request shape and every bad answer."""

from __future__ import annotations

import time

import pytest

from newsletter.delivery.sendgrid import RetryPolicy, SendGridBackend
from newsletter.errors import ConfigurationError, DeliveryError
from newsletter.models import RenderedIssue
from newsletter.settings import load_settings
from newsletter.statuses import SendOutcome
from tests.delivery.conftest import CHART_CID, MANAGE, UNSUB, batch_of, envelope
from tests.fakes.sendgrid_double import API_KEY, SendGridDouble, Step, rate_limited, server_error
from tests.fakes.smtp_server import free_port


class Sleeps(list[float]):
    """Records the waits the backend asks for instead of sleeping through them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def backend_for(
    double: SendGridDouble,
    *,
    timeout: float = 10,
    sandbox: bool = False,
    sleeps: Sleeps | None = None,
) -> SendGridBackend:
    return SendGridBackend(
        API_KEY,
        "news@example.org",
        "Daily AI Insights",
        host=double.url,
        sandbox=sandbox,
        timeout=timeout,
        retry=RetryPolicy(attempts=4, backoff=0.5, backoff_max=4, max_rate_wait=60),
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


def test_one_request_one_personalization_per_reader(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    envelopes = [envelope(n) for n in range(3)]
    backend_for(sendgrid).send(batch_of(rendered, envelopes))
    (seen,) = sendgrid.seen
    body = seen.body
    assert seen.status == 202 and body is not None
    personalizations = body["personalizations"]
    assert [p["to"] for p in personalizations] == [[{"email": e.to}] for e in envelopes]
    first = personalizations[0]
    assert first["substitutions"] == {
        MANAGE: "https://news.example.org/manage/tok0",
        UNSUB: "https://news.example.org/unsubscribe/tok0",
    }
    assert first["custom_args"] == {"issue_id": "7", "subscriber_id": "0"}
    assert first["headers"]["List-Unsubscribe"] == "<https://news.example.org/unsubscribe/tok0>"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Per reader above; for every reader, only the list's id.
    assert "custom_args" not in body and list(body["headers"]) == ["List-Id"]
    assert body["from"] == {"email": "news@example.org", "name": "Daily AI Insights"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    (chart,) = body["attachments"]
    assert chart["content_id"] == CHART_CID and chart["disposition"] == "inline"
    assert chart["type"] == "image/png"
    assert set(body["categories"]) == {"daily-ai-insights", "nlp", "llm"}
    assert "mail_settings" not in body


def test_sandbox_setting_reaches_mail_settings(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    settings = load_settings(
        mail_backend="sendgrid",
        sendgrid_api_key=API_KEY,
        sendgrid_host=sendgrid.url,
        sendgrid_sandbox=True,
        from_email="news@example.org",
    )
    results = SendGridBackend.from_settings(settings).send(batch_of(rendered, [envelope(1)]))
    assert results[0].status == SendOutcome.SENT
    body = sendgrid.seen[0].body
    assert body is not None and body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert sendgrid.delivered[0].sandbox


def test_more_than_a_thousand_readers_take_two_requests(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    results = backend_for(sendgrid).send(batch_of(rendered, [envelope(n) for n in range(1001)]))
    assert [s.personalizations for s in sendgrid.seen] == [1000, 1]
    assert all(r.status == SendOutcome.SENT for r in results)
    assert sendgrid.recipients.most_common(1)[0][1] == 1


def test_message_id_comes_from_the_x_message_id_header(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    results = backend_for(sendgrid).send(batch_of(rendered, [envelope(1), envelope(2)]))
    assert {r.message_id for r in results} == {sendgrid.delivered[0].message_id}


def test_an_address_sendgrid_rejects_fails_alone(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    envelopes = [envelope(0), envelope(1, "broken@nowhere.invalid"), envelope(2)]
    results = backend_for(sendgrid).send(batch_of(rendered, envelopes))
    assert [r.status for r in results] == [SendOutcome.SENT, SendOutcome.REJECTED, SendOutcome.SENT]
    assert "personalizations.1.to.0.email" in results[1].error
    assert "Does not contain a valid address" in results[1].error
    assert sendgrid.statuses() == [400, 202]
    assert sorted(sendgrid.recipients) == ["reader0@example.com", "reader2@example.com"]


def test_a_400_on_the_whole_request_rejects_all_naming_the_field(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    backend = SendGridBackend(API_KEY, "news@localhost", host=sendgrid.url)
    results = backend.send(batch_of(rendered, [envelope(1), envelope(2)]))
    assert [r.status for r in results] == [SendOutcome.REJECTED, SendOutcome.REJECTED]
    assert "from.email" in results[0].error and "(400)" in results[0].error
    assert sendgrid.delivered == []


def test_401_is_a_clear_error_and_nothing_is_sent(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    backend = SendGridBackend("SG.wrong", "news@example.org", host=sendgrid.url)
    with pytest.raises(DeliveryError, match="NEWSLETTER_SENDGRID_API_KEY") as caught:
        backend.send(batch_of(rendered, [envelope(1)]))
    assert caught.value.status == 401
    assert sendgrid.statuses() == [401] and sendgrid.delivered == []


def test_413_splits_the_request_until_it_fits(
    rendered: RenderedIssue, sendgrid: SendGridDouble
) -> None:
    one = len(backend_for(sendgrid).build_body(batch_of(rendered, [envelope(0)]), [0]))
    assert one
    sendgrid.max_bytes = 6_000  # room for a few readers per request, not twenty
    results = backend_for(sendgrid).send(batch_of(rendered, [envelope(n) for n in range(20)]))
    assert all(r.status == SendOutcome.SENT for r in results)
    assert 413 in sendgrid.statuses()
    assert sorted(sendgrid.recipients.values()) == [1] * 20


def test_413_for_a_single_reader_is_a_clear_error(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    sendgrid.max_bytes = 100
    with pytest.raises(DeliveryError, match="too large") as caught:
        backend_for(sendgrid).send(batch_of(rendered, [envelope(1), envelope(2)]))
    assert caught.value.status == 413
    assert sendgrid.delivered == []


def test_429_waits_for_the_reset_then_sends_once(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    sleeps = Sleeps()
    sendgrid.script(rate_limited(seconds=30))
    results = backend_for(sendgrid, sleeps=sleeps).send(batch_of(rendered, [envelope(1)]))
    assert results[0].status == SendOutcome.SENT
    assert sendgrid.statuses() == [429, 202]
    (wait,) = sleeps
    assert 25 <= wait <= 31  # from X-RateLimit-Reset, not the exponential back-off
    assert sendgrid.recipients["reader1@example.com"] == 1


def test_429_with_retry_after_is_honoured(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    sleeps = Sleeps()
    sendgrid.script(Step(status=429, headers={"Retry-After": "7"}))
    backend_for(sendgrid, sleeps=sleeps).send(batch_of(rendered, [envelope(1)]))
    assert sleeps == [7.0]


def test_500_is_retried_with_back_off(sendgrid: SendGridDouble, rendered: RenderedIssue) -> None:
    sleeps = Sleeps()
    sendgrid.script(server_error(500), server_error(503))
    results = backend_for(sendgrid, sleeps=sleeps).send(batch_of(rendered, [envelope(1)]))
    assert results[0].status == SendOutcome.SENT
    assert sendgrid.statuses() == [500, 503, 202]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]


def test_500_that_persists_defers_the_readers(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    sendgrid.script(*[server_error()] * 4)
    results = backend_for(sendgrid).send(batch_of(rendered, [envelope(1), envelope(2)]))
    assert [r.status for r in results] == [SendOutcome.DEFERRED, SendOutcome.DEFERRED]
    assert "500" in results[0].error and "next run" in results[0].error
    assert sendgrid.delivered == []


def test_a_hang_past_the_timeout_is_unknown_and_not_retried(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    sendgrid.script(Step(hang=30, accept=True))
    started = time.monotonic()
    results = backend_for(sendgrid, timeout=0.5).send(batch_of(rendered, [envelope(1)]))
    assert time.monotonic() - started < 20
    assert results[0].status == SendOutcome.UNKNOWN
    assert "may have been accepted" in results[0].error and "--resend-unknown" in results[0].error
    assert sendgrid.recipients["reader1@example.com"] == 1  # taken once, never again
    assert len(sendgrid.seen) == 1


def test_an_unreachable_host_defers_after_retries(rendered: RenderedIssue) -> None:
    sleeps = Sleeps()
    backend = SendGridBackend(
        API_KEY,
        "news@example.org",
        host=f"http://127.0.0.1:{free_port()}",
        retry=RetryPolicy(attempts=3, backoff=0.1),
        sleep=sleeps,
    )
    results = backend.send(batch_of(rendered, [envelope(1)]))
    assert results[0].status == SendOutcome.DEFERRED and "cannot reach SendGrid" in results[0].error
    assert len(sleeps) == 2


def test_an_empty_api_key_is_refused_before_sending() -> None:
    with pytest.raises(ConfigurationError, match="NEWSLETTER_SENDGRID_API_KEY"):
        SendGridBackend("", "news@example.org")


def test_international_domain_reaches_sendgrid_idna_encoded(
    sendgrid: SendGridDouble, rendered: RenderedIssue
) -> None:
    (result,) = backend_for(sendgrid).send(batch_of(rendered, [envelope(1, "user@bücher.example")]))
    (seen,) = sendgrid.seen
    assert seen.status == 202 and seen.body is not None
    assert seen.body["personalizations"][0]["to"] == [{"email": "user@xn--bcher-kva.example"}]
    assert result.status == SendOutcome.SENT and result.to == "user@bücher.example"


def test_the_mail_names_its_list(sendgrid: SendGridDouble, rendered: RenderedIssue) -> None:
    backend_for(sendgrid).send(batch_of(rendered, [envelope(1)]))
    (seen,) = sendgrid.seen
    assert seen.status == 202 and seen.body is not None
    assert seen.body["headers"] == {
        "List-Id": '"Daily AI Insights" <daily-ai-insights.example.org>'
    }


def test_the_benchmark_double_answers_first_and_counts_what_breaks_the_spec(
    rendered: RenderedIssue,
) -> None:
    """``bench.send``'s double (``validate_later``) accepts at once and checks each body in
    a child process afterwards; a body that breaks the description is counted there."""
    with SendGridDouble(API_KEY, validate_later=True, keep_bodies=False) as double:
        backend = backend_for(double)
        assert backend.send(batch_of(rendered, [envelope(1)]))[0].status == SendOutcome.SENT
        broken = backend_for(double)
        broken.sandbox = True
        body = broken.build_body(batch_of(rendered, [envelope(2)]), [0])
        body["mail_settings"] = {"sandbox_mode": {"enable": "yes"}}  # a string, not a boolean
        assert broken._post(body).status == 202  # answered before it was checked
        deadline = time.monotonic() + 120
        while double.stats()["waiting_validation"] and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = double.stats()
    assert stats["waiting_validation"] == 0 and stats["violations"] == 1
    assert "sandbox_mode" in str(stats["first_violation"])
