#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the real recordings in
../shared/data (a sample; fuzz/corpus/SOURCES.md names them) and the repository's test
fixtures. Run from the repository root; re-running rewrites the same files."""
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "binance"))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def lines(path, limit=None):
    with open(path, "rb") as f:
        out = [l.rstrip(b"\n") for l in f if l.strip()]
    return out[:limit] if limit else out


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


binance = lines(os.path.join(SHARED, "forceorder_frames.jsonl"))
csv_rows = lines(os.path.join(SHARED, "slice_0.csv"), 12)
bybit = lines(os.path.join(ROOT, "plugins/sources/bybit_liquidations/test/data/"
                                 "allliquidation_messages.jsonl"))
okx = lines(os.path.join(ROOT, "plugins/sources/okx_liquidations/test/data/"
                               "liquidation_orders_messages.jsonl"))
with open(os.path.join(ROOT, "plugins/sources/okx_liquidations/test/data/instruments_swap.json"),
          "rb") as f:
    instruments = f.read()

# --- exchange frames -------------------------------------------------------------------------
for i, l in enumerate(binance):
    put("binance_frame", f"shared_frame_{i}", l)
put("binance_frame", "control_reply", b'{"result":null,"id":1}')
put("binance_frame", "control_error", b'{"code":2,"msg":"Invalid request: unknown variable"}')
for i, l in enumerate(bybit):
    put("bybit_frame", f"fixture_{i}", l)
put("bybit_frame", "pong", b'{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}')
put("bybit_frame", "refused",
    b'{"success":false,"ret_msg":"error:handler not found","conn_id":"x","op":"subscribe"}')
for i, l in enumerate(okx):
    put("okx_frame", f"fixture_{i}", b"\0" + l)
put("okx_frame", "error", b'\0{"event":"error","code":"60012","msg":"Invalid request"}')
put("okx_frame", "notice", b'\0{"event":"notice","code":"64008","msg":"service upgrade"}')
put("okx_frame", "instruments", b"\1" + instruments[:4000])

# --- recordings and the file source ----------------------------------------------------------
put("recording", "plain_frames", b"\n".join(binance) + b"\n")
recorded = b"".join(
    json.dumps({"recv_ns": 1761125802306000000 + i, "frame": l.decode()},
               separators=(",", ":")).encode() + b"\n" for i, l in enumerate(binance))
put("recording", "recorded_frames", recorded)
put("recording", "mixed_crlf", recorded.replace(b"\n", b"\r\n") + b"\n  \n" + binance[0])
put("recording", "bad_recording_line", b'{"recv_ns":"x","frame":1}\n{"recv_ns":1,"frame":"a"}\n')
put("file_source", "csv_shared_slice", b"\1" + b"\n".join(csv_rows) + b"\n")
put("file_source", "csv_auto_time_T", b"\6" + b"\n".join(csv_rows).replace(b"timestamp", b"T", 1))
put("file_source", "jsonl_frames", b"\0" + b"\n".join(binance) + b"\n")
put("file_source", "jsonl_renamed", b"\x10" + b"\n".join(binance[:3]))
put("file_source", "jsonl_bybit_original_timing", b"\x20" + b"\n".join(bybit))
put("file_source", "csv_quotes", b'\1a,"b ""q""",c\n1,"x,\ny",2e3\ntrue,,\xef\xbb\xbf\n')

# --- pipeline files --------------------------------------------------------------------------
for name in ("liquidations_replay.toml", "liquidation_alerts.toml"):
    with open(os.path.join(ROOT, "pipelines", name), "rb") as f:
        put("pipeline_toml", "repo_" + name, b"\0" + f.read())
