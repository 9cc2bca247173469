// Package faulttest holds fault-injection tests for the Manager on the real
// stores (Redis through redisstore, PostgreSQL and MariaDB/MySQL through
// sqlstore). Each test puts an internal/faultproxy TCP proxy between the
// store's client and the server and then makes the server unreachable
// (connection refused, open connections cut), hung (connections open, no
// answer) or flaky (cuts and outages between batches of writes), and checks
// that every Manager operation and the middleware fail closed within their
// deadlines with a *apikeys.StoreError (503 over HTTP, never 2xx or 401),
// that a cached key is allowed during an outage only within Cache.TTL, that
// the same Manager, store and client recover by themselves when the server
// comes back, and that no write is ever half applied. They take tens of
// seconds, so they are opt-in: they run only with APIKEYS_FAULTS=1 (which
// .ci/run sets), and then for each store only when
// APIKEYS_TEST_REDIS_URL, APIKEYS_TEST_POSTGRES_DSN or APIKEYS_TEST_MYSQL_DSN
// name a server on a loopback address; each isolates itself in a random Redis
// namespace or SQL table and removes it through a direct, non-proxied
// connection. The package has no non-test code.
package faulttest
