-- Issue #16: every price a listing has had, recorded by triggers in the write's own
-- statement (as on SQLite). A deleted listing's points go by the foreign key's cascade.
CREATE TABLE price_history (
    listing_id BIGINT NOT NULL REFERENCES listings (id) ON DELETE CASCADE,
    price      BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (listing_id, changed_at)
);
ALTER TABLE listings ADD COLUMN price_changed_at BIGINT;
CREATE INDEX listings_by_price_change ON listings (price_changed_at)
    WHERE price_changed_at IS NOT NULL;

CREATE FUNCTION price_history_on_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO price_history (listing_id, price, changed_at)
    VALUES (NEW.id, NEW.price, NEW.updated_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER price_history_on_create AFTER INSERT ON listings
    FOR EACH ROW EXECUTE FUNCTION price_history_on_create();

-- BEFORE: the row is written once, with its price_changed_at (SQLite's trigger updates it
-- again after). Only for statements that set the price, and only if it really moved.
CREATE FUNCTION price_history_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO price_history (listing_id, price, changed_at)
    VALUES (NEW.id, NEW.price, NEW.updated_at);
    NEW.price_changed_at := NEW.updated_at;
    RETURN NEW;
END
$$;
CREATE TRIGGER price_history_on_change BEFORE UPDATE OF price ON listings
    FOR EACH ROW WHEN (OLD.price <> NEW.price) EXECUTE FUNCTION price_history_on_change();

INSERT INTO price_history (listing_id, price, changed_at)
    SELECT id, price, updated_at FROM listings;
