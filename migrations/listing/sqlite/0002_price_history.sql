-- Issue #16: every price a listing has had (was PRAGMA user_version 1 before schema_version).
--
-- Why triggers: the service shares ONE autocommit connection between concurrent requests, so
-- a BEGIN ... COMMIT around "update the listing, then insert the point" would take in the
-- statements other requests run meanwhile. A trigger runs inside the statement that fired
-- it: the INSERT or UPDATE of the listing and its point commit together or not at all,
-- whoever writes the row (the API, the bench seeder, a hand-run UPDATE).

-- The primary key is the index every read uses: one listing's points in time order.
-- changed_at is the listing's updated_at at the change, which only grows, so two points of
-- one listing never share it.
CREATE TABLE price_history (
    listing_id INTEGER NOT NULL,
    price      INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (listing_id, changed_at)
);
-- When the price last CHANGED: the newest point after the first, NULL if the price is still
-- the one the listing had when created (or when this upgrade ran). It serves the
-- price_changed_since filter from an index holding only the listings that ever moved.
ALTER TABLE listings ADD COLUMN price_changed_at INTEGER;
CREATE INDEX listings_by_price_change ON listings (price_changed_at)
    WHERE price_changed_at IS NOT NULL;
CREATE TRIGGER price_history_on_create AFTER INSERT ON listings
BEGIN
    INSERT INTO price_history (listing_id, price, changed_at)
    VALUES (new.id, new.price, new.updated_at);
END;
-- UPDATE OF price: only statements that set the price; WHEN: only if it really moved, so a
-- PATCH that leaves the price as it was records nothing.
CREATE TRIGGER price_history_on_change AFTER UPDATE OF price ON listings
WHEN old.price <> new.price
BEGIN
    INSERT INTO price_history (listing_id, price, changed_at)
    VALUES (new.id, new.price, new.updated_at);
    UPDATE listings SET price_changed_at = new.updated_at WHERE id = new.id;
END;
-- In the DELETE's own statement; no foreign key, whose cascade SQLite applies only on
-- connections that turned foreign_keys on (PostgreSQL: REFERENCES ... ON DELETE CASCADE).
CREATE TRIGGER price_history_on_delete AFTER DELETE ON listings
BEGIN
    DELETE FROM price_history WHERE listing_id = old.id;
END;
-- Listings made before this version: one point, their current price at their updated_at.
INSERT INTO price_history (listing_id, price, changed_at)
    SELECT id, price, updated_at FROM listings;
