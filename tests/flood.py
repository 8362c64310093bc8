"""A flood of large batch requests from a process of its own (so the measuring process keeps its CPU and GIL).

python tests/flood.py URL CLIENTS SECONDS  ->  prints {"status": count, ...} as JSON when done.
"""
import asyncio
import json
import sys
import time
from collections import Counter

import httpx

from sixstack.data.tables import FEATURES

DIGITS = "1." + "0" * 60 + "1"  # long numbers: more bytes to read and parse per record


def batch_body(n: int = 10_000) -> bytes:
    "A valid /predict/batch body of `n` records of long numbers (about 4.9 MB for 10,000)."
    rec = "{" + ", ".join(f'"{c}": "No"' if c in ("Stage_fear", "Drained_after_socializing") else f'"{c}": {DIGITS}'
                          for c in FEATURES) + "}"
    return ('{"records": [' + ",".join([rec] * n) + "]}").encode()


async def main(url: str, clients: int, seconds: float) -> Counter:
    body, got, end = batch_body(), Counter(), time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        async def one():
            while time.monotonic() < end:
                try: r = await c.post(f"{url}/predict/batch", content=body, headers={"content-type": "application/json"})
                except httpx.HTTPError as e: got[type(e).__name__] += 1; await asyncio.sleep(0.05); continue
                got[r.status_code] += 1
        await asyncio.gather(*(one() for _ in range(clients)))
    return got


if __name__ == "__main__":
    res = asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    print(json.dumps({str(k): v for k, v in res.items()}))
