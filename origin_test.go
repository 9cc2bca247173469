package apikeys

import (
	"errors"
	"strings"
	"testing"
)

func TestParseOriginPatternAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, why string }{
		{"https://app.example.com", "https://app.example.com", "exact"},
		{"http://localhost:3000", "http://localhost:3000", "localhost with port"},
		{"HTTPS://App.Example.COM", "https://app.example.com", "scheme and host are lower-cased"},
		{"https://app.example.com:443", "https://app.example.com", "default https port dropped"},
		{"http://app.example.com:80", "http://app.example.com", "default http port dropped"},
		{"http://app.example.com:443", "http://app.example.com:443", "443 is not http's default"},
		{"https://app.example.com:8443", "https://app.example.com:8443", "other port kept"},
		{"https://app.example.com:08443", "https://app.example.com:8443", "leading zeros dropped"},
		{"https://app.example.com:65535", "https://app.example.com:65535", "highest port"},
		{"https://*.example.com", "https://*.example.com", "wildcard"},
		{"https://*.Example.com:443", "https://*.example.com", "wildcard canonicalized"},
		{"https://*.example.co.uk", "https://*.example.co.uk", "wildcard under a public suffix"},
		{"https://*.user.github.io", "https://*.user.github.io", "wildcard under a private suffix"},
		{"https://bücher.example", "https://xn--bcher-kva.example", "IDN stored as punycode"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example", "punycode kept"},
		{"https://*.bücher.example", "https://*.xn--bcher-kva.example", "IDN wildcard"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "IPv4"},
		{"http://[::1]:3000", "http://[::1]:3000", "IPv6"},
		{"http://[0:0:0:0:0:0:0:1]", "http://[::1]", "IPv6 shortened"},
		{"https://a-b.example.com", "https://a-b.example.com", "inner hyphen"},
	}
	for _, tt := range tests {
		t.Run(tt.why, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOriginPattern(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseOriginPattern(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			again, err := ParseOriginPattern(got)
			if err != nil || again != got {
				t.Fatalf("canonical form %q re-parses to %q, %v", got, again, err)
			}
		})
	}
}

func TestParseOriginPatternRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, why string }{
		{"", "empty"},
		{"null", "null"},
		{"*", "star alone"},
		{"file:///etc/passwd", "file scheme"},
		{"file:", "file scheme without slashes"},
		{"ftp://example.com", "ftp"},
		{"chrome-extension://abc", "extension scheme"},
		{"example.com", "no scheme"},
		{"//example.com", "scheme-relative"},
		{"https://example.com/", "path slash"},
		{"https://example.com/app", "path"},
		{"https://example.com?x=1", "query"},
		{"https://example.com#top", "fragment"},
		{"https://user@example.com", "userinfo"},
		{"https://app.example.com@evil.com", "userinfo trick"},
		{"https://exa mple.com", "inner space"},
		{" https://example.com", "leading space"},
		{"https://example.com ", "trailing space"},
		{"https://example.com\t", "tab"},
		{"https://example.com\x00", "NUL"},
		{"https://example.com\n", "newline"},
		{"https://exam\u00a0ple.com", "no-break space"},
		{"https://", "empty host"},
		{"https://:443", "empty host with port"},
		{"https://*example.com", "star glued to a label"},
		{"https://a.*.example.com", "inner star"},
		{"https://**.example.com", "double star"},
		{"https://*.*.example.com", "two stars"},
		{"https://*", "star host"},
		{"https://*.com", "wildcard on TLD"},
		{"https://*.co.uk", "wildcard on public suffix"},
		{"https://*.github.io", "wildcard on private public suffix"},
		{"https://*.localhost", "wildcard on single label"},
		{"https://*.127.0.0.1", "wildcard on IP"},
		{"http://*.[::1]", "wildcard on IPv6"},
		{"https://example.com:0", "port 0"},
		{"https://example.com:65536", "port too high"},
		{"https://example.com:99999999", "port far too high"},
		{"https://example.com:", "empty port"},
		{"https://example.com:+80", "signed port"},
		{"https://example.com:8a", "non-numeric port"},
		{"https://.example.com", "empty first label"},
		{"https://a..example.com", "empty inner label"},
		{"https://example.com.", "trailing dot"},
		{"https://-a.example.com", "leading hyphen"},
		{"https://a-.example.com", "trailing hyphen"},
		{"https://a_b.example.com", "underscore"},
		{"https://" + strings.Repeat("a", 64) + ".com", "label over 63"},
		{"https://1.2.3", "bad IPv4"},
		{"https://256.1.1.1", "IPv4 out of range"},
		{"http://[::1", "unclosed IPv6"},
		{"http://[::1]x", "junk after IPv6"},
		{"http://[1.2.3.4]", "IPv4 in brackets"},
		{"http://[fe80::1%25eth0]", "IPv6 zone"},
		{"https://a:b:c", "colons in host"},
		{"https://ex\\ample.com", "backslash"},
		{"https://" + strings.Repeat("a.", 1100) + "com", "over 2048 bytes"},
		{"https://\xff.com", "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.why, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOriginPattern(tt.in)
			if err == nil {
				t.Fatalf("ParseOriginPattern(%q) = %q, want an error", tt.in, got)
			}
			if !errors.Is(err, ErrValidation) {
				t.Fatalf("error %v does not unwrap to ErrValidation", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error %v is not a *ValidationError with a reason", err)
			}
		})
	}
}

func TestMatchOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, origin string
		want            bool
	}{
		{"https://app.example.com", "https://app.example.com", true},
		{"https://*.example.com", "https://app.example.com", true},
		{"https://*.example.com", "https://a.b.example.com", true},
		{"https://*.example.com:8443", "https://app.example.com:8443", true},
		{"http://localhost:3000", "http://localhost:3000", true},

		{"https://app.example.com", "https://app.example.com.evil.com", false},
		{"https://*.example.com", "https://app.example.com.evil.com", false},
		{"https://app.example.com", "https://evilapp.example.com", false},
		{"https://*.app.example.com", "https://evilapp.example.com", false},
		{"https://*.example.com", "https://evilexample.com", false},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://.example.com", false},
		{"https://*.example.com", "https://a..example.com", false},
		{"https://*.example.com", "https://-a.example.com", false},
		{"https://*.example.com", "https://a-.example.com", false},
		{"https://*.example.com", "https://A.example.com", false},
		{"https://*.example.com", "https://a_b.example.com", false},
		{"https://app.example.com", "http://app.example.com", false},
		{"https://*.example.com", "http://app.example.com", false},
		{"https://app.example.com", "https://app.example.com:8443", false},
		{"https://*.example.com", "https://app.example.com:8443", false},
		{"https://*.example.com:8443", "https://app.example.com", false},
		{"https://*.example.com:8443", "https://app.example.com:84430", false},
		{"https://app.example.com", "null", false},
		{"https://*.example.com", "null", false},
		{"https://app.example.com", "https://app.example.com/", false},
		{"https://app.example.com", "https://app.example.com/path", false},
		{"https://*.example.com", "https://evil.com/.example.com", false},
		{"https://*.example.com", "https://evil.com?.example.com", false},
		{"https://app.example.com", "https://app.example.com@evil.com", false},
		{"https://*.example.com", "https://x@app.example.com", false},
		{"https://*.example.com", "https://evil.com:1@x.example.com", false},
		{"https://app.example.com", " https://app.example.com", false},
		{"https://app.example.com", "https://app.example.com ", false},
		{"https://*.example.com", "https://a b.example.com", false},
		{"https://*.example.com", "https://a\x00.example.com", false},
		{"https://*.example.com", "https://a\n.example.com", false},
		{"https://app.example.com", "", false},
		{"https://app.example.com", "HTTPS://APP.EXAMPLE.COM", false},
		{"https://*.example.com", "https://" + strings.Repeat("a.", 1100) + "example.com", false},
	}
	for _, tt := range tests {
		if got := MatchOrigin(tt.pattern, tt.origin); got != tt.want {
			t.Errorf("MatchOrigin(%q, %q) = %v, want %v", tt.pattern, tt.origin, got, tt.want)
		}
	}
}

func TestIsOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"https://app.example.com":           true,
		"http://localhost:3000":             true,
		"http://[::1]:8080":                 true,
		"https://app.example.com:443":       false, // browsers omit the default port
		"HTTPS://app.example.com":           false,
		"https://*.example.com":             false,
		"null":                              false,
		"":                                  false,
		"https://app.example.com/":          false,
		"https://bücher.example":            false, // browsers send punycode
		"https://xn--bcher-kva.example":     true,
		strings.Repeat("a", MaxOriginLen+1): false,
	} {
		if got := IsOrigin(in); got != want {
			t.Errorf("IsOrigin(%q) = %v, want %v", in, got, want)
		}
	}
}

// Not parallel: AllocsPerRun needs the process to itself.
func TestMatchOriginLongInputIsCheap(t *testing.T) {
	long := "https://" + strings.Repeat("a", 1<<20) + ".example.com"
	allocs := testing.AllocsPerRun(10, func() {
		if MatchOrigin("https://*.example.com", long) || IsOrigin(long) {
			t.Fatal("a 1 MiB origin matched")
		}
	})
	if allocs != 0 {
		t.Errorf("refusing a 1 MiB origin allocates %.0f times", allocs)
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com", "http://localhost:3000", "https://*.example.com",
		"HTTPS://App.Example.COM:443", "https://bücher.example", "http://[::1]:3000",
		"null", "*", "file:///x", "https://*.com", "https://a.*.example.com",
		"https://app.example.com@evil.com", "https://.example.com", "https://x:0",
		"https://x:65536", "https://*.github.io", "http://127.0.0.1", "https://1.2.3",
	} {
		f.Add(s, "https://app.example.com")
	}
	f.Fuzz(func(t *testing.T, in, origin string) {
		canon, err := ParseOriginPattern(in)
		if err != nil {
			if !errors.Is(err, ErrValidation) {
				t.Fatalf("error %v is not ErrValidation", err)
			}
			return
		}
		again, err := ParseOriginPattern(canon)
		if err != nil || again != canon {
			t.Fatalf("%q: canonical %q re-parses to %q, %v", in, canon, again, err)
		}
		if !strings.Contains(canon, "*") && !IsOrigin(canon) {
			t.Fatalf("%q: canonical exact origin %q is not an origin", in, canon)
		}
		if !strings.Contains(canon, "*") && !MatchOrigin(canon, canon) {
			t.Fatalf("%q does not match itself", canon)
		}
		if IsOrigin(origin) && isASCII(origin) && !strings.Contains(origin, "xn--") {
			if c, err := ParseOriginPattern(origin); err != nil || c != origin {
				t.Fatalf("IsOrigin(%q) but it canonicalises to %q, %v", origin, c, err)
			}
		}
		if MatchOrigin(canon, origin) && !IsOrigin(origin) {
			t.Fatalf("pattern %q matched %q, which is not a canonical origin", canon, origin)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
