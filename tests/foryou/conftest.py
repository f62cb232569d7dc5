"""The delivery tests' prepared issue and backends, for sends with "For you" blocks."""

from tests.delivery.conftest import delivery_services, sample_issue_content, sendgrid
from tests.delivery.test_contract import harness

__all__ = ["delivery_services", "harness", "sample_issue_content", "sendgrid"]
