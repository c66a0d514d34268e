"""Claim: continuous batching gives at least 3x the tokens/s of one-at-a-time serving at 16
concurrent streams, with p95 time to first token reported.

A small GPT (random weights: speed does not depend on what it learned; 4 layers, width
`--width` 256, context 256, one id per character) is served by the real REST server (`ladder.serve`:
uvicorn, the generate extension, the continuous-batching engine) in a subprocess, twice: with
`max_sequences` 16 (continuous batching) and with `max_sequences` 1 (one request at a time,
the others queued). Each time, 16 clients at once stream `generate_stream` (SSE) for prompts
of 8 to 64 characters (so the batch holds caches of different lengths), each asking for
`--tokens` new tokens with no stop string, so every request generates exactly that many.
Tokens/s is all the tokens over the wall time of the round; time to first token is from
sending a request to its first event (queueing in the server included). One unmeasured
round warms each server up first; then `--rounds` measured rounds: the median tokens/s is
shown with the range, and the time-to-first-token percentiles are over all their requests.

Caveats: client and server share the machine's cores; the server's torch runs on
`--torch-threads` threads. A character's text is one event, except where the tokenizer's
unknown character (U+FFFD) is held back until the next one: the client counts events, the
server's /metrics count tokens, and the table shows the latter.

Run: .venv/bin/python benchmarks/serve_generation.py [--streams 16] [--tokens 64] [--rounds 3]
     [--width 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
import urllib.request

PROMPT_TEXT = "the quick brown fox jumps over the lazy dog. " * 4


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int, max_sequences: int, threads: int, width: int) -> None:
    """Serve the benchmark's GPT as model "gpt" on loopback until killed (a subprocess)."""
    import torch
    import uvicorn

    from ladder.data.lm_tokenizers import CharTokenizer
    from ladder.generate.decoders import TorchDecoder
    from ladder.generate.generator import TextGenerator
    from ladder.models.gpt import GPTConfig, build_gpt
    from ladder.serve.app import create_app
    from ladder.serve.batcher import BatchSettings
    from ladder.serve.generation import GenerationSettings, ServedGenerator
    from ladder.serve.service import InferenceService

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokenizer = CharTokenizer.train([PROMPT_TEXT])
    config = GPTConfig(n_layer=4, n_head=4, n_embd=width, block_size=256)
    generator = TextGenerator(TorchDecoder(build_gpt(config, tokenizer.vocab_size)), tokenizer)
    settings = GenerationSettings(max_sequences=max_sequences, max_new_tokens=1024)
    service = InferenceService([ServedGenerator("gpt", generator, settings)], BatchSettings())

    async def main() -> None:
        await service.start()
        app = create_app(service, 1 << 20)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
        )
        await server.serve()

    asyncio.run(main())


def wait_ready(url: str, seconds: float = 120) -> None:
    """Return once the server answers ready."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not get ready within {seconds:.0f} s")


def generated_tokens(url: str) -> float:
    """The server's ladder_generated_tokens_total for model gpt."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith('ladder_generated_tokens_total{model="gpt"}'):
                return float(line.split()[-1])
    return 0.0


async def one_stream(session, url: str, prompt: str, tokens: int, seed: int) -> float:
    """Stream one request to the end; its time to first token (s)."""
    body = {"text_input": prompt, "parameters": {"max_tokens": tokens, "seed": seed}}
    started = time.perf_counter()
    first = None
    async with session.post(f"{url}/v2/models/gpt/generate_stream", json=body) as answer:
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {await answer.text()}")
        async for line in answer.content:
            if line.startswith(b"data: "):
                if first is None:
                    first = time.perf_counter() - started
                if "error" in json.loads(line[6:]):
                    raise RuntimeError(line.decode())
    return first if first is not None else float("nan")


async def one_round(url: str, streams: int, tokens: int) -> tuple[float, list[float]]:
    """All streams at once: (wall seconds, times to first token)."""
    import aiohttp

    prompts = [PROMPT_TEXT[: 8 + (56 * i) // max(1, streams - 1)] for i in range(streams)]
    connector = aiohttp.TCPConnector(limit=streams)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        firsts = await asyncio.gather(
            *(one_stream(session, url, p, tokens, i) for i, p in enumerate(prompts))
        )
        return time.perf_counter() - started, list(firsts)


def p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method)."""
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def measure(
    max_sequences: int, streams: int, tokens: int, threads: int, rounds: int, width: int
) -> dict[str, float]:
    """Tokens/s (the median round's, and the range) and times to first token (of every
    round's requests) of one server configuration."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, max_sequences, threads, width), daemon=True
    )
    process.start()
    try:
        wait_ready(url)
        asyncio.run(one_round(url, streams, max(4, tokens // 8)))  # warm-up, unmeasured
        speeds, firsts = [], []
        for _ in range(rounds):
            before = generated_tokens(url)
            seconds, round_firsts = asyncio.run(one_round(url, streams, tokens))
            speeds.append((generated_tokens(url) - before) / seconds)
            firsts += round_firsts
    finally:
        process.kill()
        process.join(10)
    return {
        "tokens_per_s": statistics.median(speeds),
        "low": min(speeds),
        "high": max(speeds),
        "ttft_p50": statistics.median(firsts),
        "ttft_p95": p95(firsts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per stream")
    parser.add_argument("--torch-threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per server")
    parser.add_argument("--width", type=int, default=256, help="the GPT's n_embd")
    args = parser.parse_args()
    options = (args.streams, args.tokens, args.torch_threads, max(1, args.rounds), args.width)
    rows = {
        f"continuous (max_sequences {args.streams})": measure(args.streams, *options),
        "one at a time (max_sequences 1)": measure(1, *options),
    }
    print(
        f"{args.streams} streams x {args.tokens} tokens, GPT 4 layers x {args.width}, "
        f"context 256, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'server':<34} {'tok/s':>8} {'(range)':>11} {'TTFT p50':>9} {'p95':>8}")
    for name, r in rows.items():
        spread = f"{r['low']:.0f}-{r['high']:.0f}"
        print(
            f"{name:<34} {r['tokens_per_s']:>8.1f} {spread:>11} "
            f"{1000 * r['ttft_p50']:>7.0f}ms {1000 * r['ttft_p95']:>6.0f}ms"
        )
    batched, single = rows.values()
    ratio = batched["tokens_per_s"] / single["tokens_per_s"]
    print(f"continuous batching: {ratio:.1f}x the tokens/s of one at a time (goal >= 3x)")


if __name__ == "__main__":
    main()
