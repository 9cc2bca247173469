package apikeys

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Origin rules
//
// An allowed_origins entry is an exact origin, "https://app.example.com",
// "http://localhost:3000", or a subdomain wildcard, "https://*.example.com",
// which matches one or more labels under example.com (never example.com
// itself) with the same scheme and port, inside example.com's registrable
// domain (see below). Entries are stored in the canonical
// form browsers use when they send an Origin header (the WHATWG "ASCII
// serialization of an origin"), so that request-time matching is a byte
// comparison:
//
//   - scheme and host are lower-cased;
//   - a default port is dropped (":443" on https, ":80" on http), other ports
//     are kept, written without leading zeros;
//   - an internationalised host is stored in punycode ("bücher.example"
//     becomes "xn--bcher-kva.example"), processed as browsers do (UTS #46
//     without its hyphen check: "r3---sn-abc.googlevideo.com" is a host,
//     while a label starting or ending with "-" is refused);
//   - IPv4 and bracketed IPv6 literals are allowed in exact entries and
//     written in their shortest form; wildcards need a domain name;
//   - a trailing dot on the host is refused rather than silently dropped,
//     since browsers treat "example.com." as a different origin.
//
// Refused: "null", "*", schemes other than http and https, a path (even "/"),
// query, fragment, userinfo, whitespace or control characters, an empty host
// or label, a port of 0 or above 65535, a "*" anywhere but as the whole first
// label, and the wildcards below that can only reach other owners' sites.
//
// A wildcard stays inside one registrable domain. Public suffixes are the
// names under which anyone can register a site: "com", "co.uk", and, in the
// Public Suffix List's private section, "github.io", "s3.amazonaws.com",
// "blob.core.windows.net" or every "<name>.run.app" (golang.org/x/net/publicsuffix
// holds a snapshot of the list, both sections). The registrable domain of a
// host is its public suffix plus one label (eTLD+1). "https://*.<base>"
// matches a host H, with the scheme and port matching, only when
//
//   - H is one or more labels followed by "." and base, and
//   - H's registrable domain is base or a parent of base; equivalently, no
//     public suffix is base itself or lies between base and H, H included,
//     so H's public suffix is shorter than base.
//
// So "https://*.example.com" matches "https://a.b.example.com" and
// "https://*.b.example.com" matches "https://a.b.example.com" (registrable
// domain example.com, a parent of b.example.com), while
// "https://*.amazonaws.com" never matches "https://attacker.s3.amazonaws.com"
// (registrable domain attacker.s3.amazonaws.com, under the public suffix
// s3.amazonaws.com) nor "https://s3.amazonaws.com" itself, a public suffix.
// Amazon's own hosts under amazonaws.com still match it. An exception rule
// makes a registrable domain of a name under a list wildcard:
// "https://*.www.ck" matches "https://a.www.ck" ("!www.ck" against "*.ck").
//
// The rule is enforced twice:
//
//   - When an entry is stored, a wildcard that could never match any host is
//     refused: one directly on a public suffix
//     ("https://*.com", "https://*.co.uk", "https://*.github.io",
//     "https://*.foo.ck") and one whose every direct subdomain is a public
//     suffix through a list wildcard rule ("https://*.run.app",
//     "https://*.ck", "https://*.compute.amazonaws.com",
//     "https://*.kawasaki.jp").
//   - At request time, in MatchOrigin, on every host: this is what stops a
//     wildcard above a suffix the list names label by label. x/net/publicsuffix
//     answers only for a given name and cannot list the rules under a domain,
//     so "https://*.amazonaws.com" (above "s3.amazonaws.com") and
//     "https://*.core.windows.net" (above "blob.core.windows.net") are stored,
//     and entries stored before these rules existed are checked the same way.
//
// The list is the snapshot compiled into the golang.org/x/net version the
// service is built with: upgrading x/net can change which hosts a stored
// wildcard matches and which new wildcards are refused, always by this rule.

// MaxOriginLen bounds origins and origin entries, in bytes. Longer request
// origins are refused before any other work.
const MaxOriginLen = 2048