put("pipeline_toml", "catalog_pipeline", b"\0" + b'''[pipeline]
name = "fuzz"
grace_period = "2s"
state_dir = "/tmp/x"

[settings]
min_usd = 100000

[admin]
address = "127.0.0.1"
port = 9464

[sources.gen]
type = "generator"
count = 5
interval = "10ms"
buffer = "1MiB"
symbols = ["BTCUSDT", "ETHUSDT"]
api_key = "${TOKEN}"
extra = { a = 1, b = [1, 2] }

[processors.big]
type = "filter"
inputs = ["gen"]
where = "notional_usd >= $min_usd && side == 'SELL'"
max_in_flight = 4
ordered = true

[processors.split]
type = "route"
inputs = ["big"]
routes = { eth = "symbol == 'ETHUSDT'" }

[processors.chain]
type = "fallback"
inputs = ["split.eth"]
chain = ["a", "b"]

[processors.a]
type = "filter"
where = "true"

[processors.b]
type = "filter"
where = "false"

[sinks.out]
type = "console"
inputs = ["chain", "split.unmatched"]
format = "json"

[[placement]]
name = "front"
nodes = ["gen", "big"]
port = ${PORT}

[[placement]]
name = "back"
nodes = ["split", "chain", "out"]
''')
put("pipeline_toml", "node_options", b"\1" + b'count = 3\ninterval = "1.5s"\nids = [1, 2]\n'
    b'weights = [0.5, 1e3]\nformat = "json"\nloop = true\n')

# --- expressions -----------------------------------------------------------------------------
exprs = [
    "notional_usd >= $min_usd && side == 'SELL'",
    "symbol in ['BTCUSDT', 'ETHUSDT'] || !(price < 10.5)",
    "key startswith 'BTC' and source == \"binance\" or id != 3",
    "@exchange contains 'bin' && event_time > 0 && ingest_time <= 9223372036854775807",
    "maker || $on && quantity == -1 && note == null",
    "not (x >= 1e308) and symbol endswith 'USDT' and $ratio < 0.75",
]
for i, e in enumerate(exprs):
    put("expr", f"expr_{i}", e)

