"""The reference's REST stack, for scripts/bench-summary: FastAPI on uvicorn (one worker) reading
the month it is asked for from Redis on every request, as the reference's UI reads its Valkey.

  reference_summary.py load BASE_URL PREFIX   copy every month of Rivulet's summary API into Redis
  reference_summary.py serve PORT PREFIX      answer GET /api/v1/summary?year=&month= from Redis
  reference_summary.py drop PREFIX            delete what `load` wrote

Each month is a hash (one field per SKU, its entry as JSON) beside the month's other fields, so
a request costs what the reference's did: a Redis round trip, decoding per-SKU values and
FastAPI's serialisation. The answer is the same JSON as Rivulet's (the benchmark checks).
"""
import json
import os
import sys
import urllib.request

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def months():
    for year in range(2000, 2025):
        for month in range(1, 13):
            if (year, month) <= (2024, 2):
                yield year, month


def load(base, prefix):
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    pipe = r.pipeline()
    for year, month in months():
        with urllib.request.urlopen(f"{base}/api/v1/summary?year={year}&month={month}") as answer:
            body = json.load(answer)
        items = body.pop("data")
        key = f"{prefix}:{year}:{month}"
        pipe.set(f"{key}:answer", json.dumps(body))
        for item in items:
            entries = item.pop("manufacturing")
            pipe.set(f"{key}:month", json.dumps(item))
            for entry in entries:
                pipe.hset(key, entry["sku"], json.dumps(entry))
    pipe.execute()


def drop(prefix):
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        r.delete(*keys)


def serve(port, prefix):
    import redis.asyncio as aioredis
    import uvicorn
    from fastapi import FastAPI, HTTPException

    app = FastAPI()
    r = aioredis.Redis.from_url(REDIS_URL)

    @app.get("/api/v1/summary")
    async def summary(year: int, month: int):
        key = f"{prefix}:{year}:{month}"
        async with r.pipeline(transaction=False) as pipe:
            answer, item, entries = await pipe.get(f"{key}:answer").get(f"{key}:month").hgetall(key).execute()
        if answer is None:
            raise HTTPException(status_code=404)
        body = json.loads(answer)
        data = []
        if item is not None:
            month_item = json.loads(item)
            month_item["manufacturing"] = [json.loads(entries[sku]) for sku in sorted(entries)]
            data.append(month_item)
        body["data"] = data
        return body

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "load":
        load(sys.argv[2], sys.argv[3])
    elif command == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif command == "drop":
        drop(sys.argv[2])
    else:
        sys.exit(__doc__)
