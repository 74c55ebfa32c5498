"""The trending importer flags left-censored videos: already trending on an export's first day."""

from pathlib import Path

import pandas as pd

from trendflow.dataset.trending import import_trending

DATA = Path(__file__).resolve().parents[1] / "data" / "trending"
HEADER = (
    "video_id,title,publishedAt,channelId,channelTitle,categoryId,trending_date,tags,view_count,likes,"
    "dislikes,comment_count,thumbnail_link,comments_disabled,ratings_disabled,description\n"
)


def _row(video: str, day: int, views: int) -> str:
    return (
        f'"{video}","t","2020-08-0{day}T01:00:00Z","UC{video}","c","24","2020-08-1{day}T00:00:00Z","a|b",'
        f'"{views}","{views // 10}","0","{views // 100}","x","False","False","d"\n'
    )


def test_videos_trending_on_an_exports_first_day_are_left_censored(tmp_path):
    # US export starts on day 1, CA on day 2: a video first seen on its file's first day is censored
    (tmp_path / "US_youtube_trending_data.csv").write_text(
        HEADER + _row("aaaaaaaaaaa", 1, 1000) + _row("aaaaaaaaaaa", 2, 2000) + _row("bbbbbbbbbbb", 2, 500)
    )
    (tmp_path / "CA_youtube_trending_data.csv").write_text(
        HEADER + _row("ccccccccccc", 2, 700) + _row("ddddddddddd", 3, 900) + _row("bbbbbbbbbbb", 3, 800)
    )
    snapshots, report = import_trending(str(tmp_path))
    flags = snapshots.groupby("video_id")["left_censored"].agg(["min", "max"])
    assert (flags["min"] == flags["max"]).all()  # one flag per video, on every row
    assert flags["min"].to_dict() == {
        "aaaaaaaaaaa": True,  # US day 1
        "bbbbbbbbbbb": False,  # first seen on US day 2 (and later in CA)
        "ccccccccccc": True,  # CA's first day
        "ddddddddddd": False,
    }
    assert report["left_censored_videos"] == 2
    assert snapshots["left_censored"].dtype == bool


def test_the_real_sample_flags_its_first_day_only():
    snapshots, report = import_trending(str(DATA / "*_youtube_trending_data.csv"))
    first = snapshots.groupby("video_id")["snapshot_at"].min()
    censored = snapshots.groupby("video_id")["left_censored"].first()
    start = pd.Timestamp("2020-08-12", tz="UTC")
    assert censored.equals(first.eq(start).rename("left_censored"))
    assert report["left_censored_videos"] == int(censored.sum()) > 0
