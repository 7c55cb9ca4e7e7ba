package ledger

import (
	"errors"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// TestWalletReadsRejectInOrder: GetWallet and ListEntries read the wallet first and the project
// only to name what is missing; the answers are those of reading the project first: a missing
// project is ProjectNotFound, a missing wallet or another project's wallet WalletNotFound.
func TestWalletReadsRejectInOrder(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p2", Name: "other"})
	tl.ok(tx("fund", issue("W1", 5)))
	for _, c := range []struct {
		name, project, wallet string
		want                  fsm.ErrorCode
	}{
		{"the wallet", "p1", "W1", ""},
		{"no such project", "p9", "W1", CodeProjectNotFound},
		{"no such project or wallet", "p9", "W9", CodeProjectNotFound},
		{"no such wallet", "p1", "W9", CodeWalletNotFound},
		{"another project's wallet", "p2", "W1", CodeWalletNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := tl.ledger.GetWallet(c.project, c.wallet)
			checkCode(t, "GetWallet", err, c.want)
			if c.want == "" && (w == nil || w.ID != c.wallet) {
				t.Fatalf("GetWallet = %+v", w)
			}
			entries, _, err := tl.ledger.ListEntries(c.project, c.wallet, TimeRange{0, 1 << 62}, PageRequest{1, 10})
			checkCode(t, "ListEntries", err, c.want)
			if c.want == "" && len(entries) != 1 {
				t.Fatalf("ListEntries = %+v, want the issue", entries)
			}
			entries, _, err = tl.ledger.ListEntries(c.project, c.wallet, TimeRange{5, -1}, PageRequest{1, 10})
			checkCode(t, "ListEntries over an empty range", err, c.want)
			if len(entries) != 0 {
				t.Fatalf("ListEntries over an empty range = %+v", entries)
			}
		})
	}
}

func checkCode(t *testing.T, what string, err error, want fsm.ErrorCode) {
	t.Helper()
	var rejection *fsm.Error
	switch {
	case want == "" && err != nil:
		t.Fatalf("%s: %v", what, err)
	case want != "" && (!errors.As(err, &rejection) || rejection.Code != want):
		t.Fatalf("%s: %v, want %s", what, err, want)
	}
}
