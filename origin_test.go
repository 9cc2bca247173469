package apikeys

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"
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
		{"https://r3---sn-abc.googlevideo.com", "https://r3---sn-abc.googlevideo.com", "hyphens in a label's third and fourth places, as browsers allow"},
		{"http://00--0", "http://00--0", "single label with inner double hyphen"},
		{"https://*.ab--cd.example", "https://*.ab--cd.example", "wildcard on a label with a double hyphen"},
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
		{"https://ab--.example.com", "trailing double hyphen"},
		{"https://xn--zz.example.com", "invalid punycode"},
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
		{"https://*", "https://x", false},
		{"https://*example.com", "https://aexample.com", false},
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

// wildcardSuffixTests is the table of wildcards against the Public Suffix
// List that README.md's "Wildcards and public suffixes" shows. pattern is
// canonical; stored says whether ParseOriginPattern accepts it; match is
// MatchOrigin's answer for origin, which must hold whether or not the pattern
// is accepted today (entries stored before the rule existed are matched by
// it too). The snapshot is golang.org/x/net/publicsuffix's.
var wildcardSuffixTests = []struct {
	pattern string
	stored  bool
	origin  string
	match   bool
	why     string
}{
	// Inside one registrable domain: still fine.
	{"https://*.example.com", true, "https://app.example.com", true, "subdomain of an ordinary domain"},
	{"https://*.example.com", true, "https://a.b.example.com", true, "deep subdomain, same registrable domain"},
	{"https://*.b.example.com", true, "https://a.b.example.com", true, "wildcard below the registrable domain"},
	{"https://*.example.co.uk", true, "https://app.example.co.uk", true, "registrable domain under a two-label public suffix"},
	{"https://*.user.github.io", true, "https://app.user.github.io", true, "registrable domain under a private suffix"},
	{"http://*.dev.localhost", true, "http://app.dev.localhost", true, "unlisted TLD: the default rule makes it the suffix"},

	// Above a public suffix the list names: stored (x/net/publicsuffix
	// cannot tell), never matched across it.
	{"https://*.amazonaws.com", true, "https://attacker.s3.amazonaws.com", false, "S3 bucket under s3.amazonaws.com"},
	{"https://*.amazonaws.com", true, "https://s3.amazonaws.com", false, "host is itself a public suffix"},
	{"https://*.amazonaws.com", true, "https://ec2-1-2-3-4.us-west-2.compute.amazonaws.com", false, "host under a list wildcard deeper down"},
	{"https://*.amazonaws.com", true, "https://sts.amazonaws.com", true, "amazonaws.com's own host still matches"},
	{"https://*.core.windows.net", true, "https://x.blob.core.windows.net", false, "Azure blob container under blob.core.windows.net"},
	{"https://*.core.windows.net", true, "https://x.web.core.windows.net", false, "Azure static site under web.core.windows.net"},
	{"https://*.windows.net", true, "https://x.blob.core.windows.net", false, "two labels above the public suffix"},

	// Directly on a public suffix: refused, and never matched.
	{"https://*.com", false, "https://evil.com", false, "ICANN TLD"},
	{"https://*.co.uk", false, "https://evil.co.uk", false, "ICANN two-label suffix"},
	{"https://*.github.io", false, "https://attacker.github.io", false, "private suffix"},
	{"https://*.s3.amazonaws.com", false, "https://attacker.s3.amazonaws.com", false, "private suffix, S3"},
	{"https://*.blob.core.windows.net", false, "https://x.blob.core.windows.net", false, "private suffix, Azure"},
	{"http://*.localhost", false, "http://app.localhost", false, "unlisted single-label TLD"},

	// Every direct subdomain a public suffix through a list wildcard rule:
	// refused, and never matched.
	{"https://*.run.app", false, "https://evil.a.run.app", false, "Cloud Run: *.run.app"},
	{"https://*.run.app", false, "https://a.run.app", false, "host is itself a public suffix (*.run.app)"},
	{"https://*.compute.amazonaws.com", false, "https://ec2.us-east-1.compute.amazonaws.com", false, "private wildcard rule *.compute.amazonaws.com"},
	{"https://*.ck", false, "https://evil.foo.ck", false, "ICANN wildcard rule *.ck"},
	{"https://*.ck", false, "https://www.ck", false, "www.ck is its own registrable domain (!www.ck), not ck's"},
	{"https://*.foo.ck", false, "https://evil.foo.ck", false, "foo.ck is a public suffix through *.ck"},
	{"https://*.kawasaki.jp", false, "https://www.city.kawasaki.jp", false, "*.kawasaki.jp, even for the exception city.kawasaki.jp"},

	// Registrable domains a list wildcard or exception makes: fine.
	{"https://*.www.ck", true, "https://a.www.ck", true, "exception rule !www.ck"},
	{"https://*.bar.foo.ck", true, "https://a.bar.foo.ck", true, "registrable domain under the wildcard suffix foo.ck"},
	{"https://*.city.kawasaki.jp", true, "https://www.city.kawasaki.jp", true, "exception rule !city.kawasaki.jp"},
	{"https://*.app.a.run.app", true, "https://x.app.a.run.app", true, "a Cloud Run service's own subdomains"},
}

