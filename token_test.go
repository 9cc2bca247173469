package apikeys

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

var keyPattern = regexp.MustCompile(`^ak_(sk|pk)_[0-9A-Za-z]{72}$`)

func TestGenerateParseRoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, typ := range []KeyType{Private, Public} {
		for range 200 {
			id := uuid.Must(uuid.NewV7())
			key, err := generateKey("ak", typ, id)
			if err != nil {
				t.Fatal(err)
			}
			if !keyPattern.MatchString(key) || len(key) != keyLen("ak") {
				t.Fatalf("key %q does not have the documented format", key)
			}
			if seen[key] {
				t.Fatalf("key %q generated twice", key)
			}
			seen[key] = true
			p, err := parseKey("ak", key)
			if err != nil || p.id != id || p.typ != typ {
				t.Fatalf("parseKey(%q) = %+v, %v; want id %s type %s", key, p, err, id, typ)
			}
		}
	}
}

func TestParseKeyRefuses(t *testing.T) {
	t.Parallel()
	key, err := generateKey("ak", Public, uuid.Must(uuid.NewV7()))
	if err != nil {
		t.Fatal(err)
	}
	body := key[6:]
	flip := func(i int) string {
		b := []byte(key)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct{ in, why string }{
		{"", "empty"},
		{"ak_pk_", "prefix only"},
		{"xk_pk_" + body, "wrong prefix"},
		{"akpk_" + body + "x", "missing separator"},
		{"ak_pk-" + body, "wrong separator"},
		{"ak_xk_" + body, "unknown type"},
		{"ak_sk_" + body, "type swapped (checksum covers it)"},
		{"ak_pk_" + body[1:], "one short"},
		{key + "0", "one long"},
		{"ak_pk_" + strings.Repeat("0", 71) + "!", "not base62"},
		{"ak_pk_" + body[:71] + "_", "separator in body"},
		{"ak_pk_" + body[:71] + "\x00", "NUL in body"},
		{flip(6), "first body character changed"},
		{flip(30), "secret changed"},
		{flip(len(key) - 1), "checksum changed"},
		{"ak_pk_" + strings.Repeat("z", 72), "block overflow"},
		{"ak_pk_" + strings.Repeat("0", 72), "all zero"},
		{strings.ToUpper(key), "upper-cased"},
	}
	for _, tt := range tests {
		if _, err := parseKey("ak", tt.in); err == nil {
			t.Errorf("%s: parseKey(%q) accepted", tt.why, tt.in)
		}
		if ValidKeyFormat("ak", tt.in) {
			t.Errorf("%s: ValidKeyFormat(%q) = true", tt.why, tt.in)
		}
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	key := "ak_pk_" + strings.Repeat("A", 72)
	if got, want := newDigester(nil).digest(key), Digest(sha256.Sum256([]byte(key))); got != want {
		t.Errorf("digest without pepper = %x, want SHA-256 %x", got, want)
	}
	mac := hmac.New(sha256.New, []byte("pepper"))
	mac.Write([]byte(key))
	want := Digest(mac.Sum(nil))
	d := newDigester([]byte("pepper"))
	for range 3 { // pooled state must reset between uses
		if got := d.digest(key); got != want {
			t.Fatalf("digest with pepper = %x, want HMAC %x", got, want)
		}
	}
	if want.equal(d.digest(key+"x")) || !want.equal(want) {
		t.Error("Digest.equal is wrong")
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	key, err := generateKey("ak", Private, uuid.Must(uuid.NewV7()))
	if err != nil {
		t.Fatal(err)
	}
	h := hint("ak", key)
	if want := "ak_sk_..." + key[len(key)-4:]; h != want {
		t.Fatalf("hint = %q, want %q", h, want)
	}
}

func FuzzParseKey(f *testing.F) {
	for _, typ := range []KeyType{Private, Public} {
		key, err := generateKey("ak", typ, uuid.Must(uuid.NewV7()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(key)
	}
	f.Add("ak_pk_" + strings.Repeat("z", 72))
	f.Add("ak_sk_" + strings.Repeat("0", 72))
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseKey("ak", in)
		if err != nil {
			return
		}
		// The id is canonically encoded: re-encoding it gives the same text,
		// and the checksum covers everything before it.
		var idText [idChars]byte
		encodeBytes(idText[:], p.id[:])
		if string(idText[:]) != in[6:6+idChars] {
			t.Fatalf("%q parsed but its id re-encodes as %q", in, idText)
		}
		if crc, _ := decodeBlock6(in[len(in)-6:]); crc != crc32.Checksum([]byte(in[:len(in)-6]), crc32.MakeTable(crc32.Castagnoli)) {
			t.Fatalf("%q parsed with a wrong checksum", in)
		}
	})
}

func TestBase62Only(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		want := strings.IndexByte(base62, byte(c)) >= 0
		for _, pos := range []int{0, 3, 7, 8, 15, 71} { // in words and in the tail
			b := []byte(strings.Repeat("a", 72))
			b[pos] = byte(c)
			if got := base62Only(string(b)); got != want {
				t.Fatalf("byte %#x at %d: base62Only = %v, want %v", c, pos, got, want)
			}
		}
		if got := base62Only(strings.Repeat("0", 9) + string(rune(c))[:1]); got != want && c < 0x80 {
			t.Fatalf("byte %#x in the tail: base62Only = %v, want %v", c, got, want)
		}
	}
}