// ParseOriginPattern validates an allowed_origins entry, exact or wildcard,
// and returns its canonical form. The error is a *ValidationError for field
// "origin"; Manager reports it under the entry's index.
func ParseOriginPattern(s string) (string, error) {
	canon, reason := canonicalOrigin(s, true)
	if reason != "" {
		return "", &ValidationError{Field: "origin", Reason: reason}
	}
	return canon, nil
}

// IsOrigin reports whether s is an origin exactly as a browser serializes it
// in an Origin header: canonical, no wildcard. "null" is not. It runs on
// every request, so it checks the canonical form's syntax directly (lower-
// case ASCII labels, shortest IP literals, no default or zero-padded
// port) without IDNA processing, and allocates nothing for host names.
func IsOrigin(s string) bool {
	if len(s) > MaxOriginLen {
		return false
	}
	var rest string
	var defPort string
	switch {
	case strings.HasPrefix(s, "https://"):
		rest, defPort = s[len("https://"):], "443"
	case strings.HasPrefix(s, "http://"):
		rest, defPort = s[len("http://"):], "80"
	default:
		return false
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return false
		}
		host, port = rest[:end+1], rest[end+1:]
		if port != "" && port[0] != ':' {
			return false // junk after the literal
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" || a.String() != host[1:end] {
			return false
		}
	} else {
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i:]
		}
		if len(host) > 253 || !validSubdomainLabels(host) {
			return false
		}
		last := host[strings.LastIndexByte(host, '.')+1:]
		if strings.Trim(last, "0123456789") == "" && !canonicalIPv4(host) {
			return false
		}
	}
	if port == "" {
		return true
	}
	port = port[1:] // after ':'
	if port == "" || len(port) > 5 || port[0] == '0' || port == defPort || strings.Trim(port, "0123456789") != "" {
		return false
	}
	n, _ := strconv.Atoi(port)
	return n <= 65535
}

// canonicalIPv4 reports whether s is four decimal octets without leading
// zeros.
func canonicalIPv4(s string) bool {
	for i := 0; i < 4; i++ {
		j := strings.IndexByte(s, '.')
		if i == 3 {
			j = len(s)
		}
		if j <= 0 || j > 3 || (j > 1 && s[0] == '0') {
			return false
		}
		n, err := strconv.Atoi(s[:j])
		if err != nil || n > 255 {
			return false
		}
		if i < 3 {
			s = s[j+1:]
		} else if j != len(s) {
			return false
		}
	}
	return true
}

// MatchOrigin reports whether the request origin matches the canonical
// pattern. Matching is byte-exact: a request origin that is not in
// canonical form never matches. An exact pattern is a byte comparison and
// allocates nothing, nor does a wildcard whose bytes do not match; a
// wildcard whose bytes match also looks the host up in the Public Suffix
// List (see Origin rules) and matches only inside the pattern's registrable
// domain. That lookup costs a few hundred nanoseconds and one small
// allocation inside golang.org/x/net/publicsuffix.
func MatchOrigin(pattern, origin string) bool {
	if len(origin) > MaxOriginLen || len(origin) == 0 {
		return false
	}
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == origin
	}
	// pattern is "<scheme>://*.<domain>[:port]": origin must be
	// "<scheme>://<labels>.<domain>[:port]" with at least one label.
	head, tail := pattern[:star], pattern[star+1:]
	if !strings.HasPrefix(tail, ".") || len(origin) <= len(head)+len(tail) || origin[:len(head)] != head || origin[len(origin)-len(tail):] != tail {
		return false
	}
	if !validSubdomainLabels(origin[len(head) : len(origin)-len(tail)]) {
		return false
	}
	// The bytes match; now the one rule bytes cannot check. tail is
	// ".<base>[:port]" and origin ends with it.
	base := tail[1:]
	if i := strings.IndexByte(base, ':'); i >= 0 {
		base = base[:i]
	}
	host := origin[len(head) : len(origin)-len(tail)+1+len(base)]
	return sameRegistrableDomain(host, base)
}