func TestWildcardPublicSuffix(t *testing.T) {
	t.Parallel()
	for _, tt := range wildcardSuffixTests {
		t.Run(tt.why, func(t *testing.T) {
			t.Parallel()
			canon, err := ParseOriginPattern(tt.pattern)
			switch {
			case tt.stored && (err != nil || canon != tt.pattern):
				t.Errorf("ParseOriginPattern(%q) = %q, %v; want it stored as is", tt.pattern, canon, err)
			case !tt.stored && err == nil:
				t.Errorf("ParseOriginPattern(%q) = %q, want it refused", tt.pattern, canon)
			case !tt.stored:
				var ve *ValidationError
				if !errors.As(err, &ve) || !strings.Contains(ve.Reason, "public suffix") {
					t.Errorf("ParseOriginPattern(%q): error %v does not name the public suffix", tt.pattern, err)
				}
			}
			if got := MatchOrigin(tt.pattern, tt.origin); got != tt.match {
				t.Errorf("MatchOrigin(%q, %q) = %v, want %v", tt.pattern, tt.origin, got, tt.match)
			}
			// The same answer from the other half of the package's API:
			// the registrable domain must be the base or one of its parents.
			base := strings.TrimPrefix(tt.pattern[strings.Index(tt.pattern, "://")+3:], "*.")
			host := tt.origin[strings.Index(tt.origin, "://")+3:]
			etld1, err := publicsuffix.EffectiveTLDPlusOne(host)
			inside := err == nil && (etld1 == base || strings.HasSuffix(base, "."+etld1))
			if inside != tt.match {
				t.Errorf("table is wrong for this list: %q has registrable domain %q (%v), base %q", host, etld1, err, base)
			}
		})
	}
}

// TestWildcardAbovePrivateSuffixes takes public suffixes from the list's
// private section, where anyone can create a host, and every wildcard above
// each: stored or not, none may match a host at or under the suffix.
func TestWildcardAbovePrivateSuffixes(t *testing.T) {
	t.Parallel()
	for _, suffix := range []string{
		"s3.amazonaws.com", "s3.dualstack.us-east-1.amazonaws.com", "us-east-1.elasticbeanstalk.com",
		"execute-api.eu-west-1.amazonaws.com", "cloudfront.net", "blob.core.windows.net",
		"web.core.windows.net", "azurewebsites.net", "github.io", "githubusercontent.com",
		"herokuapp.com", "appspot.com", "web.app", "firebaseapp.com", "a.run.app", "vercel.app",
		"netlify.app", "pages.dev", "workers.dev", "blogspot.com", "x.compute.amazonaws.com",
	} {
		if ps, icann := publicsuffix.PublicSuffix(suffix); ps != suffix || icann {
			t.Errorf("%s is no longer a private public suffix (%q, icann %v): update the test", suffix, ps, icann)
			continue
		}
		for base := suffix; strings.Contains(base, "."); base = base[strings.IndexByte(base, '.')+1:] {
			pattern := "https://*." + base
			for _, origin := range []string{"https://" + suffix, "https://attacker." + suffix, "https://a.b." + suffix} {
				if origin == "https://"+base {
					continue
				}
				if MatchOrigin(pattern, origin) {
					_, err := ParseOriginPattern(pattern)
					t.Errorf("MatchOrigin(%q, %q) = true across the public suffix %s (stored: %v)", pattern, origin, suffix, err == nil)
				}
			}
		}
	}
}

// Not parallel: AllocsPerRun needs the process to itself.
func TestMatchOriginExactAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if !MatchOrigin("https://app.example.com", "https://app.example.com") ||
			MatchOrigin("https://app.example.com", "https://app.example.org") ||
			MatchOrigin("https://*.example.com", "https://app.example.org") ||
			MatchOrigin("https://*.example.com", "http://app.example.com") {
			t.Fatal("wrong answer")
		}
	})
	if allocs != 0 {
		t.Errorf("exact matching and wildcard byte mismatches allocate %.0f times", allocs)
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
		if star := strings.IndexByte(canon, '*'); star >= 0 && MatchOrigin(canon, origin) {
			// A wildcard matches only inside its registrable domain, as
			// EffectiveTLDPlusOne sees it.
			base := canon[star+2:]
			if i := strings.IndexByte(base, ':'); i >= 0 {
				base = base[:i]
			}
			host := origin[strings.Index(origin, "://")+3:]
			if i := strings.IndexByte(host, ':'); i >= 0 {
				host = host[:i]
			}
			etld1, err := publicsuffix.EffectiveTLDPlusOne(host)
			if err != nil || (etld1 != base && !strings.HasSuffix(base, "."+etld1)) {
				t.Fatalf("pattern %q matched %q across a public suffix: registrable domain %q, %v", canon, origin, etld1, err)
			}
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

// BenchmarkMatchOrigin measures request-time matching: an exact pattern is a
// byte comparison; a wildcard whose bytes match also costs one Public Suffix
// List lookup.
//
//	go test -run '^$' -bench '^BenchmarkMatchOrigin$' -benchmem -count 10 .
func BenchmarkMatchOrigin(b *testing.B) {
	for _, bc := range []struct{ name, pattern, origin string }{
		{"exact", "https://app.example.com", "https://app.example.com"},
		{"exact-miss", "https://app.example.com", "https://app.example.org"},
		{"wildcard", "https://*.example.com", "https://app.example.com"},
		{"wildcard-deep", "https://*.example.co.uk", "https://a.b.app.example.co.uk"},
		{"wildcard-miss", "https://*.example.com", "https://app.example.org"},
		{"wildcard-across-suffix", "https://*.amazonaws.com", "https://attacker.s3.amazonaws.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MatchOrigin(bc.pattern, bc.origin)
			}
		})
	}
}
