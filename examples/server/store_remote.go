package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // -store mysql://
	_ "github.com/jackc/pgx/v5/stdlib" // -store postgres://
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // -store sqlite:PATH

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/redisstore"
	"github.com/keyward/apikeys/sqlstore"
)

func openRedis(ctx context.Context, spec, namespace string) (apikeys.Store, func(), error) {
	opts, err := redis.ParseURL(spec)
	if err != nil {
		return nil, nil, err
	}
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, nil, err
	}
	s, err := redisstore.New(rdb, &redisstore.Config{Namespace: namespace})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return s, func() { rdb.Close() }, nil
}

// openSQL opens driver on spec, a URL for postgres and mysql or
// "sqlite:PATH", and migrates the schema.
func openSQL(ctx context.Context, driver, spec, table string) (apikeys.Store, func(), error) {
	dsn := spec
	switch driver {
	case "mysql":
		var err error
		if dsn, err = mysqlDSN(spec); err != nil {
			return nil, nil, err
		}
	case "sqlite":
		// Wait for a lock up to a second less than the Manager's
		// OpTimeout, so that a busy database answers SQLITE_BUSY rather
		// than have the deadline interrupt it.
		dsn = fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)",
			strings.TrimPrefix(spec, "sqlite:"), (opTimeout - time.Second).Milliseconds())
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	s, err := sqlstore.New(db, &sqlstore.Config{Table: table})
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); db.Close() }, nil
}

// mysqlDSN turns mysql://user:pass@host:port/db?params into the driver's
// user:pass@tcp(host:port)/db?parseTime=true&params form.
func mysqlDSN(spec string) (string, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return "", err
	}
	if u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return "", fmt.Errorf("want mysql://user[:password]@host[:port]/database")
	}
	q := u.Query()
	q.Set("parseTime", "true")
	userinfo := "" // the driver's DSN takes these unescaped
	if u.User != nil {
		userinfo = u.User.Username()
		if p, ok := u.User.Password(); ok {
			userinfo += ":" + p
		}
		userinfo += "@"
	}
	return fmt.Sprintf("%stcp(%s)/%s?%s", userinfo, u.Host, strings.Trim(u.Path, "/"), q.Encode()), nil
}
