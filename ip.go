package apikeys

import (
	"net/netip"
	"strings"
)

// Client addresses
//
// allowed_ips entries are IPv4 or IPv6 addresses or CIDR prefixes, kept
// as netip.Prefix in canonical form: the address masked to the prefix
// length, IPv4-mapped IPv6 written as IPv4 ("::ffff:10.0.0.0/104" is
// "10.0.0.0/8"), a single address as a full-length prefix
// ("203.0.113.7/32"), no zones. A request's client address is unmapped the
// same way before it is compared.

// ParseIPPrefix validates an allowed_ips entry and returns its canonical
// form. The error is a *ValidationError for field "allowed_ips".
func ParseIPPrefix(s string) (netip.Prefix, error) {
	p, reason := canonicalPrefix(s)
	if reason != "" {
		return netip.Prefix{}, &ValidationError{Field: "allowed_ips", Reason: reason}
	}
	return p, nil
}

func canonicalPrefix(s string) (netip.Prefix, string) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, "must not have a zone"
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, "must be an IP address or a CIDR prefix such as 203.0.113.0/24"
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, "must be an IP address or a CIDR prefix such as 203.0.113.0/24"
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, "an IPv4-mapped prefix needs at least 96 bits"
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), ""
}

func (m *Manager) checkIPs(probs *problems, in []string) []netip.Prefix {
	return checkList(probs, "allowed_ips", in, m.cfg.MaxIPs, canonicalPrefix)
}

// ipAllowed reports whether addr falls in one of the prefixes.
func ipAllowed(prefixes []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// prefixWithin reports whether every address of p lies in one of outer.
func prefixWithin(outer []netip.Prefix, p netip.Prefix) bool {
	for _, o := range outer {
		if o.Bits() <= p.Bits() && o.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
