"""boto3 on the other end of `jukebox::storage`: reads what our client uploaded, writes what it
downloads. Connection settings come from the data-connection variables (AWS_S3_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_S3_BUCKET).

  storage_peer.py fetch PREFIX DIR    list PREFIX, download every object under DIR, print
                                      `object KEY SIZE` per object
  storage_peer.py put PREFIX DIR      upload every file under DIR to PREFIX with boto3's managed
                                      transfer (multipart above 1 MiB)
"""

import os
import sys

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_S3_ENDPOINT"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def fetch(prefix, local_dir):
    s3, bucket = client(), os.environ["AWS_S3_BUCKET"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = [obj for page in pages for obj in page.get("Contents", [])]
    if not objects:
        sys.exit(f"FAIL: boto3 lists nothing under s3://{bucket}/{prefix}")
    for obj in objects:
        dest = os.path.join(local_dir, obj["Key"][len(prefix):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        s3.download_file(bucket, obj["Key"], dest)
        if os.path.getsize(dest) != obj["Size"]:
            sys.exit(f"FAIL: {obj['Key']}: listed {obj['Size']} bytes, downloaded {os.path.getsize(dest)}")
        print(f"object {obj['Key']} {obj['Size']}")
    print(f"ok: boto3 fetched {len(objects)} objects")


def put(prefix, local_dir):
    s3, bucket = client(), os.environ["AWS_S3_BUCKET"]
    transfer = boto3.s3.transfer.TransferConfig(multipart_threshold=1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    count = 0
    for root, _dirs, files in os.walk(local_dir):
        for name in files:
            path = os.path.join(root, name)
            s3.upload_file(path, bucket, prefix + os.path.relpath(path, local_dir).replace(os.sep, "/"), Config=transfer)
            count += 1
    print(f"ok: boto3 uploaded {count} files")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in {"fetch", "put"}:
        sys.exit(__doc__)
    {"fetch": fetch, "put": put}[sys.argv[1]](sys.argv[2], sys.argv[3])
