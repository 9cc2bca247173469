package sqlstore

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/keyward/apikeys"
)

// Dialect names an SQL database family the store speaks.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres" // PostgreSQL (drivers "pgx", "pgx/v5", "postgres")
	MySQL    Dialect = "mysql"    // MySQL 8, MariaDB (driver "mysql")
	SQLite   Dialect = "sqlite"   // SQLite 3 (drivers "sqlite", "sqlite3")
)

// dialectOf maps a database/sql driver name to its dialect.
func dialectOf(driverName string) (Dialect, bool) {
	switch driverName {
	case "pgx", "pgx/v5", "postgres":
		return Postgres, true
	case "mysql":
		return MySQL, true
	case "sqlite", "sqlite3":
		return SQLite, true
	}
	return "", false
}

// dialect holds what differs between the databases.
type dialect struct {
	name Dialect
	bind int // sqlx bind type: placeholders are written "?" and rebound

	// quote returns a validated identifier quoted for the dialect.
	quote func(string) string

	// versionsDDL creates the versions table; %s is its quoted name.
	versionsDDL string

	// timeArg encodes a time as the dialect stores it; wallClock says how
	// a time.Time read back is interpreted (see timeScanner).
	timeArg   func(time.Time) any
	wallClock bool

	// duplicate reports whether err is a unique violation.
	duplicate func(error) bool

	// laterLastUsed is what Update assigns to last_used_at: the later of
	// the stored value and the written one, which each of its
	// laterLastUsedArgs placeholders is (NULL for the zero time). It is
	// NULL only when both are.
	laterLastUsed     string
	laterLastUsedArgs int

	// touchSQL returns the statement that records k uses (see
	// Store.TouchLastUsed), "?" placeholders, and touchArgs its arguments.
	// touchFixed says the text does not depend on k (it is prepared once).
	touchSQL   func(n names, k int) string
	touchArgs  func(d *dialect, uses []apikeys.Use) []any
	touchFixed bool

	// tableExists counts the tables named by its one argument (unquoted)
	// in the schema the store's statements use.
	tableExists string
}

var dialects = map[Dialect]*dialect{
	Postgres: {
		name:        Postgres,
		bind:        sqlx.DOLLAR,
		quote:       func(s string) string { return `"` + s + `"` },
		versionsDDL: `CREATE TABLE IF NOT EXISTS %s (version BIGINT NOT NULL PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`,
		timeArg:     func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) },
		duplicate:   pgDuplicate,
		// GREATEST ignores NULLs.
		laterLastUsed:     "GREATEST(last_used_at, ?)",
		laterLastUsedArgs: 1,
		touchSQL:          pgTouchSQL,
		touchArgs:         pgTouchArgs,
		touchFixed:        true,
		tableExists:       "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
	},
	MySQL: {
		name:  MySQL,
		bind:  sqlx.QUESTION,
		quote: func(s string) string { return "`" + s + "`" },
		versionsDDL: `CREATE TABLE IF NOT EXISTS %s (version BIGINT NOT NULL PRIMARY KEY, applied_at DATETIME(6) NOT NULL)` +
			` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		// Sent as text in UTC, so neither the DSN's loc nor the session's
		// time_zone can shift what DATETIME stores.
		timeArg:   func(t time.Time) any { return t.UTC().Truncate(time.Microsecond).Format(mysqlTime) },
		wallClock: true,
		duplicate: mysqlDuplicate,
		// GREATEST is NULL when an argument is; the casts make it compare
		// times, not text.
		laterLastUsed:     "COALESCE(GREATEST(last_used_at, CAST(? AS DATETIME(6))), last_used_at, CAST(? AS DATETIME(6)))",
		laterLastUsedArgs: 2,
		touchSQL:          mysqlTouchSQL,
		touchArgs:         mysqlTouchArgs,
		tableExists:       "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
	},
	SQLite: {
		name:        SQLite,
		bind:        sqlx.QUESTION,
		quote:       func(s string) string { return `"` + s + `"` },
		versionsDDL: `CREATE TABLE IF NOT EXISTS %s (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		timeArg:     func(t time.Time) any { return t.UnixMicro() },
		duplicate:   sqliteDuplicate,
		// max() with several arguments is NULL when one is.
		laterLastUsed:     "COALESCE(max(last_used_at, ?), last_used_at, ?)",
		laterLastUsedArgs: 2,
		touchSQL:          sqliteTouchSQL,
		touchArgs:         sqliteTouchArgs,
		tableExists:       "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
	},
}

// Recording uses (Store.TouchLastUsed) takes one statement per chunk of at
// most maxTouch uses, sorted by id and each id once. Two such statements
// running at once, from two instances flushing the same keys, must not
// deadlock: each locks its rows in ascending id order (PostgreSQL: a
// SELECT ... ORDER BY id FOR UPDATE before the UPDATE; MySQL: a
// single-table UPDATE ... ORDER BY id, which locks as it reads the primary
// key), so neither can hold a row the other has while waiting for one the
// other holds. SQLite has one writer at a time. A row is written only when
// its use is later than the stored last_used_at, compared on the row as
// locked, so the latest time wins whatever the order of the statements.

