package apikeys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/google/uuid"
)

// Key format
//
//	<prefix>_<sk|pk>_<body>
//
// The body is 72 base62 characters: the key's id (16 bytes, the selector the
// store is read by) in 22 characters, a secret (32 bytes from crypto/rand,
// the verifier) in 44, and in the last 6 a CRC-32C (Castagnoli) of all the key's
// text before it, prefix and type included (GitHub's scheme: anyone can
// check a key's shape without knowing how the body decodes). Bytes are
// encoded in fixed-width blocks, 8 bytes as 11 characters and the checksum's
// 4 bytes as 6, so every key of a prefix has the same length and no
// big-number arithmetic is needed. "_" is the only separator and never
// occurs in the body, so a key is one "word" when double-clicked and easy
// to find with a regular expression.

const (
	idLen     = 16
	secretLen = 32
	idChars   = 2 * 11             // 22
	bodyLen   = idChars + 4*11 + 6 // 72
	crcChars  = 6

	// MaxPrefixLen bounds Config.Prefix.
	MaxPrefixLen = 16

	// hintTail is how many of a key's last characters its hint shows.
	hintTail = 4
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62Val maps a byte to its digit value, or 0xff.
var base62Val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = byte(i)
	}
	return t
}()

var errMalformed = errors.New("malformed key")

// typeTag is the key type's tag in the key text.
func typeTag(t KeyType) string {
	if t == Private {
		return "sk"
	}
	return "pk"
}

// encodeBlock writes v as exactly len(dst) base62 digits.
func encodeBlock(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = base62[v%62]
		v /= 62
	}
}

// encodeBytes writes src, a multiple of 8 bytes, as 11 digits per 8 bytes.
func encodeBytes(dst, src []byte) {
	for i := 0; i < len(src)/8; i++ {
		encodeBlock(dst[i*11:(i+1)*11], binary.BigEndian.Uint64(src[i*8:]))
	}
}

// decodeID reads the id's two blocks side by side, so that the CPU overlaps
// their multiply chains.
func decodeID(src string) (hi, lo uint64, ok bool) {
	a, b := src[:11], src[11:22]
	var badA, badB byte
	for i := 0; i < 10; i++ {
		da, db := base62Val[a[i]], base62Val[b[i]]
		badA |= da
		badB |= db
		hi = hi*62 + uint64(da&0x3f)
		lo = lo*62 + uint64(db&0x3f)
	}
	hi, okA := finishBlock11(hi, base62Val[a[10]], badA)
	lo, okB := finishBlock11(lo, base62Val[b[10]], badB)
	return hi, lo, okA && okB
}

// finishBlock11 adds the 11th digit d to ten digits' value v, detecting
// overflow and any bad digit seen (bad is the OR of all digit values).
func finishBlock11(v uint64, d, bad byte) (uint64, bool) {
	bad |= d
	hi, lo := bits.Mul64(v, 62)
	lo, carry := bits.Add64(lo, uint64(d&0x3f), 0)
	return lo, bad&0x80 == 0 && hi == 0 && carry == 0
}

// decodeBlock6 reads 6 base62 digits holding 4 bytes.
func decodeBlock6(src string) (v uint32, ok bool) {
	src = src[:6]
	var bad byte
	var w uint64
	for i := 0; i < 6; i++ {
		d := base62Val[src[i]]
		bad |= d
		w = w*62 + uint64(d&0x3f)
	}
	return uint32(w), bad&0x80 == 0 && w>>32 == 0
}

// base62Only reports whether every byte of s is a base62 digit. (A SWAR
// version checking eight bytes per step measured no faster.)
func base62Only(s string) bool {
	var bad byte
	for i := 0; i < len(s); i++ {
		bad |= base62Val[s[i]]
	}
	return bad&0x80 == 0
}

