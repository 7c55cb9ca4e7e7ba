package httpapi

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// idKind is the first character of an ID this package makes: it tells a reader (and a log
// search) what the ID names.
type idKind byte

// ID kinds.
const (
	idKindProject     idKind = 'p'
	idKindAsset       idKind = 'a'
	idKindWallet      idKind = 'w'
	idKindTransaction idKind = 't'
)

// idRandomChars is how many base32 characters of randomness an ID carries (100 bits).
const idRandomChars = 20

// idEncoding is lowercase base32 without padding: URL-safe and inside the [A-Za-z0-9_.-] ID
// alphabet.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Route names the entity an ID is made for: its slot comes from the wallet it names, else from
// its (project, customer) key, so that the ID routes to the shard of that entity.
type Route struct {
	ProjectID  string
	CustomerID string
	WalletID   string
}

// slotOf returns the routing slot of the entity a request creates: the slot of the wallet it
// names, else the hash of its (project, customer) key (see keyspace.SlotOf).
func slotOf(route Route) keyspace.Slot {
	if route.WalletID != "" {
		if slot, ok := keyspace.SlotOfID(route.WalletID); ok {
			return slot
		}
	}
	return keyspace.SlotOf(route.ProjectID, route.CustomerID)
}

// idPrefix is the kind letter and slot of an ID the FSM completes itself (transactions: the
// shard's transaction sequence follows, which makes them unique without a lookup).
func idPrefix(kind idKind, route Route) string {
	return string(kind) + keyspace.SlotHex(slotOf(route))
}

// newID makes an ID that a client will hold later: its kind, the 4-hex-digit slot of route (so
// any node can route the ID without a lookup), then 100 random bits from crypto/rand, e.g.
// "w0000" + 20 base32 characters. IDs are made here, outside the FSM, so that applying the
// command stays deterministic.
func newID(kind idKind, route Route) string {
	var random [13]byte // 104 bits, encoded to 21 characters, cut to 20
	if _, err := rand.Read(random[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ crashes the process itself).
		panic(fmt.Sprintf("httpapi: crypto/rand: %v", err))
	}
	return string(kind) + keyspace.SlotHex(slotOf(route)) + idEncoding.EncodeToString(random[:])[:idRandomChars]
}
