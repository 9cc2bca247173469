package storeurl

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

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
// "sqlite:PATH", and migrates or checks the schema as o says.
func openSQL(ctx context.Context, driver, spec, table string, o *Options) (apikeys.Store, func(), error) {
	if err := needDriver(driver, sql.Drivers()); err != nil {
		return nil, nil, err
	}
	dsn := spec
	switch driver {
	case "mysql":
		var err error
		if dsn, err = MySQLDSN(spec); err != nil {
			return nil, nil, err
		}
	case "sqlite":
		wait := max(o.OpTimeout-time.Second, 0)
		dsn = fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)",
			strings.TrimPrefix(spec, "sqlite:"), wait.Milliseconds())
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
		switch o.Schema {
		case Migrate:
			err = s.Migrate(ctx)
		case Check:
			err = s.CheckSchema(ctx)
		}
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		db.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); db.Close() }, nil
}

// MySQLDSN turns mysql://user:pass@host:port/db?params into the driver's
// user:pass@tcp(host:port)/db?parseTime=true&params form.
func MySQLDSN(spec string) (string, error) {
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
