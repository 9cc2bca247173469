package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

func TestLists(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		json string // what appendList writes
	}{
		{"nil", nil, `[]`},
		{"empty", []string{}, `[]`},
		{"one", []string{"https://app.example.com"}, `["https://app.example.com"]`},
		{"several", []string{"https://*.example.org:8443", "asst:2.b-c", "x"}, `["https://*.example.org:8443","asst:2.b-c","x"]`},
		{"empty string", []string{""}, `[""]`},
		{"escapes", []string{`a"b`, `c\d`, "e\nf", "<&>"}, `["a\"b","c\\d","e\nf","<&>"]`},
		{"unicode", []string{"ünïcödé ✓", "日本"}, `["ünïcödé ✓","日本"]`},
		{"commas and brackets", []string{"a,b", "[c]", "]"}, `["a,b","[c]","]"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := listString(tt.in)
			if !strings.Contains(tt.name, "unicode") {
				require.Equal(t, tt.json, got)
			}
			back, err := parseList(got)
			require.NoError(t, err)
			if len(tt.in) == 0 {
				require.Empty(t, back)
			} else {
				require.Equal(t, tt.in, back)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{`[]`, nil, false},
		{` [ ] `, nil, false},
		{`["a", "b"]`, []string{"a", "b"}, false}, // PostgreSQL JSONB and MySQL JSON output
		{"[\n\t\"a\" ,\r\n\"b\"\n]", []string{"a", "b"}, false},
		{`["a\u0041"]`, []string{"aA"}, false},
		{`null`, nil, false},
		{``, nil, true},
		{`[`, nil, true},
		{`["a"`, nil, true},
		{`["a",]`, nil, true},
		{`["a" "b"]`, nil, true},
		{`["a"] x`, nil, true},
		{`[1]`, nil, true},
		{`{"a":1}`, nil, true},
		{"[\"\xff\"]", []string{"\ufffd"}, false}, // invalid UTF-8: encoding/json replaces it
	}
	for _, tt := range tests {
		got, err := parseList(tt.in)
		if tt.wantErr {
			assert.Error(t, err, "parseList(%q)", tt.in)
			continue
		}
		if assert.NoError(t, err, "parseList(%q)", tt.in) {
			assert.Equal(t, tt.want, got, "parseList(%q)", tt.in)
		}
	}
}

func TestListScannerCopies(t *testing.T) {
	t.Parallel()
	buf := []byte(`["a","b"]`)
	var got []string
	require.NoError(t, listScanner{&got}.Scan(buf))
	copy(buf, `["x","y"]`) // the driver reuses its buffer
	require.Equal(t, []string{"a", "b"}, got)
	require.Error(t, listScanner{&got}.Scan(42))
	for _, bad := range []any{nil, "null", " null", "", `{"a":1}`} {
		require.Error(t, listScanner{&got}.Scan(bad), "%q must not read as no restriction", bad)
	}
	require.NoError(t, listScanner{&got}.Scan("[]"))
	require.Empty(t, got)
}

func TestTimeScanner(t *testing.T) {
	t.Parallel()
	kathmandu := time.FixedZone("NPT", 5*3600+45*60)
	want := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	tests := []struct {
		name      string
		src       any
		wallClock bool
		want      time.Time
		wantErr   bool
	}{
		{"instant in another zone", want.In(kathmandu), false, want, false},
		{"wall clock read in another zone", time.Date(2026, 3, 14, 15, 9, 26, 535897000, kathmandu), true, want, false},
		{"wall clock in UTC", want, true, want, false},
		{"unix micro", want.UnixMicro(), false, want, false},
		{"mysql text", []byte("2026-03-14 15:09:26.535897"), true, want, false},
		{"mysql text as string", "2026-03-14 15:09:26.535897", true, want, false},
		{"mysql text without fraction", []byte("2026-03-14 15:09:26"), true, want.Truncate(time.Second), false},
		{"rfc3339", "2026-03-14T15:09:26.535897Z", false, want, false},
		{"null", nil, false, time.Time{}, false},
		{"garbage", "yesterday", false, time.Time{}, true},
		{"float", 1.5, false, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := time.Now()
			err := timeScanner{&got, tt.wallClock}.Scan(tt.src)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, got.Equal(tt.want), "got %v, want %v", got, tt.want)
			if !got.IsZero() {
				require.Equal(t, time.UTC, got.Location())
			} else {
				require.True(t, got.IsZero())
			}
		})
	}
}

// TestRestrictionScanners: the scopes, allowed_ips and disabled columns
// read back what the store writes, and anything else, NULL included, is
// an error: never an empty list or false, which would lift a restriction.
func TestRestrictionScanners(t *testing.T) {
	t.Parallel()
	prefixes := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::7/128"), netip.MustParsePrefix("0.0.0.0/0")}
	require.Equal(t, `["203.0.113.0/24","2001:db8::7/128","0.0.0.0/0"]`, prefixListString(prefixes))
	require.Equal(t, `[]`, prefixListString(nil))
	require.Equal(t, `[]`, prefixListString([]netip.Prefix{}))

	type scanner interface{ Scan(any) error }
	var scopes []string
	var ips []netip.Prefix
	var disabled bool
	tests := []struct {
		name    string
		s       scanner
		src     any
		wantErr bool
		check   func(t *testing.T)
	}{
		{"scopes", scopesScanner{&scopes}, `["calls:read","api_keys:*"]`, false, func(t *testing.T) {
			require.Equal(t, []string{"calls:read", "api_keys:*"}, scopes)
		}},
		{"scopes bytes, spaced", scopesScanner{&scopes}, []byte(`[ "calls:read" ]`), false, func(t *testing.T) {
			require.Equal(t, []string{"calls:read"}, scopes)
		}},
		{"scopes empty", scopesScanner{&scopes}, `[]`, false, func(t *testing.T) { require.Empty(t, scopes) }},
		{"scopes NULL", scopesScanner{&scopes}, nil, true, nil},
		{"scopes null", scopesScanner{&scopes}, `null`, true, nil},
		{"scopes spaced null", scopesScanner{&scopes}, ` null`, true, nil},
		{"scopes empty text", scopesScanner{&scopes}, ``, true, nil},
		{"scopes string", scopesScanner{&scopes}, `"calls:read"`, true, nil},
		{"scopes object", scopesScanner{&scopes}, `{}`, true, nil},
		{"scopes numbers", scopesScanner{&scopes}, `[1]`, true, nil},
		{"scopes truncated", scopesScanner{&scopes}, `["calls:read"`, true, nil},
		{"scopes int", scopesScanner{&scopes}, int64(1), true, nil},

		{"ips", prefixListScanner{&ips}, prefixListString(prefixes), false, func(t *testing.T) { require.Equal(t, prefixes, ips) }},
		{"ips spaced (JSONB)", prefixListScanner{&ips}, []byte(`["203.0.113.0/24", "2001:db8::7/128", "0.0.0.0/0"]`), false, func(t *testing.T) {
			require.Equal(t, prefixes, ips)
		}},
		{"ips empty", prefixListScanner{&ips}, `[]`, false, func(t *testing.T) { require.Empty(t, ips) }},
		{"ips NULL", prefixListScanner{&ips}, nil, true, nil},
		{"ips null", prefixListScanner{&ips}, `null`, true, nil},
		{"ips garbage", prefixListScanner{&ips}, `["anywhere"]`, true, nil},
		{"ips empty entry", prefixListScanner{&ips}, `[""]`, true, nil},
		{"ips bare address", prefixListScanner{&ips}, `["203.0.113.7"]`, true, nil},
		{"ips host bits", prefixListScanner{&ips}, `["10.0.0.1/8"]`, true, nil},
		{"ips mapped", prefixListScanner{&ips}, `["::ffff:10.0.0.0/104"]`, true, nil},
		{"ips upper case", prefixListScanner{&ips}, `["2001:DB8::/32"]`, true, nil},
		{"ips zone", prefixListScanner{&ips}, `["fe80::1%eth0/128"]`, true, nil},
		{"ips too long", prefixListScanner{&ips}, `["10.0.0.0/33"]`, true, nil},
		{"ips one good, one bad", prefixListScanner{&ips}, `["10.0.0.0/8","nowhere"]`, true, nil},

		{"disabled true", boolScanner{"disabled", &disabled}, true, false, func(t *testing.T) { require.True(t, disabled) }},
		{"disabled false", boolScanner{"disabled", &disabled}, false, false, func(t *testing.T) { require.False(t, disabled) }},
		{"disabled 1", boolScanner{"disabled", &disabled}, int64(1), false, func(t *testing.T) { require.True(t, disabled) }},
		{"disabled 0", boolScanner{"disabled", &disabled}, int64(0), false, func(t *testing.T) { require.False(t, disabled) }},
		{"disabled text 1", boolScanner{"disabled", &disabled}, []byte("1"), false, func(t *testing.T) { require.True(t, disabled) }},
		{"disabled text 0", boolScanner{"disabled", &disabled}, "0", false, func(t *testing.T) { require.False(t, disabled) }},
		{"disabled NULL", boolScanner{"disabled", &disabled}, nil, true, nil},
		{"disabled 2", boolScanner{"disabled", &disabled}, int64(2), true, nil},
		{"disabled -1", boolScanner{"disabled", &disabled}, int64(-1), true, nil},
		{"disabled text", boolScanner{"disabled", &disabled}, "true", true, nil},
		{"disabled empty", boolScanner{"disabled", &disabled}, []byte{}, true, nil},
		{"disabled float", boolScanner{"disabled", &disabled}, 1.0, true, nil},
	}
	for _, tt := range tests { // sequential: the destinations are shared
		scopes, ips, disabled = []string{"before"}, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, true
		err := tt.s.Scan(tt.src)
		if tt.wantErr {
			require.Error(t, err, tt.name)
			continue
		}
		require.NoError(t, err, tt.name)
		tt.check(t)
	}
}

func TestDigestScanner(t *testing.T) {
	t.Parallel()
	var d apikeys.Digest
	src := make([]byte, 32)
	src[0], src[31] = 1, 2
	require.NoError(t, digestScanner{&d}.Scan(src))
	require.Equal(t, byte(1), d[0])
	require.Equal(t, byte(2), d[31])
	require.Error(t, digestScanner{&d}.Scan(make([]byte, 31)))
	require.Error(t, digestScanner{&d}.Scan(nil))
}

// Stand-ins for driver error types, matched without importing drivers.
type (
	pgxError   struct{ Code string } // like *pgconn.PgError
	pqError    struct{ Code string } // like *pq.Error (no method)
	MySQLError struct {
		Number  uint16
		Message string
	}
	otherNumbered struct{ Number uint16 }
	moderncError  struct{ code int }
	mattnError    struct {
		Code         int
		ExtendedCode int
	}
)

func (e *pgxError) Error() string     { return "pg " + e.Code }
func (e *pgxError) SQLState() string  { return e.Code }
func (e *pqError) Error() string      { return "pq " + e.Code }
func (e *MySQLError) Error() string   { return fmt.Sprint("Error ", e.Number) }
func (e otherNumbered) Error() string { return "other" }
func (e *moderncError) Error() string { return "sqlite" }
func (e *moderncError) Code() int     { return e.code }
func (e mattnError) Error() string    { return "sqlite3" }
func wrap(err error) error            { return fmt.Errorf("exec: %w", err) }
func joined(err error) error          { return errors.Join(errors.New("first"), wrap(err)) }
func identity(err error) error        { return err }

func TestDuplicateDetection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dialect Dialect
		err     error
		want    bool
	}{
		{"pgx 23505", Postgres, &pgxError{"23505"}, true},
		{"pgx foreign key", Postgres, &pgxError{"23503"}, false},
		{"pq 23505", Postgres, &pqError{"23505"}, true},
		{"pq other", Postgres, &pqError{"42P01"}, false},
		{"pg plain text", Postgres, errors.New(`duplicate key value violates unique constraint (SQLSTATE 23505)`), false},
		{"mysql 1062", MySQL, &MySQLError{Number: 1062}, true},
		{"mysql 1452", MySQL, &MySQLError{Number: 1452}, false},
		{"mysql other type with Number", MySQL, otherNumbered{1062}, false},
		{"mysql text", MySQL, errors.New("Error 1062 (23000): Duplicate entry"), false},
		{"modernc primary key", SQLite, &moderncError{1555}, true},
		{"modernc unique", SQLite, &moderncError{2067}, true},
		{"modernc not null", SQLite, &moderncError{1299}, false},
		{"modernc busy", SQLite, &moderncError{5}, false},
		{"mattn primary key", SQLite, mattnError{19, 1555}, true},
		{"mattn check", SQLite, mattnError{19, 275}, false},
		{"nil", SQLite, nil, false},
		{"context", Postgres, errors.New("context canceled"), false},
	}
	for _, tt := range tests {
		for _, how := range []struct {
			name string
			f    func(error) error
		}{{"bare", identity}, {"wrapped", wrap}, {"joined", joined}} {
			if tt.err == nil && how.name != "bare" {
				continue
			}
			got := dialects[tt.dialect].duplicate(how.f(tt.err))
			assert.Equal(t, tt.want, got, "%s, %s", tt.name, how.name)
		}
	}
}

func TestStatements(t *testing.T) {
	t.Parallel()
	got := statements("-- header\nCREATE TABLE a (\n  x INT -- note\n);\n-- between\nCREATE INDEX i ON a (x);\n-- trailing comment\n")
	require.Equal(t, []string{"-- header\nCREATE TABLE a (\n  x INT -- note\n)", "-- between\nCREATE INDEX i ON a (x)"}, got)
	require.Equal(t, []string{"SELECT 1"}, statements("SELECT 1"))

	// Statements per migration, in version order (PostgreSQL's version 3 is
	// only a comment; MySQL's versions 2 and 4 guard each added column
	// with four statements, version 5 all its columns with four).
	for d, n := range map[Dialect][]int{Postgres: {2, 1, 0, 1, 1}, MySQL: {1, 4, 1, 12, 4}, SQLite: {2, 1, 1, 3, 8}} {
		require.Len(t, migrations[d], len(n), "%s migrations", d)
		for i, m := range migrations[d] {
			require.Equal(t, int64(i+1), m.version, "%s migration %d", d, i)
			require.Len(t, statements(m.render(namesFor(dialects[d], "t"))), n[i], "%s version %d statements", d, m.version)
		}
	}
}

func TestValidTable(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "_", "api_keys", "A1_b2", strings.Repeat("x", MaxTableLen)} {
		assert.True(t, validTable(ok), ok)
	}
	for _, bad := range []string{"", "1a", "a-b", "a.b", "a b", `a"b`, "a`b", "a;", "é", strings.Repeat("x", MaxTableLen+1)} {
		assert.False(t, validTable(bad), bad)
	}
	// The longest derived name fits PostgreSQL's 63-byte identifiers.
	assert.LessOrEqual(t, len(strings.Repeat("x", MaxTableLen)+"_schema_versions"), 63)
}

// TestPrepareWaitHonoursContext: a caller waiting for another's prepare
// (which may hang on a dead server until that caller's deadline) gives up
// when its own context ends.
func TestPrepareWaitHonoursContext(t *testing.T) {
	t.Parallel()
	st := &stmt{lock: make(chan struct{}, 1)}
	st.lock <- struct{}{} // another caller is preparing
	c, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.prepared(c)
	require.ErrorIs(t, err, context.Canceled)
}
