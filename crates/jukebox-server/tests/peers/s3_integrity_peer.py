"""boto3 judging whether an S3 endpoint serves each object with the metadata of *its* bytes.

Usage: s3_integrity_peer.py COMMAND [ARGS]   with the endpoint and credentials in the
data-connection variables AWS_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, AWS_S3_BUCKET.

Every GET asks for checksum validation (ChecksumMode=ENABLED: botocore raises
FlexibleChecksumError when the body does not match the CRC32 the server sends) and the body's
MD5 is compared with the ETag (single-part objects) or the parts' MD5s (multipart ones).

Commands (each prints `ok: ...` lines and exits 0 when the server behaves, non-zero otherwise):
  concurrent-puts ROUNDS  ROUNDS rounds of 2-4 concurrent PUTs of one key with different
                          bodies while a reader GETs it: every GET is consistent and the last
                          body is one of those uploaded
  refused-put             PUTs refused for a wrong x-amz-checksum-crc32, a wrong Content-MD5 or
                          a body cut off halfway, each over an existing object: the object is
                          byte-identical afterwards, with its ETag and CRC32
  put-then-multipart      a PUT with CRC32, then a multipart upload to the same key: GET
                          validates (no stale CRC32) and serves the multipart bytes and ETag
  long-keys               keys of 163 to 1,024 bytes round-trip (PUT, HEAD, GET, list, DELETE);
                          a single key part over 255 bytes is a 4xx; never a 5xx
  clashes                 PUT f while f/g exists, PUT h/i while h exists, GET/DELETE of f and
                          h/i: stored or 4xx, never a 5xx; the existing objects are untouched
  copy-delete             CopyObject keeps bytes, ETag, CRC32 and content type (REPLACE changes
                          the type); DeleteObjects deletes, a missing key included
  probe MANIFEST          all of the above but copy-delete, short, for the reliability suite: prints one JSON
                          line (probes, statuses, failures, acknowledged) and writes the
                          acknowledged objects (key, MD5, CRC32) to MANIFEST
  verify MANIFEST         GETs every object of MANIFEST with validation: prints one JSON line
                          (recovered, failures)
"""

import base64
import collections
import hashlib
import json
import os
import socket
import sys
import threading
import time
import zlib
from urllib.parse import quote, urlparse

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# The plain peer's endpoint, credentials and client (the same data-connection variables); its
# folder is this script's, so first on sys.path.
from s3_peer import ACCESS_KEY, BUCKET, ENDPOINT, REGION, SECRET_KEY
from s3_peer import client as plain_client

STATUSES = collections.Counter()
STATUS_LOCK = threading.Lock()
FAILURES = []
# key -> {"md5": hex, "crc32": base64 or None}: what the server acknowledged last for each key.
ACKNOWLEDGED = {}


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def count_status(http_response=None, **_kwargs):
    if http_response is not None:
        with STATUS_LOCK:
            STATUSES[http_response.status_code] += 1


def client():
    s3 = plain_client()
    s3.meta.events.register("after-call.s3", count_status)
    return s3


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def status_of(error):
    return error.response["ResponseMetadata"]["HTTPStatusCode"]


