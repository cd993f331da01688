"""The full-size stand-in for the upstream song_rankings.parquet (see kernel/make-full-size)."""
import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SAMPLE = "song_rankings_sample.parquet"
PROPERTIES = "song_properties.parquet"
RANKINGS = "song_rankings.parquet"
STAMP = ".full-size.json"


def chart_days(rankings: pa.Table) -> np.ndarray:
    """The chart day of each row, 0 for the newest: the sample holds each chart (a country's or
    the global Top-50 of one day) as a run of rows with rising `daily_rank`, the days one after
    another, newest first; a country's k-th chart is its k-th newest day."""
    country = pc.fill_null(rankings.column("country"), "").to_numpy(zero_copy_only=False)
    rank = rankings.column("daily_rank").to_numpy()
    new_chart = np.ones(len(rank), dtype=bool)
    new_chart[1:] = (rank[1:] <= rank[:-1]) | (country[1:] != country[:-1])
    starts = np.flatnonzero(new_chart)
    seen: dict[str, int] = {}
    day_of_chart = np.empty(len(starts), dtype=np.int64)
    for i, start in enumerate(starts):
        day_of_chart[i] = seen.get(country[start], 0)
        seen[country[start]] = day_of_chart[i] + 1
    days = np.repeat(day_of_chart, np.diff(np.append(starts, len(rank))))
    if np.any(np.diff(days) < 0):
        raise SystemExit(f"{SAMPLE}: charts are not ordered day after day, newest first; cannot date them")
    return days


def build(data_dir: Path, out: Path, copies: int, newest: dt.date) -> int:
    sample = pq.read_table(data_dir / SAMPLE)
    properties = pq.read_table(data_dir / PROPERTIES, columns=["spotify_id", "event_timestamp"])
    day = chart_days(sample)
    days_per_copy = int(day.max()) + 1
    n = sample.num_rows

    # Copy c covers days c*D .. c*D + D - 1 before the newest day: consecutive blocks, newest first.
    offsets = (np.arange(copies, dtype=np.int64)[:, None] * days_per_copy + day[None, :]).ravel()
    newest_ns = np.datetime64(newest, "ns")
    snapshot = newest_ns - offsets.astype("timedelta64[D]").astype("timedelta64[ns]")

    # album_name: the song's own name (most charting songs are singles); album_release_date: the
    # day song_properties first saw the song, or the chart day if that is earlier (a song charts
    # after its release), as `YYYY-MM-DD` text like the upstream file's.
    first_seen = dict(
        zip(
            properties.column("spotify_id").to_pylist(),
            properties.column("event_timestamp").cast(pa.timestamp("ns")).to_numpy(),
        )
    )
    seen = np.array([first_seen.get(i, newest_ns) for i in sample.column("spotify_id").to_pylist()], "datetime64[ns]")
    release = np.minimum(np.tile(seen, copies), snapshot).astype("datetime64[D]").astype(str)

    whole = pa.concat_tables([sample.replace_schema_metadata(None)] * copies)
    whole = whole.append_column("snapshot_date", pa.array(snapshot, pa.timestamp("ns")))
    whole = whole.append_column("album_name", whole.column("name").cast(pa.large_string()))
    whole = whole.append_column("album_release_date", pa.array(release, pa.large_string()))
    out.mkdir(parents=True, exist_ok=True)
    partial = out / (RANKINGS + ".partial")
    pq.write_table(whole, partial)
    os.replace(partial, out / RANKINGS)
    link = out / PROPERTIES
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to((data_dir / PROPERTIES).resolve())
    return n * copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "jukebox-full-size")
    parser.add_argument("--copies", type=int, default=55)
    parser.add_argument("--newest", type=dt.date.fromisoformat, default=dt.date(2023, 12, 31))
    args = parser.parse_args()
    repo = args.repo.resolve()
    data_dir = args.data_dir or Path(os.environ.get("JUKEBOX_TEST_DATA") or repo.parent / "shared" / "data")
    data_dir = data_dir.resolve()
    for name in (SAMPLE, PROPERTIES):
        if not (data_dir / name).is_file():
            raise SystemExit(f"make-full-size: {data_dir / name} not found (pass --data-dir with the shared sample)")
    out = args.out.resolve()
    if out == repo or repo in out.parents:
        raise SystemExit(f"make-full-size: {out} is inside the repository; pass --out outside {repo}")
    if args.copies < 1:
        raise SystemExit("make-full-size: --copies must be at least 1")

    wanted = {
        "copies": args.copies,
        "newest": args.newest.isoformat(),
        "inputs": {n: (data_dir / n).stat().st_size for n in (SAMPLE, PROPERTIES)},
        "data_dir": str(data_dir),
        "version": 2,
    }
    stamp = out / STAMP
    if stamp.is_file() and (out / RANKINGS).is_file() and json.loads(stamp.read_text()) == wanted:
        print(f"make-full-size: reusing {out} ({pq.read_metadata(out / RANKINGS).num_rows} rows)", file=sys.stderr)
    else:
        rows = build(data_dir, out, args.copies, args.newest)
        stamp.write_text(json.dumps(wanted))
        print(f"make-full-size: wrote {rows} rows to {out / RANKINGS}", file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main()
