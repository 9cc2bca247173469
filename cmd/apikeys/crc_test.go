package main

import "hash/crc32"

// The key format's alphabet, and how many characters of the body hold the
// id, for tests that forge keys.
const (
	base62  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	idChars = 22
)

// crcSuffix is the 6-character CRC-32C block the key format ends with.
func crcSuffix(text string) string {
	v := uint64(crc32.Checksum([]byte(text), crc32.MakeTable(crc32.Castagnoli)))
	b := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		b[i] = base62[v%62]
		v /= 62
	}
	return string(b)
}
