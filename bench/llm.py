"""LLM stages on a generated 2,000-paper day against the local fake OpenAI server.

Run: ``python -m bench.llm [PAPERS]``. Prints the calls made (against the bound
ceil(N/40) + K), prompt tokens (as the fake reports them, and as litellm counts
the requests), time spent outside the server (our code + litellm + HTTP), and
the time of a re-run that the cache answers. The real litellm client is used.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.generate import papers as generate
from newsletter import llm_store
from newsletter.app import prepare_database
from newsletter.categories import load_taxonomy
from newsletter.classify import classify_llm, group
from newsletter.db import make_engine
from newsletter.llm import _litellm
from newsletter.llm_client import LLMClient
from newsletter.settings import load_settings
from newsletter.summarize import write_reports
from tests.fakes.llm_server import FakeLLMServer

DAY = generate(1)[0].announced


def run(client: LLMClient, count: int) -> tuple[float, float, int]:
    """Classify and write every report: (seconds in the LLM stages, seconds grouping, K)."""
    taxonomy = load_taxonomy()
    papers = generate(count)
    started = time.perf_counter()
    result = classify_llm(papers, taxonomy, client, client.settings.llm_batch_size)
    classified = time.perf_counter()
    grouped = group(papers, result.classification, taxonomy)
    grouped_at = time.perf_counter()
    write_reports(grouped, taxonomy, client.settings.language, client)
    done = time.perf_counter()
    return (classified - started) + (done - grouped_at), grouped_at - classified, len(grouped)


def main(count: int = 2000) -> None:
    started = time.perf_counter()
    lm = _litellm()
    print(
        f"import litellm (once a process, not counted below): {time.perf_counter() - started:.2f} s"
    )
    server = FakeLLMServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    try:
        for concurrency in (1, 4):
            server.reset()
            settings = load_settings(
                database_url=f"sqlite:///{workdir / f'c{concurrency}.db'}",
                llm_model="openai/test-model",
                llm_api_base=server.base_url,
                llm_api_key="sk-test",
                llm_concurrency=concurrency,
            )
            engine = make_engine(settings.database_url)
            prepare_database(engine)
            first, grouping, k = run(LLMClient(settings, engine, DAY), count)
            calls, inside = server.count, server.server_seconds
            reported = sum(u.prompt_tokens for u in llm_store.usage(engine, DAY))
            counted = sum(
                lm.token_counter(model="openai/gpt-4o-mini", messages=s.messages)
                for s in server.seen
            )
            server.reset()
            rerun, _, _ = run(LLMClient(settings, engine, DAY), count)
            bound = math.ceil(count / settings.llm_batch_size) + k
            print(f"\n{count} papers, {k} categories, concurrency {concurrency}:")
            print(f"  calls:                    {calls} (bound ceil({count}/40) + K = {bound})")
            print(f"  prompt tokens (fake's estimate, in the ledger): {reported:,}")
            print(f"  prompt tokens (litellm.token_counter, gpt-4o tokenizer): {counted:,}")
            print(f"  first run (LLM stages):   {first:.2f} s (+ {grouping:.2f} s rule ranking)")
            print(f"    inside the fake server: {inside:.2f} s")
            print(
                f"    outside the server:     {first - inside:.2f} s "
                f"({(first - inside) / calls * 1000:.0f} ms a call)"
            )
            print(
                f"  cached re-run:            {rerun:.2f} s, {server.count} calls "
                f"({first / rerun:.1f}x faster)"
            )
            engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
