"""Notebook 1 on data with chart dates: by default its top-songs table covers the end of December,
so the songs charting then (a dated fixture made from the shared sample) are the ones listed."""
import os
import shutil
from pathlib import Path

import nbformat
import papermill
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = Path(os.environ.get("JUKEBOX_TEST_DATA", REPO.parent / "shared/data"))


@pytest.fixture(autouse=True)
def our_kernelspec(monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(REPO / ".venv/share/jupyter"))


def escaped(text: str) -> str:
    """As the helper crate's tables escape text (crates/jukebox/src/display.rs)."""
    for raw, entity in [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;")]:
        text = text.replace(raw, entity)
    return text


def dated_fixture(folder: Path) -> list[str]:
    """The sample with a chart date on every entry: two songs' entries on Christmas Eve 2023, every
    other entry in March 2024. Returns the two songs' names."""
    rankings = pq.read_table(SAMPLE / "song_rankings_sample.parquet")
    names = rankings.column("name").to_pylist()
    countries = rankings.column("country").to_pylist()
    # Two songs of modest popularity, so that only the date window can put them on top.
    popularity = {}
    for name, country, pop in zip(names, countries, rankings.column("popularity").to_pylist()):
        if country:
            popularity.setdefault(name, []).append(pop)
    modest = sorted((sum(v) / len(v), n) for n, v in popularity.items() if len(v) >= 3)
    chosen = [modest[len(modest) // 4][1], modest[len(modest) // 3][1]]
    dates = ["2023-12-24" if name in chosen else "2024-03-01" for name in names]
    dated = rankings.append_column("snapshot_date", pc.strptime(pa.array(dates), format="%Y-%m-%d", unit="s").cast(pa.date32()))
    folder.mkdir()
    pq.write_table(dated, folder / "song_rankings.parquet")
    shutil.copy(SAMPLE / "song_properties.parquet", folder / "song_properties.parquet")
    return chosen


def test_top_songs_default_to_the_end_of_december(tmp_path):
    chosen = dated_fixture(tmp_path / "data")
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks/1-data_exploration.ipynb"),
        str(output),
        parameters={"data_dir": str(tmp_path / "data")},
        kernel_name="rust",
        progress_bar=False,
        cwd=str(REPO / "notebooks"),
    )
    cells = [c for c in nbformat.read(output, as_version=4).cells if c.cell_type == "code"]
    top = next(c for c in cells if c.source.startswith("explore::top_songs"))
    shown = "".join(str(o.get("data", {}).get("text/html", "")) for o in top.outputs)
    assert "2023-12-20 to 2024-01-01" in shown, shown[:500]
    for name in chosen:
        assert escaped(name) in shown, (name, shown[:2000])
    assert shown.count("<tr") == 1 + len(chosen), "only the songs charting in the window are listed"
    means = next(c for c in cells if c.source.startswith("explore::country_means"))
    assert "popularity" in "".join(str(o.get("data", {}).get("text/html", "")) for o in means.outputs)
