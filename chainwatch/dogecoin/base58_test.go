package dogecoin_test

import (
	"bytes"
	"crypto/sha256"
	"math/big"
	"strings"
)

// The tests check addresses and keys with this base58check, written from its definition
// (Bitcoin's base58 alphabet; checksum = first 4 bytes of SHA-256(SHA-256(payload)); a leading
// zero byte is a leading '1'), sharing no code with btcutil's base58 that the package uses.

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func doubleSHA256(data []byte) []byte {
	first := sha256.Sum256(data)
	second := sha256.Sum256(first[:])
	return second[:]
}

// base58CheckEncode returns base58(version || payload || checksum).
func base58CheckEncode(version []byte, payload []byte) string {
	data := append(append([]byte{}, version...), payload...)
	data = append(data, doubleSHA256(data)[:4]...)
	number := new(big.Int).SetBytes(data)
	radix := big.NewInt(58)
	var digits []byte
	for number.Sign() > 0 {
		remainder := new(big.Int)
		number.DivMod(number, radix, remainder)
		digits = append(digits, base58Alphabet[remainder.Int64()])
	}
	for _, b := range data {
		if b != 0 {
			break
		}
		digits = append(digits, '1')
	}
	for i, j := 0, len(digits)-1; i < j; i, j = i+1, j-1 {
		digits[i], digits[j] = digits[j], digits[i]
	}
	return string(digits)
}

// base58CheckDecode returns the bytes of text without the checksum, and whether the text was
// base58 with a valid checksum.
func base58CheckDecode(text string) ([]byte, bool) {
	number := new(big.Int)
	radix := big.NewInt(58)
	for _, r := range text {
		digit := strings.IndexRune(base58Alphabet, r)
		if digit < 0 {
			return nil, false
		}
		number.Mul(number, radix)
		number.Add(number, big.NewInt(int64(digit)))
	}
	leadingZeros := len(text) - len(strings.TrimLeft(text, "1"))
	data := append(make([]byte, leadingZeros), number.Bytes()...)
	if len(data) < 5 {
		return nil, false
	}
	payload, checksum := data[:len(data)-4], data[len(data)-4:]
	return payload, bytes.Equal(checksum, doubleSHA256(payload)[:4])
}
