-- apikeys sqlstore schema, version 5 (PostgreSQL).
-- The rate limits and credits of issue 13 (apikeys.Key.RateLimit, Credits
-- and Usage). rate_limit and rate_window_seconds are the rate limit, both
-- NULL for none; credits_remaining is NULL for a key without credits;
-- refill_amount and refill_interval_seconds are its refill, both NULL for
-- none. window_start, window_used and refilled_at are the counters
-- (apikeys.Usage, in Unix seconds), which Store.Spend and Store.Refund
-- change in place. Nullable columns and constant defaults keep every row
-- and rewrite none (PostgreSQL 11 and later): old rows read as keys
-- without limits, as they were, and a Store of version 4, which names only
-- its own columns, keeps inserting unlimited keys. The CHECKs hold what no
-- Store writes (half a rate limit or refill, a refill without credits, a
-- count below its least); each is tested on the existing rows once, by a
-- scan, not a rewrite. The upper bounds (apikeys.MaxQuota,
-- MaxQuotaSeconds) are checked by the Manager and when a row is read, so
-- that raising them needs no migration. Each column is added only if it is
-- missing, so the text can run again.
ALTER TABLE {{.Table}}
    ADD COLUMN IF NOT EXISTS rate_limit              BIGINT CHECK (rate_limit >= 1),
    ADD COLUMN IF NOT EXISTS rate_window_seconds     BIGINT CHECK (
        (rate_limit IS NULL AND rate_window_seconds IS NULL)
        OR (rate_limit IS NOT NULL AND rate_window_seconds IS NOT NULL AND rate_window_seconds >= 1)),
    ADD COLUMN IF NOT EXISTS credits_remaining       BIGINT CHECK (credits_remaining >= 0),
    ADD COLUMN IF NOT EXISTS refill_amount           BIGINT CHECK (refill_amount >= 1),
    ADD COLUMN IF NOT EXISTS refill_interval_seconds BIGINT CHECK (
        (refill_amount IS NULL AND refill_interval_seconds IS NULL)
        OR (refill_amount IS NOT NULL AND refill_interval_seconds IS NOT NULL AND refill_interval_seconds >= 1
            AND credits_remaining IS NOT NULL)),
    ADD COLUMN IF NOT EXISTS window_start            BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS window_used             BIGINT NOT NULL DEFAULT 0 CHECK (window_used >= 0),
    ADD COLUMN IF NOT EXISTS refilled_at             BIGINT NOT NULL DEFAULT 0;
