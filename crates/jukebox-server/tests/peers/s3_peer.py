"""boto3, the client OpenShift AI workbenches use, judging an S3 endpoint.

Usage: s3_peer.py COMMAND   with the endpoint and credentials in the data-connection variables
AWS_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_S3_BUCKET.

Commands (each exits 0 and prints `ok: ...` lines when the server behaves, non-zero otherwise):
  upload-tree DIR PREFIX   upload every file under DIR to PREFIX (boto3's managed transfer,
                           which switches to multipart above its threshold)
  fetch-tree PREFIX DIR    list PREFIX and download every object under DIR, printing
                           `object KEY SIZE ETAG` lines
  wrong-credentials        a wrong secret and an unknown key are refused with 403, nothing stored
  truncated-put            a signed PUT whose body stops halfway, then a PUT whose body does not
                           match its Content-MD5: neither object is listed or readable
  hardening                DeleteBucket on a non-empty bucket is 409 BucketNotEmpty and deletes
                           nothing; a body not matching x-amz-content-sha256 is 400
                           XAmzContentSHA256Mismatch; the key //tmp/... is 400; none stores anything
"""

import base64
import hashlib
import os
import socket
import sys
import time
from urllib.parse import urlparse

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ENDPOINT = os.environ["AWS_S3_ENDPOINT"]
ACCESS_KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
BUCKET = os.environ["AWS_S3_BUCKET"]


