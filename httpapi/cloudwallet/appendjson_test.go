package cloudwallet

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// checkAppendJSON: AppendJSON writes what json.Marshal writes, or gives up leaving dst as it was.
func checkAppendJSON(t *testing.T, v Transaction) (appended bool) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	got, ok := v.AppendJSON(bytes.Clone(prefix))
	if !ok {
		if !bytes.Equal(got, prefix) {
			t.Fatalf("%+v: gave up leaving %q", v, got)
		}
		return false
	}
	if !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendJSON %s\njson.Marshal %s", got[len(prefix):], want)
	}
	return true
}

func TestTransactionAppendJSON(t *testing.T) {
	index := 1
	big := fsm.Amount{Hi: 3, Lo: 17}
	cases := []struct {
		v     Transaction
		plain bool
	}{
		{Transaction{ID: "t0001000000000000002a", ProjectID: "p", ReferenceID: "r-1", Status: "completed", CreatedAt: 1733400000000,
			Operations: []Operation{{Type: "transfer", From: "w1", To: "w2", Amount: fsm.AmountFromUint64(125)}}}, true},
		{Transaction{Status: "failed", FailedOperationIndex: &index, FailureReason: "InsufficientFunds", FailureMessage: "wallet w1 holds 5, needs 7",
			Operations: []Operation{{Type: "issue", To: "w", Amount: big}, {Type: "hold", From: "w", Amount: fsm.AmountFromUint64(1), ExpiresAt: -5, HoldID: "h1"}}}, true},
		{Transaction{Operations: []Operation{}}, true},
		{Transaction{}, true},
		{Transaction{ReferenceID: "caf\u00e9"}, false},
		{Transaction{ReferenceID: "a<b"}, false},
		{Transaction{ReferenceID: "a&b"}, false},
		{Transaction{ReferenceID: `a"b`}, false},
		{Transaction{ReferenceID: `a\b`}, false},
		{Transaction{ReferenceID: "a\x7fb"}, false},
		{Transaction{ReferenceID: "a\nb"}, false},
		{Transaction{FailureMessage: "x > y"}, false},
		{Transaction{Operations: []Operation{{To: "w\u2028"}}}, false},
		{Transaction{Operations: []Operation{{HoldID: "h\xff"}}}, false},
	}
	for _, c := range cases {
		if appended := checkAppendJSON(t, c.v); appended != c.plain {
			t.Errorf("%+v: appended %v, want %v", c.v, appended, c.plain)
		}
	}
}

func FuzzTransactionAppendJSON(f *testing.F) {
	f.Add("t1", "p", "r", "completed", "transfer", "w1", "w2", uint64(5), int64(0), "", "", "", int64(7), false)
	f.Add("t1", "p", "r\u00e9<", "failed", "hold", "w1", "", uint64(0), int64(-3), "h", "Code", "m&", int64(-7), true)
	f.Fuzz(func(t *testing.T, id, project, reference, status, opType, from, to string, amount uint64, expires int64,
		hold, reason, message string, created int64, failed bool) {
		v := Transaction{ID: id, ProjectID: project, ReferenceID: reference, Status: status, FailureReason: reason,
			FailureMessage: message, CreatedAt: created, Operations: []Operation{{Type: opType, From: from, To: to,
				Amount: fsm.Amount{Hi: amount >> 60, Lo: amount}, ExpiresAt: expires, HoldID: hold}}}
		if failed {
			index := int(expires % 100)
			v.FailedOperationIndex = &index
		}
		checkAppendJSON(t, v)
	})
}