// checksum is the CRC-32C (Castagnoli) of text: the polynomial with a CPU
// instruction on amd64 (SSE 4.2) and arm64, several times faster than IEEE
// on inputs this short. hash/crc32 takes a []byte and retains nothing, so
// the string's bytes are lent to it in place rather than copied, which
// would allocate on every request.
func checksum(text string) uint32 {
	return crc32.Checksum(unsafe.Slice(unsafe.StringData(text), len(text)), castagnoli)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// keyLen is the length of every key with this prefix.
func keyLen(prefix string) int { return len(prefix) + 4 + bodyLen }

// generateKey returns a new key text for id; its secret comes from
// crypto/rand.
func generateKey(prefix string, t KeyType, id uuid.UUID) (string, error) {
	var secret [secretLen]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	tag := typeTag(t)
	buf := make([]byte, keyLen(prefix))
	n := copy(buf, prefix)
	buf[n], buf[n+1], buf[n+2], buf[n+3] = '_', tag[0], tag[1], '_'
	n += 4
	encodeBytes(buf[n:n+idChars], id[:])
	encodeBytes(buf[n+idChars:], secret[:])
	crcAt := len(buf) - crcChars
	encodeBlock(buf[crcAt:], uint64(checksum(string(buf[:crcAt]))))
	return string(buf), nil
}

// parsedKey is what a key's text says about itself, before any store read.
type parsedKey struct {
	id  uuid.UUID
	typ KeyType
}

// parseKey checks a key's prefix, type tag, length, alphabet and checksum,
// and decodes its id. It allocates nothing and never reads the store.
func parseKey(prefix, key string) (parsedKey, error) {
	var p parsedKey
	if len(key) != keyLen(prefix) || key[:len(prefix)] != prefix || key[len(prefix)] != '_' || key[len(prefix)+3] != '_' {
		return p, errMalformed
	}
	switch key[len(prefix)+1 : len(prefix)+3] {
	case "sk":
		p.typ = Private
	case "pk":
		p.typ = Public
	default:
		return p, errMalformed
	}
	body := key[len(prefix)+4:]
	hi, lo, ok1 := decodeID(body)
	crc, ok2 := decodeBlock6(body[bodyLen-crcChars:])
	if !(ok1 && ok2 && base62Only(body[idChars:bodyLen-crcChars])) || checksum(key[:len(key)-crcChars]) != crc {
		return p, errMalformed
	}
	binary.BigEndian.PutUint64(p.id[:8], hi)
	binary.BigEndian.PutUint64(p.id[8:], lo)
	return p, nil
}

// ValidKeyFormat reports whether s is well formed for the prefix: right
// length, prefix, type tag, alphabet and checksum. It says nothing about
// whether the key exists; services can use it to reject garbage early.
func ValidKeyFormat(prefix, s string) bool {
	_, err := parseKey(prefix, s)
	return err == nil
}

// ParseKeyID returns the id and type a key of prefix carries, and false
// for a string that is not one (ValidKeyFormat). The id is public: it
// names the key in logs, leak reports and the store, never proves it.
func ParseKeyID(prefix, s string) (uuid.UUID, KeyType, bool) {
	p, err := parseKey(prefix, s)
	return p.id, p.typ, err == nil
}

// hint is the non-secret display form of a key: its prefix and type, and
// its last four characters.
func hint(prefix string, key string) string {
	return key[:len(prefix)+4] + "..." + key[len(key)-hintTail:]
}

// Digest is what a store keeps in place of a key value.
type Digest [sha256.Size]byte

// digester computes digests: HMAC-SHA-256 with the pepper, or SHA-256.
type digester struct {
	pool *sync.Pool // of *hmacState; nil without pepper
}

// hmacState is a pooled HMAC with its own buffers, so that a digest
// allocates nothing once the pool is warm.
type hmacState struct {
	h   hash.Hash
	in  [maxKeyLen]byte
	sum [sha256.Size]byte
}

func newDigester(pepper []byte) digester {
	if len(pepper) == 0 {
		return digester{}
	}
	key := append([]byte(nil), pepper...)
	return digester{pool: &sync.Pool{New: func() any { return &hmacState{h: hmac.New(sha256.New, key)} }}}
}

// maxKeyLen bounds the buffers digest uses; digest is only called with keys
// that parsed, which are never longer.
const maxKeyLen = MaxPrefixLen + 4 + bodyLen

func (d digester) digest(key string) Digest {
	if d.pool == nil {
		var buf [maxKeyLen]byte
		return sha256.Sum256(buf[:copy(buf[:], key)])
	}
	st := d.pool.Get().(*hmacState)
	st.h.Reset()
	st.h.Write(st.in[:copy(st.in[:], key)])
	out := Digest(st.h.Sum(st.sum[:0]))
	d.pool.Put(st)
	return out
}

func (d Digest) equal(o Digest) bool {
	return subtle.ConstantTimeCompare(d[:], o[:]) == 1
}
