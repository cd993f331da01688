"""Checks what `jukebox save` left behind, with the official clients of a workbench: boto3 for the
objects and the `model-registry` Python client for the registration. Settings come from the
variables `jukebox up` prints (AWS_S3_*, AWS_*KEY*, JUKEBOX_REGISTRY_URL).

  save_peer.py NAME VERSION PREFIX   prints `object KEY SIZE` for every object under PREFIX,
                                     then the registered version's artifact and metadata as
                                     `field NAME VALUE` lines
"""

import os
import sys
import urllib.parse

import boto3
from botocore.config import Config
from model_registry import ModelRegistry


def main(name, version, prefix):
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_S3_ENDPOINT"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ["AWS_DEFAULT_REGION"],
        config=Config(s3={"addressing_style": "path"}),
    )
    listing = s3.list_objects_v2(Bucket=os.environ["AWS_S3_BUCKET"], Prefix=prefix)
    for obj in listing.get("Contents", []):
        print(f"object {obj['Key']} {obj['Size']}")

    url = urllib.parse.urlparse(os.environ["JUKEBOX_REGISTRY_URL"])
    registry = ModelRegistry(server_address=f"{url.scheme}://{url.hostname}", port=url.port, author="peer", is_secure=False)
    mv = registry.get_model_version(name, version)
    if mv is None:
        sys.exit(f"FAIL: {name} {version} is not registered")
    art = registry.get_model_artifact(name, version)
    if art is None:
        sys.exit(f"FAIL: {name} {version} has no model artifact")
    for field in ["uri", "model_format_name", "model_format_version", "storage_key", "storage_path"]:
        print(f"field {field} {getattr(art, field)}")
    print(f"field author {mv.author}")
    print(f"field description {mv.description}")
    for key, value in sorted(mv.custom_properties.items()):
        print(f"field meta.{key} {value!r}")
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