# --- events on an edge (FlatBuffers, built by flatc from JSON) ------------------------------
schema = os.path.join(ROOT, "sdk", "schemas", "event.fbs")
events = [
    {"id": 1, "event_time_ns": 1761125802306000000, "ingest_time_ns": 1761125802307000000,
     "source": "binance", "key": "BTCUSDT",
     "fields": [{"name": "price", "type": "Double", "d": 34603.03},
                {"name": "quantity", "type": "Int", "i": 5},
                {"name": "side", "type": "String", "s": "SELL"},
                {"name": "symbol", "type": "String", "s": "BTCUSDT"},
                {"name": "maker", "type": "Bool", "b": True}],
     "attrs": [{"key": "exchange", "value": "binance"}],
     "hops": [{"stage": "filter", "time_ns": 5}]},
    {"id": 2, "source": "file", "fields": [{"name": "raw", "type": "Bytes", "bin": [0, 255, 7]},
                                           {"name": "n", "type": "Null"}]},
]
with tempfile.TemporaryDirectory() as tmp:
    for i, ev in enumerate(events):
        src = os.path.join(tmp, f"event_{i}.json")
        with open(src, "w") as f:
            json.dump(ev, f)
        r = subprocess.run(["flatc", "-b", "-o", tmp, schema, src], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("flatc: " + r.stderr)
        with open(os.path.join(tmp, f"event_{i}.bin"), "rb") as f:
            put("event", f"event_{i}", f.read())

# --- HTTP responses and the services' replies ----------------------------------------------
def raw(status, headers, body):
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body.encode()

put("http_response", "ok_json", raw(200, [("Content-Type", "application/json")], '{"ok":true}'))
put("http_response", "retry_after_date",
    raw(429, [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], "slow down"))
put("http_response", "retry_after_ms", raw(429, [("retry-after-ms", "1500.5")], "{}"))
put("http_response", "chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n")
put("http_response", "cut_short", b"HTTP/1.1 503 X\r\nContent-Length: 100\r\n\r\nabc")
put("http_response", "url_line", b"https://[::1]:8443/hooks/s3cret?x=1\n")

def reply(status_index, headers, body):
    return bytes([0, status_index]) + "".join(f"{k}: {v}\n" for k, v in headers).encode() + \
        b"\n" + body.encode()

# status index: 0=200 1=204 2=400 3=401 4=403 5=404 9=429 10=500 (see http_fuzz_util.hpp)
put("slack_reply", "ok", reply(0, [], "ok"))
put("slack_reply", "invalid_payload", reply(2, [], "invalid_payload"))
put("slack_reply", "channel_not_found", reply(5, [], "channel_not_found"))
put("slack_reply", "rate_limited", reply(9, [("Retry-After", "30")], ""))
put("slack_reply", "server_error", reply(10, [], "<html>oops</html>"))
put("discord_reply", "no_content", reply(1, [], ""))
put("discord_reply", "rate_limited",
    reply(9, [], '{"message":"You are being rate limited.","retry_after":0.64,"global":false}'))
put("discord_reply", "bad_request", reply(2, [], '{"message":"Cannot send an empty message",'
                                             '"code":50006}'))
put("discord_reply", "unknown_webhook", reply(5, [], '{"message":"Unknown Webhook","code":10015}'))
put("telegram_reply", "ok", reply(0, [], '{"ok":true,"result":{"message_id":5}}'))
put("telegram_reply", "retry_after",
    reply(9, [("Retry-After", "7")], '{"ok":false,"error_code":429,"description":'
          '"Too Many Requests: retry after 5","parameters":{"retry_after":5}}'))
put("telegram_reply", "chat_not_found",
    reply(2, [], '{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}'))
put("telegram_reply", "html", reply(0, [], '<b>BTCUSDT</b> &amp; <a href="x">chart</a> 1h30m'))
put("telegram_reply", "usd", reply(0, [], "$250k"))

def updates(items):
    return b"\0" + json.dumps({"ok": True, "result": items}).encode()

def message(uid, text, user=1001, chat=7, ctype="private"):
    return {"update_id": uid, "message": {"message_id": uid, "from": {"id": user},
                                          "chat": {"id": chat, "type": ctype}, "text": text}}

put("telegram_updates", "commands", updates([
    message(1, "/start"), message(2, "/stats"), message(3, "/symbols"),
    message(4, "/setthreshold 250k"), message(5, "/mute BTCUSDT 1h30m"),
    message(6, "/unmute BTCUSDT"), message(7, "/mute@SluiceAlertsBot eth 2d")]))
put("telegram_updates", "stranger_and_group", updates([
    message(10, "/stats", user=666), message(11, "/stats@OtherBot", chat=-100, ctype="group")]))
put("telegram_updates", "button", updates([
    {"update_id": 20, "callback_query": {"id": "cb1", "from": {"id": 1001},
                                         "data": "mute:BTCUSDT:1h"}},
    {"update_id": 21, "callback_query": {"id": "cb2", "from": {"id": 666}, "data": "mute:X:1h"}}]))
put("telegram_updates", "odd", updates(["not an update", {"update_id": 9, "message": "odd"},
                                        {"update_id": 9223372036854775807}]))
put("telegram_updates", "not_ok", b"\0" + b'{"ok":false,"description":"Conflict"}')

verdict = ('{"risk_level":"HIGH","summary":"$62.6K ETHUSDT long liquidated.",'
           '"recommendation":"Tighten stops on ETH longs."}')
def completion(content, finish="stop"):
    return json.dumps({"id": "chatcmpl-1", "model": "gpt-4o-mini-2024-07-18",
                       "choices": [{"index": 0, "message": {"role": "assistant",
                                                            "content": content},
                                    "finish_reason": finish}],
                       "usage": {"prompt_tokens": 120, "completion_tokens": 40}})

put("llm_reply", "verdict", b"\0\n" + completion(verdict).encode())
put("llm_reply", "fenced", b"\0\n" + completion("```json\n" + verdict + "\n```").encode())
put("llm_reply", "cut_off", b"\0\n" + completion('{"risk_level":"HIGH","summ', "length").encode())
put("llm_reply", "quota", b"\x08\n" + b'{"error":{"message":"You exceeded your current quota",'
    b'"type":"insufficient_quota","code":"insufficient_quota"}}')
put("llm_reply", "rate_limited", b"\x08retry-after-ms: 1200\nRetry-After: 2\n\n"
    b'{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}')
put("llm_reply", "server_error", b"\x09\n<html>bad gateway</html>")