// pgTouchSQL: the ids and times go as two array literals, a statement of
// fixed text for any number of uses, and the same with every driver.
func pgTouchSQL(n names, _ int) string {
	return `WITH u AS (
    SELECT * FROM unnest(CAST(CAST(? AS text) AS uuid[]), CAST(CAST(? AS text) AS timestamptz[])) AS u(id, at)
), locked AS MATERIALIZED (
    SELECT k.id, u.at FROM ` + n.Table + ` AS k JOIN u ON k.id = u.id
    WHERE k.last_used_at IS NULL OR k.last_used_at < u.at
    ORDER BY k.id
    FOR UPDATE OF k
)
UPDATE ` + n.Table + ` AS k SET last_used_at = locked.at FROM locked
WHERE k.id = locked.id AND (k.last_used_at IS NULL OR k.last_used_at < locked.at)`
}

func pgTouchArgs(_ *dialect, uses []apikeys.Use) []any {
	ids := make([]byte, 0, 2+37*len(uses))
	ats := make([]byte, 0, 2+30*len(uses))
	ids, ats = append(ids, '{'), append(ats, '{')
	for i, u := range uses {
		if i > 0 {
			ids, ats = append(ids, ','), append(ats, ',')
		}
		ids = append(ids, u.ID.String()...)
		ats = append(ats, '"')
		ats = u.At.UTC().Truncate(time.Microsecond).AppendFormat(ats, "2006-01-02T15:04:05.999999Z07:00")
		ats = append(ats, '"')
	}
	return []any{string(append(ids, '}')), string(append(ats, '}'))}
}

// mysqlTouchSQL: CASE id WHEN ? THEN ? ... picks each row's time, in the
// assignment and in the condition that keeps it from moving back.
func mysqlTouchSQL(n names, k int) string {
	var b strings.Builder
	pick := func() {
		b.WriteString("CASE id")
		for range k {
			b.WriteString(" WHEN ? THEN CAST(? AS DATETIME(6))")
		}
		b.WriteString(" END")
	}
	b.WriteString("UPDATE " + n.Table + " SET last_used_at = ")
	pick()
	b.WriteString(" WHERE id IN (?" + strings.Repeat(", ?", k-1) + ") AND (last_used_at IS NULL OR last_used_at < ")
	pick()
	b.WriteString(") ORDER BY id")
	return b.String()
}

func mysqlTouchArgs(d *dialect, uses []apikeys.Use) []any {
	pick := make([]any, 0, 2*len(uses))
	in := make([]any, 0, len(uses))
	for _, u := range uses {
		id := u.ID.String()
		pick = append(pick, id, d.timeArg(u.At))
		in = append(in, id)
	}
	args := make([]any, 0, 5*len(uses))
	args = append(args, pick...)
	args = append(args, in...)
	return append(args, pick...)
}

// sqliteTouchSQL: UPDATE ... FROM a VALUES list (SQLite 3.33 or later).
func sqliteTouchSQL(n names, k int) string {
	return "UPDATE " + n.Table + " SET last_used_at = u.at" +
		" FROM (SELECT column1 AS id, column2 AS at FROM (VALUES (?, ?)" + strings.Repeat(", (?, ?)", k-1) + ")) AS u" +
		" WHERE " + n.Table + ".id = u.id AND (" + n.Table + ".last_used_at IS NULL OR " + n.Table + ".last_used_at < u.at)"
}

func sqliteTouchArgs(d *dialect, uses []apikeys.Use) []any {
	args := make([]any, 0, 2*len(uses))
	for _, u := range uses {
		args = append(args, u.ID.String(), d.timeArg(u.At))
	}
	return args
}

const mysqlTime = "2006-01-02 15:04:05.000000"

// rebind turns "?" placeholders into the dialect's.
func (d *dialect) rebind(q string) string { return sqlx.Rebind(d.bind, q) }

// MaxTableLen is the longest Config.Table: the versions table adds
// "_schema_versions" and PostgreSQL identifiers hold 63 bytes.
const MaxTableLen = 47

