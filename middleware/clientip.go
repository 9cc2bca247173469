package middleware

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address a request came from: RemoteAddr, or, when
// RemoteAddr is a trusted proxy, the rightmost address that is not one in
// the header the proxies write (Config.ForwardedHeader). The other
// forwarding header is never read: a proxy that writes one passes the
// other through from the client, who could then pick its address. It
// returns the zero Addr when the address cannot be
// known (a RemoteAddr that is no IP, an obfuscated or malformed entry
// where the client should be), which keys restricted to addresses refuse.
func (mw *Middleware) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !mw.trusted(ip) {
		return ip
	}
	hops := r.Header.Values(mw.fwdHeader)
	if len(hops) == 0 {
		return ip // a trusted proxy that forwards nothing: it is the client
	}
	if mw.fwdHeader == "Forwarded" {
		return mw.walk(hops, forwardedFor)
	}
	return mw.walk(hops, parseHop)
}

func (mw *Middleware) trusted(ip netip.Addr) bool {
	for _, p := range mw.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// walk reads the comma-separated entries of the header values from the
// right and returns the first address that is not a trusted proxy, or the
// leftmost when every hop is trusted.
func (mw *Middleware) walk(values []string, parse func(string) (netip.Addr, bool)) netip.Addr {
	var last netip.Addr
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			entry := v
			j := strings.LastIndexByte(v, ',')
			if j >= 0 {
				entry = v[j+1:]
			}
			ip, ok := parse(strings.TrimSpace(entry))
			if !ok {
				return netip.Addr{}
			}
			if !mw.trusted(ip) {
				return ip
			}
			last = ip
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return last
}

// maxHopLen bounds one forwarding entry: "[IPv6]:port" with room to spare.
const maxHopLen = 64

// parseHop parses an X-Forwarded-For entry: an address, perhaps with a
// port, IPv6 perhaps in one pair of brackets.
func parseHop(s string) (netip.Addr, bool) {
	if len(s) > maxHopLen {
		return netip.Addr{}, false
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1] // "[2001:db8::1]" without a port
		if strings.ContainsAny(s, "[]") {
			return netip.Addr{}, false
		}
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), ip.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	return netip.Addr{}, false
}

// forwardedFor parses the for= parameter of one Forwarded element (RFC
// 7239): for=192.0.2.60;proto=http or for="[2001:db8::1]:4711". An
// element without for=, or with an obfuscated or unknown node, gives no
// address.
func forwardedFor(element string) (netip.Addr, bool) {
	for pair := range strings.SplitSeq(element, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(k, "for") {
			continue
		}
		return parseHop(strings.Trim(v, `"`))
	}
	return netip.Addr{}, false
}
