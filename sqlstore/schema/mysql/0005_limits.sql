-- apikeys sqlstore schema, version 5 (MySQL 8, MariaDB).
-- The rate limits and credits of issue 13 (apikeys.Key.RateLimit, Credits
-- and Usage). rate_limit and rate_window_seconds are the rate limit, both
-- NULL for none; credits_remaining is NULL for a key without credits;
-- refill_amount and refill_interval_seconds are its refill, both NULL for
-- none. window_start, window_used and refilled_at are the counters
-- (apikeys.Usage, in Unix seconds), which Store.Spend and Store.Refund
-- change in place. Old rows read as keys without limits, as they were,
-- and a Store of version 4 keeps inserting unlimited keys.
-- One ALTER adds all eight columns, so that MySQL, which commits DDL at
-- once, cannot be left with some of them; it runs only when
-- information_schema does not list window_used, so running this again
-- does nothing. No CHECK constraints here: adding one makes MySQL copy the
-- whole table (ALGORITHM=COPY, writes blocked), where the columns alone
-- are added in place. What they would hold is checked when a row is read
-- (a half rate limit or refill, a refill without credits, a count out of
-- range makes the row an error).
SET @apikeys_ddl = IF(
    (SELECT COUNT(*) FROM information_schema.columns
      WHERE table_schema = DATABASE() AND table_name = '{{.TableName}}' AND column_name = 'window_used') = 0,
    'ALTER TABLE {{.Table}}
        ADD COLUMN rate_limit              BIGINT NULL,
        ADD COLUMN rate_window_seconds     BIGINT NULL,
        ADD COLUMN credits_remaining       BIGINT NULL,
        ADD COLUMN refill_amount           BIGINT NULL,
        ADD COLUMN refill_interval_seconds BIGINT NULL,
        ADD COLUMN window_start            BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN window_used             BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN refilled_at             BIGINT NOT NULL DEFAULT 0',
    'DO 0');
PREPARE apikeys_add_limits FROM @apikeys_ddl;
EXECUTE apikeys_add_limits;
DEALLOCATE PREPARE apikeys_add_limits;
