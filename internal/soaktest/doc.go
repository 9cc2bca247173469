// Package soaktest holds the bounded soak test of issue 7 ("Load"). It is
// long, so it is opt-in: it runs only with APIKEYS_SOAK=1 (which .ci/run
// sets) or with APIKEYS_SOAK_DURATION set, and is skipped otherwise. For each
// store (memstore, SQLite, Redis, PostgreSQL, MariaDB/MySQL), with and
// without the verification cache, eight goroutines over four users create,
// authorize, get, update, rotate, list and delete keys through one shared
// Manager for APIKEYS_SOAK_DURATION (default 5s, at most 30s), checking
// throughout that a deleted or rotated-out key never authorizes once its
// Delete or Rotate returned, that no user ever sees or changes another
// user's key, that paged listings never repeat a key nor miss one whose
// state was settled before the listing began, and that every error is an
// expected race; at the end it checks the stores exactly, closes everything
// and verifies with goleak that no goroutine was left behind. The servers
// come from APIKEYS_TEST_REDIS_URL, APIKEYS_TEST_POSTGRES_DSN and
// APIKEYS_TEST_MYSQL_DSN, must be on loopback, and are skipped when unset;
// memstore and SQLite always run when the soak is on. The package has no
// non-test code.
package soaktest
