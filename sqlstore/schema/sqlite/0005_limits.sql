-- apikeys sqlstore schema, version 5 (SQLite).
-- The rate limits and credits of issue 13 (apikeys.Key.RateLimit, Credits
-- and Usage). rate_limit and rate_window_seconds are the rate limit, both
-- NULL for none; credits_remaining is NULL for a key without credits;
-- refill_amount and refill_interval_seconds are its refill, both NULL for
-- none. window_start, window_used and refilled_at are the counters
-- (apikeys.Usage, in Unix seconds), which Store.Spend and Store.Refund
-- change in place. Old rows read as keys without limits, as they were,
-- and a Store of version 4 keeps inserting unlimited keys. The CHECKs hold
-- what no Store writes (half a rate limit or refill, a refill without
-- credits, a count below its least); the upper bounds (apikeys.MaxQuota,
-- MaxQuotaSeconds) are checked by the Manager and when a row is read.
ALTER TABLE {{.Table}} ADD COLUMN rate_limit INTEGER CHECK (rate_limit >= 1);
ALTER TABLE {{.Table}} ADD COLUMN rate_window_seconds INTEGER CHECK (
    (rate_limit IS NULL AND rate_window_seconds IS NULL)
    OR (rate_limit IS NOT NULL AND rate_window_seconds IS NOT NULL AND rate_window_seconds >= 1));
ALTER TABLE {{.Table}} ADD COLUMN credits_remaining INTEGER CHECK (credits_remaining >= 0);
ALTER TABLE {{.Table}} ADD COLUMN refill_amount INTEGER CHECK (refill_amount >= 1);
ALTER TABLE {{.Table}} ADD COLUMN refill_interval_seconds INTEGER CHECK (
    (refill_amount IS NULL AND refill_interval_seconds IS NULL)
    OR (refill_amount IS NOT NULL AND refill_interval_seconds IS NOT NULL AND refill_interval_seconds >= 1
        AND credits_remaining IS NOT NULL));
ALTER TABLE {{.Table}} ADD COLUMN window_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{.Table}} ADD COLUMN window_used INTEGER NOT NULL DEFAULT 0 CHECK (window_used >= 0);
ALTER TABLE {{.Table}} ADD COLUMN refilled_at INTEGER NOT NULL DEFAULT 0;