def client(access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def keys_under(s3, prefix=""):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [obj for page in pages for obj in page.get("Contents", [])]


def ensure_bucket(s3):
    try:
        s3.head_bucket(Bucket=BUCKET)
    except botocore.exceptions.ClientError:
        s3.create_bucket(Bucket=BUCKET)


def upload_tree(local_dir, prefix):
    s3 = client()
    ensure_bucket(s3)
    transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    count = 0
    for root, _dirs, files in os.walk(local_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            key = prefix + os.path.relpath(path, local_dir).replace(os.sep, "/")
            s3.upload_file(path, BUCKET, key, Config=transfer)
            count += 1
    print(f"ok: uploaded {count} files under {prefix}")


def fetch_tree(prefix, local_dir):
    s3 = client()
    objects = keys_under(s3, prefix)
    if not objects:
        sys.exit(f"FAIL: nothing listed under {prefix!r}")
    for obj in objects:
        key = obj["Key"]
        dest = os.path.join(local_dir, key[len(prefix):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        s3.download_file(BUCKET, key, dest)
        head = s3.head_object(Bucket=BUCKET, Key=key)
        size = os.path.getsize(dest)
        if size != obj["Size"] or size != head["ContentLength"]:
            sys.exit(f"FAIL: {key}: listed {obj['Size']} bytes, HEAD {head['ContentLength']}, downloaded {size}")
        print(f"object {key} {size} {head['ETag'].strip(chr(34))}")
    print(f"ok: fetched {len(objects)} objects")


def expect_refused(action, what, expected_codes):
    try:
        action()
    except botocore.exceptions.ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        code = error.response["Error"]["Code"]
        if status != 403 or code not in expected_codes:
            sys.exit(f"FAIL: {what}: expected 403 {expected_codes}, got {status} {code}")
        print(f"ok: {what} refused: {status} {code}")
        return
    sys.exit(f"FAIL: {what} was accepted")


def wrong_credentials():
    good = client()
    ensure_bucket(good)
    expect_refused(
        lambda: client(secret_key="not-the-secret").put_object(Bucket=BUCKET, Key="intruder/wrong-secret", Body=b"x"),
        "PUT with a wrong secret",
        {"SignatureDoesNotMatch", "AccessDenied"},
    )
    expect_refused(
        lambda: client(access_key="nobody").put_object(Bucket=BUCKET, Key="intruder/unknown-key", Body=b"x"),
        "PUT with an unknown access key",
        {"InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch"},
    )
    expect_refused(lambda: client(secret_key="not-the-secret").list_objects_v2(Bucket=BUCKET), "LIST with a wrong secret",
                   {"SignatureDoesNotMatch", "AccessDenied"})
    leftovers = keys_under(good, "intruder/")
    if leftovers:
        sys.exit(f"FAIL: refused uploads were stored: {[o['Key'] for o in leftovers]}")
    print("ok: nothing stored by refused requests")


def signed_put_headers(key, body_sha256, content_length, extra=None):
    """Headers of a SigV4-signed PUT of `content_length` bytes whose SHA-256 is `body_sha256`."""
    url = f"{ENDPOINT}/{BUCKET}/{key}"
    headers = {"Content-Length": str(content_length), "x-amz-content-sha256": body_sha256}
    headers.update(extra or {})
    request = AWSRequest(method="PUT", url=url, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(request)
    return url, dict(request.headers.items())


def send_cut_off_put(key, full_body, sent_bytes):
    """Sends a valid signed PUT for `full_body` but only `sent_bytes` of it, then hangs up."""
    url, headers = signed_put_headers(key, "UNSIGNED-PAYLOAD", len(full_body))
    parsed = urlparse(url)
    head = f"PUT {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items() if name.lower() != "host")
    with socket.create_connection((parsed.hostname, parsed.port)) as sock:
        sock.sendall(head.encode() + b"\r\n" + full_body[:sent_bytes])
        time.sleep(0.3)  # let the server start writing before the body stops
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            reply = sock.recv(4096)
        except (socket.timeout, ConnectionResetError):
            reply = b""
    return reply


def truncated_put():
    s3 = client()
    ensure_bucket(s3)
    body = os.urandom(256 * 1024)
    reply = send_cut_off_put("half/cut-off.bin", body, len(body) // 2)
    status_line = reply.split(b"\r\n", 1)[0]
    print(f"server answered the cut-off PUT with: {status_line!r}")
    time.sleep(0.5)  # give a misbehaving server time to finish a rename
    check_absent(s3, "half/cut-off.bin")

    # A complete body that does not match its Content-MD5 (as if corrupted on the way).
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    try:
        s3.put_object(Bucket=BUCKET, Key="half/bad-digest.bin", Body=body, ContentMD5=wrong_md5)
        sys.exit("FAIL: a PUT with a wrong Content-MD5 was accepted")
    except botocore.exceptions.ClientError as error:
        print(f"ok: wrong Content-MD5 refused: {error.response['Error']['Code']}")
    check_absent(s3, "half/bad-digest.bin")

    # The server is still serving: a proper upload works afterwards.
    s3.put_object(Bucket=BUCKET, Key="half/whole.bin", Body=body)
    got = s3.get_object(Bucket=BUCKET, Key="half/whole.bin")["Body"].read()
    if got != body:
        sys.exit("FAIL: a whole upload after the cut-off one did not round-trip")
    print("ok: the server still accepts whole uploads")


def check_absent(s3, key):
    listed = [o["Key"] for o in keys_under(s3, "half/")]
    if key in listed:
        sys.exit(f"FAIL: {key} is listed after a failed upload: {listed}")
    try:
        s3.get_object(Bucket=BUCKET, Key=key)
        sys.exit(f"FAIL: {key} is readable after a failed upload")
    except botocore.exceptions.ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in {"NoSuchKey", "404"}:
            sys.exit(f"FAIL: GET {key}: expected NoSuchKey, got {code}")
    print(f"ok: {key} is neither listed nor readable")


def send_raw(url, headers, body):
    """Sends one request as given; returns (status, body text)."""
    parsed = urlparse(url)
    head = f"PUT {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items() if name.lower() != "host")
    with socket.create_connection((parsed.hostname, parsed.port)) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        sock.settimeout(10)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def hardening():
    s3 = client()
    ensure_bucket(s3)
    s3.put_object(Bucket=BUCKET, Key="keep/model.onnx", Body=b"weights")
    try:
        s3.delete_bucket(Bucket=BUCKET)
        sys.exit("FAIL: DeleteBucket on a non-empty bucket was accepted")
    except botocore.exceptions.ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        code = error.response["Error"]["Code"]
        if (status, code) != (409, "BucketNotEmpty"):
            sys.exit(f"FAIL: DeleteBucket on a non-empty bucket: expected 409 BucketNotEmpty, got {status} {code}")
        print(f"ok: non-empty DeleteBucket refused: {status} {code}")
    if s3.get_object(Bucket=BUCKET, Key="keep/model.onnx")["Body"].read() != b"weights":
        sys.exit("FAIL: the object is gone after a refused DeleteBucket")
    print("ok: the bucket's objects are untouched")

    body = b"the real body"
    claimed = hashlib.sha256(b"another body!").hexdigest()
    url, headers = signed_put_headers("sha/mismatch.bin", claimed, len(body))
    status, text = send_raw(url, headers, body)
    if status != 400 or "XAmzContentSHA256Mismatch" not in text:
        sys.exit(f"FAIL: x-amz-content-sha256 mismatch: expected 400 XAmzContentSHA256Mismatch, got {status} {text}")
    print(f"ok: x-amz-content-sha256 mismatch refused: {status} XAmzContentSHA256Mismatch")
    if any(o["Key"] == "sha/mismatch.bin" for o in keys_under(s3, "sha/")):
        sys.exit("FAIL: the mismatching body was stored")

    for key in ["/tmp/escape.bin", "a/../../escape.bin"]:
        url, headers = signed_put_headers(key, hashlib.sha256(body).hexdigest(), len(body))
        status, text = send_raw(url, headers, body)
        if not 400 <= status < 500:
            sys.exit(f"FAIL: key {key!r}: expected 4xx, got {status} {text}")
        print(f"ok: key {key!r} refused: {status}")
    # The server still serves.
    s3.put_object(Bucket=BUCKET, Key="after/ok.bin", Body=body)
    print("ok: the server still accepts uploads")


def main(argv):
    commands = {
        "upload-tree": lambda: upload_tree(argv[2], argv[3]),
        "fetch-tree": lambda: fetch_tree(argv[2], argv[3]),
        "wrong-credentials": wrong_credentials,
        "truncated-put": truncated_put,
        "hardening": hardening,
    }
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    commands[argv[1]]()


if __name__ == "__main__":
    main(sys.argv)