// sameRegistrableDomain reports whether host, one or more labels under base,
// lies in a registrable domain (eTLD+1) that is base or one of base's
// parents: whether no public suffix, of the Public Suffix List's ICANN or
// private section, is base itself or lies between base and host, host
// included. Public suffixes are label-aligned suffixes of host, as base is,
// so this holds exactly when host's public suffix is shorter than base.
//
// It is the only Public Suffix List work done at request time, and runs only
// after a wildcard's bytes matched. It costs several times the byte checks
// (see BenchmarkMatchOrigin) plus the one small allocation
// publicsuffix.PublicSuffix makes (netip.ParseAddr's error, boxed).
func sameRegistrableDomain(host, base string) bool {
	ps, _ := publicsuffix.PublicSuffix(host)
	return len(ps) < len(base)
}

// wildcardBaseRefusal returns why the wildcard "*.<base>" is refused, or ""
// for a base a wildcard may stand on. base is a canonical domain name.
//
// It asks the request-time question, sameRegistrableDomain, about the host
// "*.<base>": "*" is a label no Public Suffix List rule names, so that host
// stands for every label directly under base that the list does not name
// itself. It is refused when base is a public suffix ("*.com",
// "*.co.uk", "*.github.io", "*.foo.ck") or when the list has a wildcard
// rule for the names directly under base ("*.run.app", "*.ck",
// "*.compute.amazonaws.com", "*.kawasaki.jp"): such a wildcard can never
// match anything but sites of other owners.
//
// The package offers no way to ask which rules lie deeper under base:
// PublicSuffix and EffectiveTLDPlusOne answer for one name, the table is
// unexported, and the icann result says nothing about names below (for
// "*.amazonaws.com" it is ("com", true), as for "*.example.com"). So a wildcard above a public suffix that the list names label by label,
// "*.amazonaws.com" above "s3.amazonaws.com" or "*.core.windows.net"
// above "blob.core.windows.net", is stored; MatchOrigin then refuses every
// host at or under such a suffix.
func wildcardBaseRefusal(base string) string {
	ps, _ := publicsuffix.PublicSuffix("*." + base)
	switch {
	case len(ps) < len(base):
		return ""
	case ps == base:
		return "wildcard directly on a public suffix (" + base + ") is not allowed"
	default:
		return "wildcard on " + base + " is not allowed: the names directly under it are public suffixes " +
			"(Public Suffix List rule \"*." + base + "\"), so it could only match other owners' sites"
	}
}

// validSubdomainLabels reports whether s is one or more dot-separated,
// non-empty, lower-case LDH labels.
func validSubdomainLabels(s string) bool {
	labelLen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if labelLen == 0 || s[i-1] == '-' {
				return false
			}
			labelLen = 0
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			labelLen++
		case c == '-':
			if labelLen == 0 {
				return false
			}
			labelLen++
		default:
			return false
		}
		if labelLen > 63 {
			return false
		}
	}
	return labelLen > 0 && s[len(s)-1] != '-'
}

