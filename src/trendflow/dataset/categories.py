"""YouTube video categories: ids and names onto one value.

The trending exports carry the numeric `categoryId` ("1"); yt-dlp sidecars and the Data API's
snippet carry the title ("Film & Animation"). Both become the title, so a model trained on
exports reads a sidecar's category as the same value. The table is YouTube's
`videoCategories.list` (regionCode US, as shipped with the trending exports in
`*_category_id.json`); ids 23 and 34 are both "Comedy". Values that are neither a known id nor a
known title are kept as given (stripped): the model treats them as an unseen category.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

YOUTUBE_CATEGORIES: dict[str, str] = {
    "1": "Film & Animation",
    "2": "Autos & Vehicles",
    "10": "Music",
    "15": "Pets & Animals",
    "17": "Sports",
    "18": "Short Movies",
    "19": "Travel & Events",
    "20": "Gaming",
    "21": "Videoblogging",
    "22": "People & Blogs",
    "23": "Comedy",
    "24": "Entertainment",
    "25": "News & Politics",
    "26": "Howto & Style",
    "27": "Education",
    "28": "Science & Technology",
    "29": "Nonprofits & Activism",
    "30": "Movies",
    "31": "Anime/Animation",
    "32": "Action/Adventure",
    "33": "Classics",
    "34": "Comedy",
    "35": "Documentary",
    "36": "Drama",
    "37": "Family",
    "38": "Foreign",
    "39": "Horror",
    "40": "Sci-Fi/Fantasy",
    "41": "Thriller",
    "42": "Shorts",
    "43": "Shows",
    "44": "Trailers",
}
_BY_NAME = {name.casefold(): name for name in YOUTUBE_CATEGORIES.values()}


def canonical_category(value: Any) -> str | None:
    """'1', '01', 'Film & Animation', ' film & animation ' -> 'Film & Animation'; None stays None."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return YOUTUBE_CATEGORIES.get(str(int(text)), text)
    return _BY_NAME.get(text.casefold(), text)


def canonical_categories(values: pd.Series) -> pd.Series:
    return pd.Series([canonical_category(v) for v in values], index=values.index, dtype="string")