def put(s3, key, body):
    """PUT with a CRC32 the server must verify and keep; records what was acknowledged."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, ChecksumAlgorithm="CRC32")
    ACKNOWLEDGED[key] = {"md5": hashlib.md5(body).hexdigest(), "crc32": crc32_b64(body)}


def checked_get(s3, key, part_md5s=None):
    """GET with checksum validation; fails unless the ETag describes the body. Returns the body."""
    try:
        response = s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        body = response["Body"].read()
    except botocore.exceptions.FlexibleChecksumError as error:
        fail(f"GET {key[:60]!r}: the body does not match the checksum the server sent: {error}")
    etag = response["ETag"].strip('"')
    if "-" in etag:
        if part_md5s is None:
            fail(f"GET {key[:60]!r}: multipart ETag {etag} for an object uploaded in one part")
        want = hashlib.md5(b"".join(part_md5s)).hexdigest() + f"-{len(part_md5s)}"
        if etag != want:
            fail(f"GET {key[:60]!r}: ETag {etag}, but the parts give {want}")
    elif etag != hashlib.md5(body).hexdigest():
        fail(f"GET {key[:60]!r}: ETag {etag} is not the MD5 of the body ({hashlib.md5(body).hexdigest()})")
    crc = response.get("ChecksumCRC32")
    if crc is not None and crc != crc32_b64(body):
        fail(f"GET {key[:60]!r}: CRC32 {crc} does not match the body ({crc32_b64(body)})")
    return body, response


def concurrent_puts(rounds):
    s3 = client()
    key = "race/one-key.bin"
    put(s3, key, b"initial")
    stop = threading.Event()
    reads = [0]
    reader_errors = []

    def reader():
        r = client()
        while not stop.is_set():
            try:
                checked_get(r, key)
                reads[0] += 1
            except Failure as error:
                reader_errors.append(str(error))
                return

    watcher = threading.Thread(target=reader)
    watcher.start()
    puts = 0
    try:
        for round_number in range(rounds):
            writers = 2 + round_number % 3
            bodies = [os.urandom(32 * 1024 * (1 + (round_number + w) % 8)) for w in range(writers)]
            clients = [client() for _ in bodies]
            barrier = threading.Barrier(writers)
            errors = []

            def writer(s3w, body):
                barrier.wait()
                try:
                    s3w.put_object(Bucket=BUCKET, Key=key, Body=body, ChecksumAlgorithm="CRC32")
                except Exception as error:  # noqa: BLE001 - any failure of an upload is reported
                    errors.append(repr(error))

            threads = [threading.Thread(target=writer, args=(c, b)) for c, b in zip(clients, bodies)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                fail(f"round {round_number}: concurrent PUTs failed: {errors}")
            puts += writers
            body, _ = checked_get(s3, key)
            if body not in bodies:
                fail(f"round {round_number}: the object is none of the {writers} bodies just uploaded")
            ACKNOWLEDGED[key] = {"md5": hashlib.md5(body).hexdigest(), "crc32": crc32_b64(body)}
    finally:
        stop.set()
        watcher.join()
    if reader_errors:
        fail(f"a GET during the concurrent PUTs was inconsistent: {reader_errors[0]}")
    print(f"ok: {rounds} rounds, {puts} concurrent PUTs, {reads[0]} GETs during them: every ETag and CRC32 matched its body")


def signed_headers(method, key, body_sha256, content_length, extra):
    url = f"{ENDPOINT}/{BUCKET}/{quote(key)}"
    headers = {"Content-Length": str(content_length), "x-amz-content-sha256": body_sha256}
    headers.update(extra)
    request = AWSRequest(method=method, url=url, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(request)
    return url, dict(request.headers.items())


def raw_put(key, body, extra, send_bytes=None):
    """A signed PUT sent by hand (so the client cannot fix what we break); returns (status, text)."""
    url, headers = signed_headers("PUT", key, "UNSIGNED-PAYLOAD", len(body), extra)
    parsed = urlparse(url)
    head = f"PUT {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items() if name.lower() != "host")
    sent = body if send_bytes is None else body[:send_bytes]
    reply = b""
    with socket.create_connection((parsed.hostname, parsed.port)) as sock:
        sock.sendall(head.encode() + b"\r\n" + sent)
        if send_bytes is not None:
            time.sleep(0.3)
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    try:
        status = int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    with STATUS_LOCK:
        STATUSES[status] += 1
    return status, reply.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def refused_put():
    s3 = client()
    key = "refused/model.onnx"
    original = os.urandom(200 * 1024)
    put(s3, key, original)
    before = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    other = os.urandom(150 * 1024)
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    attempts = [
        ("a wrong x-amz-checksum-crc32", {"x-amz-checksum-crc32": crc32_b64(b"something else")}, None, {400}),
        ("a wrong Content-MD5", {"Content-MD5": wrong_md5}, None, {400}),
        ("a body cut off halfway", {}, len(other) // 2, {0, 400, 408}),
    ]
    for what, headers, send_bytes, expected in attempts:
        status, text = raw_put(key, other, headers, send_bytes)
        if status not in expected:
            fail(f"PUT with {what} over an existing object: expected {sorted(expected)}, got {status} {text[:300]}")
        body, after = checked_get(s3, key)
        if body != original:
            fail(f"after the refused PUT with {what}, the object changed ({len(body)} bytes)")
        if after["ETag"] != before["ETag"] or after.get("ChecksumCRC32") != before.get("ChecksumCRC32"):
            fail(f"after the refused PUT with {what}, ETag/CRC32 changed: {before['ETag']} -> {after['ETag']}")
        print(f"ok: PUT with {what} refused ({status}); the previous object is byte-identical, same ETag and CRC32")
    if before.get("ChecksumCRC32") != crc32_b64(original):
        fail(f"the object's CRC32 was not kept: {before.get('ChecksumCRC32')}")


def put_then_multipart():
    s3 = client()
    key = "replaced/weights.bin"
    put(s3, key, os.urandom(64 * 1024))
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(300 * 1024)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="application/octet-stream")
    etags = []
    for number, data in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data)
        etags.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": etags}
    )
    whole = b"".join(parts)
    body, response = checked_get(s3, key, part_md5s=[hashlib.md5(p).digest() for p in parts])
    if body != whole:
        fail("GET after the multipart upload does not serve the multipart bytes")
    if response.get("ContentType") != "application/octet-stream":
        fail(f"the multipart upload's content type was not kept: {response.get('ContentType')}")
    ACKNOWLEDGED[key] = {"md5": hashlib.md5(whole).hexdigest(), "crc32": None,
                         "parts": [hashlib.md5(p).hexdigest() for p in parts]}
    print(f"ok: a multipart upload over a PUT replaced bytes, ETag and checksums (CRC32 now {response.get('ChecksumCRC32')})")


def expect_no_5xx(what, action, allowed_4xx=True):
    """Runs action; returns ("ok", result) or ("4xx", status code). A 5xx or other error fails."""
    try:
        return "ok", action()
    except botocore.exceptions.ClientError as error:
        status = status_of(error)
        if 400 <= status < 500 and allowed_4xx:
            return "4xx", f"{status} {error.response['Error'].get('Code')}"
        fail(f"{what}: {status} {error.response['Error']}")


def long_keys():
    s3 = client()
    keys = [
        "k" * 163,
        "long/" + "k" * 200,
        "l" * 255,
        "/".join(["a" * 255, "b" * 255, "c" * 255, "d" * 254, "e"]),
        "deep/" + "/".join(["s" * 50] * 20),
    ]
    for key in keys:
        body = os.urandom(1000 + len(key))
        what = f"PUT of a {len(key.encode())}-byte key"
        outcome, detail = expect_no_5xx(what, lambda: put(s3, key, body), allowed_4xx=False)
        s3.head_object(Bucket=BUCKET, Key=key)
        got, _ = checked_get(s3, key)
        if got != body:
            fail(f"the {len(key)}-byte key does not round-trip")
        prefix = key[: min(len(key), 100)]
        listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
                  for o in page.get("Contents", [])]
        if key not in listed:
            fail(f"the {len(key)}-byte key is not listed")
        print(f"ok: a {len(key.encode())}-byte key round-trips (PUT, HEAD, GET, list)")
    for key in keys[:2]:
        s3.delete_object(Bucket=BUCKET, Key=key)
        ACKNOWLEDGED.pop(key, None)
        try:
            s3.head_object(Bucket=BUCKET, Key=key)
            fail(f"the {len(key)}-byte key is still there after DELETE")
        except botocore.exceptions.ClientError as error:
            if status_of(error) != 404:
                fail(f"HEAD after DELETE of the {len(key)}-byte key: {status_of(error)}")
    print("ok: long keys delete")
    for key in ["x" * 256, "y" * 1024]:
        outcome, detail = expect_no_5xx(f"PUT of a key with a {len(key)}-byte part", lambda: put(s3, key, b"z"))
        if outcome == "ok":
            checked_get(s3, key)
        print(f"ok: a key with a {len(key)}-byte part: {outcome} {detail or ''}".rstrip())
        outcome, detail = expect_no_5xx(f"GET of a key with a {len(key)}-byte part", lambda: checked_get(s3, key))
        expect_no_5xx(f"DELETE of a key with a {len(key)}-byte part", lambda: s3.delete_object(Bucket=BUCKET, Key=key))
        ACKNOWLEDGED.pop(key, None)
    outcome, detail = expect_no_5xx("PUT of a 1,025-byte key", lambda: put(s3, "z" * 200 + "/" + "z" * 824, b"z"))
    if outcome == "ok":
        fail("a 1,025-byte key was accepted (S3 allows 1,024)")
    print(f"ok: a 1,025-byte key is refused: {detail}")


def clashes():
    s3 = client()
    put(s3, "f/g", b"inside the folder f")
    put(s3, "h", b"the object h")
    results = {}
    results["PUT f while f/g exists"] = expect_no_5xx("PUT f while f/g exists", lambda: put(s3, "f", b"f itself"))
    results["PUT h/i while h exists"] = expect_no_5xx("PUT h/i while h exists", lambda: put(s3, "h/i", b"under h"))
    if results["PUT f while f/g exists"][0] == "4xx":
        ACKNOWLEDGED.pop("f", None)
    if results["PUT h/i while h exists"][0] == "4xx":
        ACKNOWLEDGED.pop("h/i", None)
    for key in ["f", "h/i"]:
        stored = results[f"PUT {key} while {'f/g' if key == 'f' else 'h'} exists"][0] == "ok"
        outcome, detail = expect_no_5xx(f"GET {key}", lambda: checked_get(s3, key))
        if stored and outcome != "ok":
            fail(f"{key} was stored but GET answers {detail}")
        if not stored and outcome == "ok":
            fail(f"{key} was refused but GET serves it")
        results[f"GET {key}"] = (outcome, detail if outcome == "4xx" else "200")
        outcome, detail = expect_no_5xx(f"HEAD {key}", lambda: s3.head_object(Bucket=BUCKET, Key=key))
        results[f"HEAD {key}"] = (outcome, detail if outcome == "4xx" else "200")
        outcome, detail = expect_no_5xx(f"DELETE {key}", lambda: s3.delete_object(Bucket=BUCKET, Key=key))
        results[f"DELETE {key}"] = (outcome, detail if outcome == "4xx" else "204")
        ACKNOWLEDGED.pop(key, None)
    for key, want in [("f/g", b"inside the folder f"), ("h", b"the object h")]:
        body, _ = checked_get(s3, key)
        if body != want:
            fail(f"{key} changed while clashing names were written and deleted")
    # Once f/ holds nothing, f can be an object.
    s3.delete_object(Bucket=BUCKET, Key="f/g")
    ACKNOWLEDGED.pop("f/g", None)
    put(s3, "f", b"f, once f/ is empty")
    if checked_get(s3, "f")[0] != b"f, once f/ is empty":
        fail("f does not round-trip once f/ is empty")
    for what, (outcome, detail) in results.items():
        print(f"ok: {what}: {'stored' if outcome == 'ok' and what.startswith('PUT') else detail}")
    print("ok: no clash answered 5xx; f/g and h are untouched; f is storable once f/ is empty")


def copy_delete():
    s3 = client()
    body = os.urandom(100 * 1024)
    s3.put_object(Bucket=BUCKET, Key="copy/src.bin", Body=body, ChecksumAlgorithm="CRC32", ContentType="application/x-test")
    s3.copy_object(Bucket=BUCKET, Key="copy/dst.bin", CopySource={"Bucket": BUCKET, "Key": "copy/src.bin"})
    got, response = checked_get(s3, "copy/dst.bin")
    if got != body or response.get("ContentType") != "application/x-test":
        fail(f"the copy differs from its source (content type {response.get('ContentType')})")
    if response.get("ChecksumCRC32") != crc32_b64(body):
        fail(f"the copy's CRC32 is {response.get('ChecksumCRC32')}, not the source's")
    print("ok: CopyObject copies bytes, ETag, CRC32 and content type")
    s3.copy_object(Bucket=BUCKET, Key="copy/dst.bin", CopySource={"Bucket": BUCKET, "Key": "copy/dst.bin"},
                   MetadataDirective="REPLACE", ContentType="text/plain")
    got, response = checked_get(s3, "copy/dst.bin")
    if got != body or response.get("ContentType") != "text/plain":
        fail(f"a self-copy with REPLACE gave content type {response.get('ContentType')}")
    print("ok: a self-copy with MetadataDirective=REPLACE changes the content type, not the bytes")
    outcome, detail = expect_no_5xx("copy of a missing source", lambda: s3.copy_object(
        Bucket=BUCKET, Key="copy/x.bin", CopySource={"Bucket": BUCKET, "Key": "copy/missing.bin"}))
    if outcome != "4xx":
        fail("a copy of a missing source was accepted")
    print(f"ok: a copy of a missing source: {detail}")
    answer = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": "copy/src.bin"}, {"Key": "copy/dst.bin"}, {"Key": "copy/never-there.bin"}]})
    if len(answer.get("Deleted", [])) != 3 or answer.get("Errors"):
        fail(f"DeleteObjects: {answer.get('Deleted')} {answer.get('Errors')}")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="copy/").get("Contents", [])]
    if left:
        fail(f"objects left after DeleteObjects: {left}")
    print("ok: DeleteObjects deletes both objects and accepts a missing key")


def probe(manifest):
    summary = {"probes": [], "failures": []}
    for name, action in [
        ("concurrent PUTs of one key", lambda: concurrent_puts(5)),
        ("refused PUTs over an object", refused_put),
        ("multipart over a PUT", put_then_multipart),
        ("long keys", long_keys),
        ("object/folder clashes", clashes),
    ]:
        summary["probes"].append(name)
        try:
            action()
        except Failure as error:
            summary["failures"].append(f"{name}: {error}")
        except Exception as error:  # noqa: BLE001 - the suite reports every failure, it never stops
            summary["failures"].append(f"{name}: {type(error).__name__}: {error}")
    server_errors = sum(n for status, n in STATUSES.items() if status >= 500)
    if server_errors:
        summary["failures"].append(f"{server_errors} answers were 5xx")
    summary["statuses"] = {str(status): n for status, n in sorted(STATUSES.items())}
    summary["acknowledged"] = len(ACKNOWLEDGED)
    with open(manifest, "w") as out:
        json.dump(ACKNOWLEDGED, out)
    print(json.dumps(summary))


def verify(manifest):
    with open(manifest) as f:
        objects = json.load(f)
    s3 = client()
    recovered, failures = 0, []
    for key, want in objects.items():
        try:
            parts = [bytes.fromhex(p) for p in want["parts"]] if "parts" in want else None
            body, response = checked_get(s3, key, part_md5s=parts)
            if hashlib.md5(body).hexdigest() != want["md5"]:
                raise Failure(f"{key[:60]!r}: other bytes than acknowledged")
            if want["crc32"] is not None and response.get("ChecksumCRC32") != want["crc32"]:
                raise Failure(f"{key[:60]!r}: CRC32 {response.get('ChecksumCRC32')}, acknowledged {want['crc32']}")
            recovered += 1
        except (Failure, botocore.exceptions.ClientError) as error:
            failures.append(str(error))
    print(json.dumps({"recovered": recovered, "failures": failures,
                      "statuses": {str(s): n for s, n in sorted(STATUSES.items())}}))


def main(argv):
    commands = {
        "concurrent-puts": lambda: concurrent_puts(int(argv[2])),
        "refused-put": refused_put,
        "put-then-multipart": put_then_multipart,
        "long-keys": long_keys,
        "clashes": clashes,
        "copy-delete": copy_delete,
        "probe": lambda: probe(argv[2]),
        "verify": lambda: verify(argv[2]),
    }
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    try:
        commands[argv[1]]()
    except Failure as error:
        sys.exit(f"FAIL: {error}")
    server_errors = {s: n for s, n in STATUSES.items() if s >= 500}
    if server_errors and argv[1] not in {"probe", "verify"}:
        sys.exit(f"FAIL: the server answered 5xx: {server_errors}")


if __name__ == "__main__":
    main(sys.argv)