// canonicalOrigin returns the canonical form of s, or a reason it is refused.
func canonicalOrigin(s string, allowWildcard bool) (canon, reason string) {
	switch {
	case len(s) > MaxOriginLen:
		return "", "longer than " + strconv.Itoa(MaxOriginLen) + " bytes"
	case s == "":
		return "", "empty"
	case s == "null":
		return "", `"null" is not an allowed origin`
	case s == "*":
		return "", `"*" alone is not allowed; list origins or use "https://*.example.com"`
	case !utf8.ValidString(s):
		return "", "not valid UTF-8"
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0xa0 || r == 0xfeff || r == 0x2028 || r == 0x2029 {
			return "", "contains whitespace or control characters"
		}
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", `must be "scheme://host[:port]"`
	}
	scheme := strings.ToLower(s[:i])
	if scheme != "http" && scheme != "https" {
		return "", "scheme must be http or https"
	}
	rest := s[i+3:]
	if j := strings.IndexAny(rest, "/?#@\\"); j >= 0 {
		switch rest[j] {
		case '@':
			return "", "must not contain userinfo"
		case '?':
			return "", "must not contain a query"
		case '#':
			return "", "must not contain a fragment"
		default:
			return "", "must not contain a path"
		}
	}
	host, port, reason := splitHostPort(rest)
	if reason != "" {
		return "", reason
	}
	wildcard := false
	if strings.HasPrefix(host, "*.") {
		if !allowWildcard {
			return "", "wildcard not allowed here"
		}
		wildcard = true
		host = host[2:]
	}
	if strings.Contains(host, "*") {
		return "", `"*" is only allowed as the whole first label, as in "https://*.example.com"`
	}
	host, reason = canonicalHost(host, wildcard)
	if reason != "" {
		return "", reason
	}
	if wildcard {
		if reason := wildcardBaseRefusal(host); reason != "" {
			return "", reason
		}
		host = "*." + host
	}
	if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) {
		port = 0
	}
	canon = scheme + "://" + host
	if port != 0 {
		canon += ":" + strconv.Itoa(port)
	}
	return canon, ""
}

// splitHostPort splits "host[:port]" or "[v6][:port]"; port 0 means none.
func splitHostPort(s string) (host string, port int, reason string) {
	host = s
	var ps string
	hasPort := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, "unclosed IPv6 literal"
		}
		host, ps = s[:end+1], s[end+1:]
		if ps != "" {
			if ps[0] != ':' {
				return "", 0, "unexpected characters after IPv6 literal"
			}
			ps, hasPort = ps[1:], true
		}
	} else if j := strings.LastIndexByte(s, ':'); j >= 0 {
		host, ps, hasPort = s[:j], s[j+1:], true
	}
	if host == "" {
		return "", 0, "empty host"
	}
	if !hasPort {
		return host, 0, ""
	}
	if ps == "" || len(ps) > 5 {
		return "", 0, "port must be 1 to 65535"
	}
	for i := 0; i < len(ps); i++ {
		if ps[i] < '0' || ps[i] > '9' {
			return "", 0, "port must be 1 to 65535"
		}
	}
	port, _ = strconv.Atoi(ps)
	if port < 1 || port > 65535 {
		return "", 0, "port must be 1 to 65535"
	}
	return host, port, ""
}

// hostProfile is idna.Lookup without CheckHyphens, as browsers run UTS #46
// for the WHATWG URL standard: they send hosts such as
// "r3---sn-abc.googlevideo.com", with "--" as a label's third and fourth
// characters, and IsOrigin accepts them, so they can be listed too. Leading
// and trailing hyphens are still refused, by validSubdomainLabels.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.CheckHyphens(false))

// canonicalHost lower-cases host, converts it to punycode and checks its
// labels, or canonicalises an IP literal.
func canonicalHost(host string, wildcard bool) (string, string) {
	if strings.HasPrefix(host, "[") {
		if wildcard {
			return "", "wildcard needs a domain name"
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", "invalid IPv6 literal"
		}
		return "[" + a.String() + "]", ""
	}
	if strings.Contains(host, ":") {
		return "", "invalid host"
	}
	if strings.HasSuffix(host, ".") {
		return "", "host must not end with a dot"
	}
	ascii, err := hostProfile.ToASCII(host)
	if err != nil {
		return "", "invalid host name"
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > 253 {
		return "", "host name longer than 253 characters"
	}
	labels := strings.Split(ascii, ".")
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		// A numeric last label makes the host an IPv4 address for browsers.
		a, err := netip.ParseAddr(ascii)
		if err != nil || !a.Is4() {
			return "", "invalid IPv4 address"
		}
		if wildcard {
			return "", "wildcard needs a domain name"
		}
		return a.String(), ""
	}
	for _, l := range labels {
		if l == "" {
			return "", "empty label in host"
		}
		if !validSubdomainLabels(l) {
			return "", "host labels must be letters, digits and inner hyphens, at most 63 characters"
		}
	}
	return ascii, ""
}