// validTable reports whether s is a plain identifier that is safe to
// interpolate into SQL: [A-Za-z_][A-Za-z0-9_]*, at most MaxTableLen bytes.
func validTable(s string) bool {
	if len(s) == 0 || len(s) > MaxTableLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// names are the identifiers derived from the table name.
type names struct {
	Table     string // quoted
	TableName string // not quoted, for string literals (a validated identifier)
	UserIndex string // quoted
	Versions  string // quoted
}

func namesFor(d *dialect, table string) names {
	return names{
		Table:     d.quote(table),
		TableName: table,
		UserIndex: d.quote(table + "_user_id_idx"),
		Versions:  d.quote(table + "_schema_versions"),
	}
}

//go:embed schema
var schemaFS embed.FS

// migration is one numbered schema change of a dialect.
type migration struct {
	version int64
	tmpl    *template.Template
}

// migrations holds every dialect's schema files, in version order.
var migrations = loadMigrations()

func loadMigrations() map[Dialect][]migration {
	out := make(map[Dialect][]migration)
	for name := range dialects {
		dir := path.Join("schema", string(name))
		entries, err := fs.ReadDir(schemaFS, dir)
		if err != nil {
			panic("sqlstore: embedded schema: " + err.Error())
		}
		for _, e := range entries {
			num, _, ok := strings.Cut(e.Name(), "_")
			v, err := strconv.ParseInt(num, 10, 64)
			if !ok || err != nil || v < 1 || !strings.HasSuffix(e.Name(), ".sql") {
				panic("sqlstore: embedded schema: bad file name " + e.Name())
			}
			text, err := fs.ReadFile(schemaFS, path.Join(dir, e.Name()))
			if err != nil {
				panic("sqlstore: embedded schema: " + err.Error())
			}
			t := template.Must(template.New(e.Name()).Option("missingkey=error").Parse(string(text)))
			out[name] = append(out[name], migration{version: v, tmpl: t})
		}
		slices.SortFunc(out[name], func(a, b migration) int { return int(a.version - b.version) })
	}
	return out
}

func (m migration) render(n names) string {
	var b strings.Builder
	if err := m.tmpl.Execute(&b, n); err != nil {
		panic("sqlstore: embedded schema: " + err.Error()) // the templates are ours and tested
	}
	return b.String()
}

// Schema returns the DDL that Migrate applies for the dialect and table
// ("" for the default, api_keys), for users who manage migrations
// themselves. It does not include the versions table Migrate keeps.
func Schema(d Dialect, table string) (string, error) {
	dl, ok := dialects[d]
	if !ok {
		return "", fmt.Errorf("sqlstore: unknown dialect %q (want %q, %q or %q)", d, Postgres, MySQL, SQLite)
	}
	if table == "" {
		table = DefaultTable
	}
	if !validTable(table) {
		return "", errBadTable(table)
	}
	var b strings.Builder
	for _, m := range migrations[d] {
		b.WriteString(m.render(namesFor(dl, table)))
	}
	return b.String(), nil
}

func errBadTable(table string) error {
	return fmt.Errorf("sqlstore: table name %q must match [A-Za-z_][A-Za-z0-9_]* and be at most %d bytes", table, MaxTableLen)
}

// statements splits a schema file into statements: each ends with a line
// whose last character is ';'. Comment-only chunks are dropped.
func statements(text string) []string {
	var out []string
	var cur strings.Builder
	code := false
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && !strings.HasPrefix(trimmed, "--") {
			code = true
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") && code {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
			code = false
		}
	}
	if code {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// Unique-violation detection. The package imports no driver, so driver
// errors are recognised by method or by field, through the whole chain.

// pgDuplicate: SQLSTATE 23505. pgx's *pgconn.PgError has SQLState();
// lib/pq's *pq.Error has a Code field.
func pgDuplicate(err error) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return st.SQLState() == "23505"
	}
	return anyInChain(err, func(v reflect.Value) bool {
		f := v.FieldByName("Code")
		return f.IsValid() && f.Kind() == reflect.String && f.String() == "23505"
	})
}

// mysqlDuplicate: error 1062 (ER_DUP_ENTRY), the Number field of
// go-sql-driver's *mysql.MySQLError.
func mysqlDuplicate(err error) bool {
	return anyInChain(err, func(v reflect.Value) bool {
		if v.Type().Name() != "MySQLError" {
			return false
		}
		f := v.FieldByName("Number")
		return f.IsValid() && f.CanUint() && f.Uint() == 1062
	})
}

// SQLite extended result codes for a violated primary key or unique index.
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// sqliteDuplicate: modernc.org/sqlite's *sqlite.Error has Code() with the
// extended result code; mattn/go-sqlite3's sqlite3.Error has ExtendedCode.
func sqliteDuplicate(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		c := coded.Code()
		return c == sqliteConstraintPrimaryKey || c == sqliteConstraintUnique
	}
	return anyInChain(err, func(v reflect.Value) bool {
		f := v.FieldByName("ExtendedCode")
		if !f.IsValid() || !f.CanInt() {
			return false
		}
		c := f.Int()
		return c == sqliteConstraintPrimaryKey || c == sqliteConstraintUnique
	})
}

// anyInChain reports whether match holds for a struct (or pointer to one)
// in err's tree.
func anyInChain(err error, match func(reflect.Value) bool) bool {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct && match(v) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if anyInChain(e, match) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
