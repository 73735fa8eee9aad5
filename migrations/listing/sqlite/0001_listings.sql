-- The listings table as the first release made it (IF NOT EXISTS: a file made by code before
-- schema_version existed already has it, and is adopted at its PRAGMA user_version).
CREATE TABLE IF NOT EXISTS listings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL,
    listing_type TEXT    NOT NULL CHECK (listing_type IN ('rent', 'sale')),
    price        INTEGER NOT NULL CHECK (price > 0),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- One index per query shape: the whole list, and one user's list, both newest first.
CREATE INDEX IF NOT EXISTS listings_newest ON listings (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS listings_by_user_newest
    ON listings (user_id, created_at DESC, id DESC);
-- A listing_type filter reads its rows already in list order, so a page stops at LIMIT.
-- With user_id too, one user's listings (few) come from the index above and are filtered.
CREATE INDEX IF NOT EXISTS listings_by_type_newest
    ON listings (listing_type, created_at DESC, id DESC);
-- A price range (min_price and max_price) is a range of this index, then sorted newest
-- first: the cost follows the number of listings in the range, not the page size. A single
-- bound usually matches most listings, so SQLite rightly walks listings_newest in order and
-- skips the rest, stopping at the page. A (listing_type, price) index would not serve a price
-- range alone. Each index costs every write a little: hence none per combination of filters.
CREATE INDEX IF NOT EXISTS listings_by_price ON listings (price);
